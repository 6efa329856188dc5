"""The register step's part in experiment tracking: log the registration's lineage to the run.

The register step gets three more inputs when the environment tracks experiments
(`MlflowTrackingArn`, `MlflowExperimentName`, `MlflowRunName`); without them it does what it
always did, so the pipeline definition of an environment without tracking is unchanged.

Order (docs/decisions/0020-experiment-tracking.md): the inputs are checked before anything is
registered (a bad one is a deployment defect and fails the step with nothing created); the
tracker is called only after the checkpoint is registered, and a tracker that fails or cannot be
reached costs a warning in the step's log, never the registration: the registry is the record.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lambdas.recipe.validation import SAGEMAKER_NAME
from lambdas.tracking.address import TrackingAddressError, tracking_address
from lambdas.tracking.client import TrackingClient, TrackingError
from lambdas.tracking.runs import lineage_tags, log_to_run

ARN_KEY = "MlflowTrackingArn"
EXPERIMENT_KEY = "MlflowExperimentName"
RUN_NAME_KEY = "MlflowRunName"
TRACKING_KEYS = (ARN_KEY, EXPERIMENT_KEY, RUN_NAME_KEY)


@dataclass(frozen=True)
class TrackingTarget:
    """Where a run's lineage goes: a tracking server, an experiment and a run name."""

    arn: str
    experiment_name: str
    run_name: str


def tracking_target(event: Mapping[str, Any]) -> TrackingTarget | None:
    """The event's tracking inputs, checked; None when it has none (tracking is off).

    ValueError names every bad or missing one: all three come together or not at all.
    """
    given = {key: event.get(key) for key in TRACKING_KEYS if event.get(key) not in (None, "")}
    if not given:
        return None
    problems = [
        f"{key} is missing (the three tracking inputs come together)"
        for key in TRACKING_KEYS
        if key not in given
    ]
    problems += [
        f"{key}={value!r} must be text"
        for key, value in given.items()
        if not isinstance(value, str)
    ]
    if problems:
        raise ValueError(
            "the register step's tracking inputs are invalid:\n- " + "\n- ".join(problems)
        )
    try:
        tracking_address(str(given[ARN_KEY]))
    except TrackingAddressError as error:
        problems.append(f"{ARN_KEY}: {error}")
    for key in (EXPERIMENT_KEY, RUN_NAME_KEY):
        if not SAGEMAKER_NAME.fullmatch(str(given[key])):
            problems.append(f"{key}={str(given[key])[:80]!r}: not a pipeline or run name")
    if problems:
        raise ValueError(
            "the register step's tracking inputs are invalid:\n- " + "\n- ".join(problems)
        )
    return TrackingTarget(
        arn=str(given[ARN_KEY]),
        experiment_name=str(given[EXPERIMENT_KEY]),
        run_name=str(given[RUN_NAME_KEY]),
    )


def default_client(arn: str) -> TrackingClient:
    """A SigV4 client of the tracking server `arn` (endpoint overridable, `address`)."""
    return TrackingClient(tracking_address(arn, os.environ))


def _stderr(text: str) -> None:
    # The step's log (CloudWatch Logs for the Lambda function).
    sys.stderr.write(text + "\n")


def log_registration(
    target: TrackingTarget,
    *,
    checkpoint_uri: str,
    model_package_arn: str,
    parent: str,
    training_job: str,
    metrics: Mapping[str, float] | None = None,
    params: Mapping[str, str] | None = None,
    make_client: Callable[[str], TrackingClient] = default_client,
    warn: Callable[[str], None] | None = None,
) -> str | None:
    """Tag the run with the registration's lineage and log the evaluation's `metrics` and
    `params` when given; the run's id, or None after a warning."""
    tags = lineage_tags(
        checkpoint_uri=checkpoint_uri,
        model_package_arn=model_package_arn,
        parent=parent,
        training_job=training_job,
    )
    try:
        return log_to_run(
            make_client(target.arn),
            experiment_name=target.experiment_name,
            run_name=target.run_name,
            metrics=dict(metrics or {}),
            params=dict(params or {}),
            tags=tags,
        )
    except (TrackingError, TrackingAddressError, ValueError) as error:
        (warn or _stderr)(
            f"warning: {model_package_arn} is registered, but its lineage was not logged to "
            f"MLflow run {target.run_name} of experiment {target.experiment_name} on "
            f"{target.arn}: {error}. The registry holds the same lineage; `python -m pipeline "
            "lineage` prints it."
        )
        return None
