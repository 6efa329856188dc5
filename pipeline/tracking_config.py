"""An environment's experiment tracking setting (cdk.json `tracking`), checked.

`pipeline.config` parses it with the rest of the environment; this module holds the values and
the rule (docs/decisions/0020-experiment-tracking.md).
"""

from __future__ import annotations

import re

# An existing SageMaker MLflow tracking server (docs/decisions/0020-experiment-tracking.md).
_TRACKING_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):"
    r"mlflow-tracking-server/[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$"
)
# The `tracking` values of an environment besides an ARN: no tracking, or a tracking server
# that the environment's TrainingStack creates.
TRACKING_OFF = "off"
TRACKING_CREATE = "create"
# `cdk synth -c nova-sft:tracking=<env>=<off|create|ARN>` overrides one environment's `tracking`
# for that synth only (the rehearsal's own synth uses it: `make demo`).
TRACKING_OVERRIDE_CONTEXT = "nova-sft:tracking"


def tracking_problems(value: object, region: str, account: str | None) -> list[str]:
    """What is wrong with an environment's `tracking` value (empty when nothing is)."""
    if value in (TRACKING_OFF, TRACKING_CREATE):
        return []
    expected = (
        f'tracking must be "{TRACKING_OFF}", "{TRACKING_CREATE}" or the ARN of an existing '
        f"MLflow tracking server (arn:aws:sagemaker:{region}:<account>:mlflow-tracking-server/"
        "<name>)"
    )
    if not isinstance(value, str):
        return [f"{expected}, got {value!r}"]
    if ":mlflow-app/" in value:
        return [
            f"tracking {value!r} is an MLflow app: this project supports tracking servers only "
            "(docs/decisions/0020-experiment-tracking.md); give a tracking server's ARN, "
            f'or "{TRACKING_CREATE}"'
        ]
    match = _TRACKING_ARN.match(value)
    if match is None:
        return [f"{expected}, got {value!r}"]
    problems = []
    if match["region"] != region:
        problems.append(
            f"tracking {value!r} is in {match['region']}; the environment's training jobs run "
            f"in {region}: use a tracking server there"
        )
    if account is not None and match["account"] != account:
        problems.append(
            f"tracking {value!r} belongs to account {match['account']}, not the environment's "
            f"account {account}: use a tracking server of that account"
        )
    return problems
