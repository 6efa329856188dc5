"""The plan of a promotion (`promote.py` is the command): an approved checkpoint is promoted to
the next environment by replaying the run that made it.

A checkpoint lives in its account's escrow bucket and never leaves it (shared NOVA_FACTS
section 6), so promotion re-runs the approved run's recorded inputs in the next environment's
pipeline: technique, knobs, instance count (and type, when recorded), and the training and
validation data URIs, read from the source package's registry metadata
(`CheckpointRecord.replay_parameters`). Parameters it does not record take the target's defaults
and are listed in the plan (`ReplayPlan.unrecorded`).

What the run started from is mapped, not copied: the base model stays the base model; a parent
checkpoint of the source environment becomes the target environment's replay of that parent,
so a chain of runs is promoted in order, oldest first. The replay's technique is checked against
its starting checkpoint's, as `start` does.

Data is the source account's, which the target's training role cannot read. Recorded validation
data must be remapped to the target's copy (a ValidationDataS3Uri override, `--validation`) or
dropped (the override `none`); a replay is refused otherwise, before anything starts. "No validation
data" is sent as no parameter at all: the pipeline's default means none ("" in older definitions,
`none` in newer ones), so the replay reads the same either way.

Provenance: the replay's pipeline execution description starts with
`Replay of <source package ARN>` and names the source recipe's sha256 and execution; the run's
`SourceModelPackageArn` parameter carries the same ARN to the register step, which records it on
the target checkpoint's package. The target checkpoint also records its execution ARN, so
`replays_of` and `replayed_checkpoint` find a source package's replays and their checkpoints.
A promotion that already started (and did not fail) is not started again unless asked; its
client token is derived from the source package, so a retried command does not start a second
execution either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lambdas.recipe.spec import BASE_MODEL
from lambdas.registry import (
    KEY_PIPELINE_EXECUTION,
    KEY_RECIPE_SHA256,
    KEY_VALIDATION_DATA,
    NOTHING,
    CheckpointRecord,
    find_checkpoint,
    iter_checkpoints,
)
from pipeline.commands.aws import PackageRef, describe_package
from pipeline.commands.common import InputError, OperationError
from pipeline.commands.run_plan import RunPlan, client_token, plan_run, resolve_source
from pipeline.config import EnvironmentConfig

PROVENANCE_PREFIX = "Replay of "
_PROVENANCE = re.compile(
    re.escape(PROVENANCE_PREFIX)
    + r"(arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:model-package/[A-Za-z0-9-]+/[0-9]+)"
)
# Executions in these states count as a promotion already done or under way.
_LIVE_STATUSES = ("Executing", "Stopping", "Succeeded")
# Recorded parameters that a replay needs; ModelNameOrPath is mapped separately (or --from).
_REQUIRED = ("Technique", "TrainDataS3Uri")
VALIDATION = "ValidationDataS3Uri"
SOURCE_PACKAGE = "SourceModelPackageArn"
# Parameters a replay sets itself and no one overrides: where it starts, and what it replays.
SET_BY_PROMOTE = ("ModelNameOrPath", SOURCE_PACKAGE)


def replay_description(source: CheckpointRecord) -> str:
    """The replay execution's description: provenance first, so that it can be parsed back."""
    parts = [f"{PROVENANCE_PREFIX}{source.model_package_arn}"]
    sha = source.metadata.get(KEY_RECIPE_SHA256)
    if sha:
        parts.append(f"recipe sha256 {sha}")
    execution = source.metadata.get(KEY_PIPELINE_EXECUTION)
    if execution:
        parts.append(f"source execution {execution}")
    return "; ".join(parts) + "."


def provenance(description: str) -> str:
    """The source package ARN a replay's description names, or ""."""
    match = _PROVENANCE.match(description or "")
    return match.group(1) if match else ""


def replays_of(sm: Any, env: EnvironmentConfig, source_arn: str) -> list[dict[str, Any]]:
    """The target pipeline's executions that replay `source_arn`, newest first."""
    found = []
    try:
        pages = sm.get_paginator("list_pipeline_executions").paginate(
            PipelineName=env.pipeline_name, SortBy="CreationTime", SortOrder="Descending"
        )
        for page in pages:
            for summary in page.get("PipelineExecutionSummaries", []):
                if provenance(summary.get("PipelineExecutionDescription", "")) == source_arn:
                    found.append(summary)
    except ClientError as error:
        raise OperationError(
            f"cannot list the executions of {env.pipeline_name}: {error}"
        ) from error
    return found


def replayed_checkpoint(
    sm: Any, env: EnvironmentConfig, source_arn: str
) -> CheckpointRecord | None:
    """The target environment's checkpoint replayed from `source_arn` (not a rejected one),
    preferring an approved one, then the newest.

    A checkpoint is a replay's when the execution it records is one of `replays_of`; the
    checkpoints are read newest first and the walk stops at the first approved match.
    """
    executions = {str(e["PipelineExecutionArn"]) for e in replays_of(sm, env, source_arn)}
    if not executions:
        return None
    newest: CheckpointRecord | None = None
    for record in iter_checkpoints(sm, env.model_package_group_name):
        if record.approval_status == "Rejected":
            continue
        if record.metadata.get(KEY_PIPELINE_EXECUTION) not in executions:
            continue
        if record.approval_status == "Approved":
            return record
        newest = newest or record
    return newest


@dataclass(frozen=True)
class ReplayPlan:
    """A promotion: the approved source checkpoint and the run that replays it."""

    source: CheckpointRecord
    run: RunPlan
    earlier_replays: tuple[str, ...]
    # Pipeline parameters the source package does not record: the target's defaults apply.
    unrecorded: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "unrecorded_parameters": list(self.unrecorded),
            "source_model_package_arn": self.source.model_package_arn,
            "source_checkpoint_s3_uri": self.source.checkpoint_uri,
            "source_parent": self.source.parent,
            "earlier_replays": list(self.earlier_replays),
            **self.run.to_dict(),
        }


def _target_parent(
    source_sm: Any,
    target_sm: Any,
    source: CheckpointRecord,
    source_env: EnvironmentConfig,
    target: EnvironmentConfig,
) -> tuple[str, CheckpointRecord | None]:
    """What the replay starts from in the target environment (module docstring)."""
    parent = source.parent
    if parent == BASE_MODEL:
        return BASE_MODEL, None
    parent_record = find_checkpoint(source_sm, source_env.model_package_group_name, parent)
    if parent_record is None:
        raise OperationError(
            f"{source.model_package_arn} started from {parent}, which no package of "
            f"{source_env.model_package_group_name} records: choose the target's starting point "
            "with --from"
        )
    replay = replayed_checkpoint(target_sm, target, parent_record.model_package_arn)
    if replay is None:
        raise OperationError(
            f"{source.model_package_arn} continues from {parent_record.model_package_arn}, which "
            f"has no replay in {target.name} yet: promote it first "
            f"(python -m pipeline promote {parent_record.model_package_arn} --to {target.name}), "
            "or choose the starting point with --from"
        )
    return replay.checkpoint_uri, replay


def replay_validation(
    source: CheckpointRecord, target: EnvironmentConfig, overrides: dict[str, str]
) -> tuple[dict[str, str], bool]:
    """The overrides with ValidationDataS3Uri remapped, and whether validation data was dropped.

    An override of "" or "none" drops it (no parameter is sent); an s3:// override replaces the
    recorded URI; recorded validation data without an override is refused with the fix, since
    the target's training role cannot read the source account's buckets.
    """
    chosen = dict(overrides)
    if VALIDATION in chosen:
        if chosen[VALIDATION].strip() in NOTHING:
            del chosen[VALIDATION]
            return chosen, True
        return chosen, False
    recorded = source.metadata.get(KEY_VALIDATION_DATA, "")
    if recorded not in NOTHING:
        raise InputError(
            f"{source.model_package_arn} was trained with validation data {recorded}, which "
            f"the training role of {target.name} cannot read: copy it into {target.name}'s "
            "data bucket and pass --validation s3://<its copy>, or pass --validation none to "
            "replay without validation data"
        )
    return chosen, False


def plan_replay(
    source_sm: Any,
    target_sm: Any,
    ref: PackageRef,
    target: EnvironmentConfig,
    *,
    overrides: dict[str, str],
    from_choice: str = "",
    again: bool = False,
    prices: dict[str, dict[str, float]] | None = None,
) -> ReplayPlan:
    """Check the source package and build the replay run; starts nothing.

    `overrides` (pipeline parameter values, e.g. TrainDataS3Uri for the target's copy of the
    data) replace recorded values; `from_choice` replaces the mapped starting point (the
    checkpoint is chosen there, never by a ModelNameOrPath override). ValidationDataS3Uri
    follows `replay_validation`.
    """
    fixed = sorted(set(SET_BY_PROMOTE) & set(overrides))
    if fixed:
        raise InputError(
            f"{', '.join(fixed)} cannot be set for a replay: promote sets them (choose the "
            "starting point with --from)"
        )
    if ref.env.name == target.name:
        raise InputError(f"--to {target.name} is the package's own environment: pick another")
    source = describe_package(source_sm, ref)
    if source.approval_status != "Approved":
        raise OperationError(
            f"{ref.arn} is {source.approval_status}, not Approved: only an approved checkpoint "
            f"is promoted (python -m pipeline approve {ref.arn})"
        )
    overrides, dropped_validation = replay_validation(source, target, overrides)
    recorded = source.replay_parameters()
    recorded.pop(VALIDATION, None)  # remapped or refused above: never replayed as it is
    missing = [key for key in _REQUIRED if key not in recorded and key not in overrides]
    if missing:
        raise OperationError(
            f"{ref.arn} does not record {', '.join(missing)}, which a replay needs: pass "
            "them with --set NAME=VALUE"
        )
    if "ModelNameOrPath" not in recorded and not from_choice:
        raise OperationError(
            f"{ref.arn} does not record what its run started from (ModelNameOrPath): choose "
            "the target's starting point with --from"
        )
    if from_choice:
        start_from, parent = resolve_source(target_sm, target, from_choice)
    else:
        start_from, parent = _target_parent(source_sm, target_sm, source, ref.env, target)
    earlier = replays_of(target_sm, target, ref.arn)
    live = [e for e in earlier if e.get("PipelineExecutionStatus") in _LIVE_STATUSES]
    if live and not again:
        first = live[0]
        raise OperationError(
            f"{ref.arn} was already replayed in {target.name} as "
            f"{first['PipelineExecutionArn']} ({first.get('PipelineExecutionStatus')}): "
            "watch that one, or pass --again to start another replay"
        )
    values = {
        **recorded,
        "ModelNameOrPath": start_from,
        SOURCE_PACKAGE: ref.arn,
        **overrides,
    }
    token = client_token(target.pipeline_name, values, f"{ref.arn}#{len(earlier)}")
    run = plan_run(
        target_sm,
        target,
        overrides=values,
        source=parent,
        prices=prices,
        description=replay_description(source),
        token=token,
    )
    # The approval status is the target's own decision, not part of what is replayed; dropped
    # validation data is a choice, not a gap in the record.
    chosen = {"ModelApprovalStatus"} | ({VALIDATION} if dropped_validation else set())
    unrecorded = sorted(set(run.parameters) - set(values) - chosen)
    return ReplayPlan(
        source=source,
        run=run,
        earlier_replays=tuple(str(e["PipelineExecutionArn"]) for e in earlier),
        unrecorded=tuple(unrecorded),
    )
