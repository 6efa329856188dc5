"""A run from a checkpoint keeps the technique of the run that produced the checkpoint.

AWS documents that continuing from a checkpoint requires the same model and the same technique
(LoRA or full rank) as the run that trained it (shared NOVA_FACTS section 3). Every checkpoint of
this project is a Nova 2 Lite checkpoint, and the model registry records each one's technique
(`lambdas.registry.KEY_TECHNIQUE`), so the check is: find the checkpoint's version in the
environment's model package group and compare techniques. It runs in the PrepareRecipe step
(before any instance starts) and in the operator commands `start` and `promote`.

`check_continuity(sm, group, model_name_or_path, technique)`:
- the base model: nothing to check;
- a checkpoint the group records with another technique: `TechniqueMismatchError`, naming both
  techniques, the checkpoint and its package, and the fix;
- a checkpoint the group records with the same technique: allowed;
- a checkpoint the group does not record (registered elsewhere, or older than the search
  reaches), or whose version records no technique: allowed, and the result says it was not
  checked.

The lookup is lazy and bounded: first the versions whose description names a training job that
appears in the checkpoint URI (escrow URIs are `s3://<escrow bucket>/<job name>/step_<N>`), which
costs list calls and one describe per candidate; only then the newest `MAX_DESCRIBED` versions,
one describe each. Functions take their SageMaker client as an argument.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.aws_errors import ACCESS_DENIED, THROTTLED, error_code
from lambdas.recipe import SAGEMAKER_NAME, starts_from_checkpoint
from lambdas.registry.lineage import find_registration, iter_checkpoints
from lambdas.registry.records import CheckpointRecord

# How many of the newest versions the fallback search describes (about 0.1 s each), so that the
# check fits the prepare function's one-minute timeout whatever the size of the group.
MAX_DESCRIBED = 50

BASE_MODEL_OUTCOME = "base-model"
SAME_TECHNIQUE = "same-technique"
UNREGISTERED = "unregistered"
UNCHECKED = "unchecked"


class TechniqueMismatchError(ValueError):
    """The run's technique differs from the one its checkpoint was trained with."""


class RegistryReadError(RuntimeError):
    """The model registry could not be read; the message names the group and the fix."""


@dataclass(frozen=True)
class ContinuityCheck:
    """What the check found. `outcome` is one of the module's outcome constants; `record` is
    the checkpoint's version when the group records it."""

    outcome: str
    model_name_or_path: str
    technique: str
    group: str = ""
    record: CheckpointRecord | None = None
    described: int = 0

    def describe(self) -> str:
        """One line for the step's output and the operator commands: the outcome first."""
        if self.outcome == BASE_MODEL_OUTCOME:
            return f"{BASE_MODEL_OUTCOME}: starts from {self.model_name_or_path}; nothing to check"
        if self.outcome == SAME_TECHNIQUE and self.record is not None:
            return (
                f"{SAME_TECHNIQUE}: {self.technique}, as {self.record.model_package_arn} "
                f"records for {self.model_name_or_path}"
            )
        if self.outcome == UNREGISTERED and self.record is not None:
            return (
                f"{UNREGISTERED}: {self.record.model_package_arn} records no technique for "
                f"{self.model_name_or_path}; that it was trained with {self.technique} was "
                "not checked"
            )
        if self.outcome == UNREGISTERED:
            return (
                f"{UNREGISTERED}: no version of model package group {self.group} records "
                f"{self.model_name_or_path} (searched by training job, then the newest "
                f"{self.described} versions); that it was trained with {self.technique} was "
                "not checked"
            )
        return (
            f"{UNCHECKED}: no model registry was given to check {self.model_name_or_path} "
            f"against {self.technique}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "checkpoint": self.model_name_or_path if self.outcome != BASE_MODEL_OUTCOME else None,
            "recorded_by": self.record.model_package_arn if self.record is not None else None,
            "recorded_technique": self.record.technique if self.record is not None else None,
            "summary": self.describe(),
        }


def job_names_in(checkpoint_uri: str) -> list[str]:
    """The path segments of a checkpoint URI that could be a training job's name (not the
    bucket, not the last segment such as `step_100`)."""
    segments = checkpoint_uri.removeprefix("s3://").strip("/").split("/")[1:]
    candidates = segments[:-1] if len(segments) > 1 else segments
    return [s for s in dict.fromkeys(candidates) if SAGEMAKER_NAME.fullmatch(s)]


def find_checkpoint_record(
    sm: Any, group: str, checkpoint_uri: str, *, max_described: int = MAX_DESCRIBED
) -> tuple[CheckpointRecord | None, int]:
    """The newest version of `group` that records `checkpoint_uri`, or None, and how many
    versions the fallback search described (module docstring: lazy and bounded)."""
    for job in job_names_in(checkpoint_uri):
        record = find_registration(sm, group, job)
        if record is not None and record.checkpoint_uri == checkpoint_uri:
            return record, 0
    described = 0
    for record in itertools.islice(iter_checkpoints(sm, group), max_described):
        described += 1
        if record.checkpoint_uri == checkpoint_uri:
            return record, described
    return None, described


def mismatch_message(record: CheckpointRecord, technique: str, checkpoint_uri: str) -> str:
    """Why a run of `technique` cannot continue from the checkpoint `record` describes."""
    return (
        f"Technique {technique} cannot continue from checkpoint {checkpoint_uri}: it was trained "
        f"with {record.technique} ({record.model_package_arn}), and a run from a checkpoint must "
        f"use the technique of the run that produced it. Set Technique to {record.technique}, "
        "or start from the base model"
    )


def check_continuity(
    sm: Any,
    group: str,
    model_name_or_path: str,
    technique: str,
    *,
    known: CheckpointRecord | None = None,
) -> ContinuityCheck:
    """Check a run's technique against its checkpoint's (module docstring).

    `known` is the checkpoint's record when the caller already has it (e.g. `--from latest`):
    no lookup is made then. TechniqueMismatchError on a mismatch; RegistryReadError when the
    registry cannot be read.
    """
    if not starts_from_checkpoint(model_name_or_path):
        return ContinuityCheck(BASE_MODEL_OUTCOME, model_name_or_path, technique, group)
    described = 0
    record = known if known is not None and known.checkpoint_uri == model_name_or_path else None
    if record is None:
        try:
            record, described = find_checkpoint_record(sm, group, model_name_or_path)
        except ClientError as error:
            raise registry_read_error(error, group) from error
        except BotoCoreError as error:
            raise RegistryReadError(
                f"cannot read model package group {group} to check the checkpoint's technique "
                f"({error}); retry"
            ) from error
    if record is not None and record.technique and record.technique != technique:
        raise TechniqueMismatchError(mismatch_message(record, technique, model_name_or_path))
    outcome = SAME_TECHNIQUE if record is not None and record.technique else UNREGISTERED
    return ContinuityCheck(outcome, model_name_or_path, technique, group, record, described)


def registry_read_error(error: ClientError, group: str) -> RegistryReadError:
    """A failed registry read as a message with the fix."""
    code = error_code(error)
    what = f"cannot read model package group {group} to check the checkpoint's technique"
    if code in ACCESS_DENIED:
        return RegistryReadError(
            f"{what}: access denied; grant sagemaker:ListModelPackages and "
            f"sagemaker:DescribeModelPackage on the group's versions"
        )
    if code in THROTTLED:
        return RegistryReadError(f"{what}: throttled after the client's retries; retry")
    return RegistryReadError(f"{what}: {code or 'error'}: {error}")
