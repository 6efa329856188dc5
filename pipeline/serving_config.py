"""How an environment serves its approved checkpoints on Amazon Bedrock: the `serving` object of
an environment in cdk.json (docs/decisions/0019-serving-on-bedrock.md).

    "serving": {"deploy": "on_approval", "take_down": ["rejected"], "delete_custom_model": false}

`deploy` is "off" (the default when the object is absent: nothing is built) or "on_approval" (an
approval imports the checkpoint and deploys it on demand). `take_down` lists when a deployment is
deleted: "rejected" (its package is rejected), "superseded" (a newer approved version of the
environment has been deployed). `delete_custom_model` also deletes the imported
custom model when its deployment is taken down (default false: the import is kept, so approving
the version again deploys it without a second import).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEPLOY_CHOICES = ("off", "on_approval")
TAKE_DOWN_CHOICES = ("rejected", "superseded")
# Bedrock documents the import of Nova checkpoints trained on SageMaker in these regions only.
SERVING_REGIONS = ("us-east-1", "us-west-2")
_KEYS = {"deploy", "take_down", "delete_custom_model"}


@dataclass(frozen=True)
class ServingConfig:
    """Whether and how approved checkpoints are served (see the module's docstring)."""

    deploy: str = "off"
    take_down: tuple[str, ...] = ()
    delete_custom_model: bool = False

    @property
    def enabled(self) -> bool:
        return self.deploy != "off"

    @property
    def take_down_rejected(self) -> bool:
        return "rejected" in self.take_down

    @property
    def take_down_superseded(self) -> bool:
        return "superseded" in self.take_down


def serving_problems(raw: Any, region: str) -> tuple[ServingConfig | None, list[str]]:
    """Parse one environment's `serving` value: the config, or the problems naming each key."""
    if not isinstance(raw, dict):
        return None, [f"serving must be an object with keys {', '.join(sorted(_KEYS))}"]
    problems = []
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        problems.append(
            f"serving has unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_KEYS))})"
        )
    deploy = raw.get("deploy", "off")
    if deploy not in DEPLOY_CHOICES:
        problems.append(
            f"serving.deploy must be one of {', '.join(DEPLOY_CHOICES)}, got {deploy!r}"
        )
    take_down = raw.get("take_down", [])
    if not isinstance(take_down, list) or any(t not in TAKE_DOWN_CHOICES for t in take_down):
        problems.append(
            f"serving.take_down must be a list of {', '.join(TAKE_DOWN_CHOICES)}, got {take_down!r}"
        )
    delete_model = raw.get("delete_custom_model", False)
    if not isinstance(delete_model, bool):
        problems.append(f"serving.delete_custom_model must be true or false, got {delete_model!r}")
    if deploy == "on_approval" and region not in SERVING_REGIONS:
        problems.append(
            f"serving.deploy is on_approval but region {region!r} is not one where Bedrock "
            f"documents importing Nova checkpoints ({', '.join(SERVING_REGIONS)}): change region "
            'or set serving.deploy to "off"'
        )
    if problems:
        return None, problems
    return ServingConfig(
        deploy=deploy, take_down=tuple(dict.fromkeys(take_down)), delete_custom_model=delete_model
    ), []


# What the serving state machine records on a model package (CustomerMetadataProperties).
KEY_SERVING_STATUS = "ServingStatus"  # Deployed, TakenDown, ImportStopped or Failed
KEY_SERVING_MODEL = "ServingCustomModelArn"
KEY_SERVING_DEPLOYMENT = "ServingDeploymentArn"
KEY_SERVING_TIME = "ServingChangedAt"
KEY_SERVING_FAILURE = "ServingFailure"
DEPLOYED = "Deployed"
# Tags on the custom model and the deployment: which package and checkpoint they serve.
TAG_PACKAGE = "nova-sft:model-package-arn"
TAG_CHECKPOINT = "nova-sft:checkpoint"
REQUEST_DEPLOY = "deploy"
REQUEST_UNDEPLOY = "undeploy"


def serving_name(environment: str, version: int | str) -> str:
    """The custom model's and the deployment's name: `nova-sft-<env>-v<version>`.

    At most 9 + 32 + 2 + 10 = 53 characters (environment names stop at 32), within Bedrock's
    63, and of its pattern `([0-9a-zA-Z][_-]?){1,63}` (no doubled hyphen: names end alphanumeric).
    """
    return f"nova-sft-{environment}-v{version}"


def state_machine_name(environment: str) -> str:
    """The serving state machine's fixed name, so the commands and the smoke step find it."""
    return f"nova-sft-{environment}-serving"
