"""Reading the lineage: the group's checkpoints, newest first, and a checkpoint's ancestry.

Only versions that carry `CheckpointS3Uri` metadata count; others are skipped. Each version is
described only when it is reached.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from lambdas.registry.records import CheckpointRecord, record_of

_JOB_IN_DESCRIPTION = re.compile(r"training job ([a-zA-Z0-9-]+)")


class CheckpointNotFoundError(LookupError):
    """No version of the group records the checkpoint asked for."""


def _versions(sm: Any, group: str, **filters: Any) -> Iterator[dict[str, Any]]:
    """The group's version summaries, newest first."""
    paginator = sm.get_paginator("list_model_packages")
    pages = paginator.paginate(
        ModelPackageGroupName=group,
        SortBy="CreationTime",
        SortOrder="Descending",
        **filters,
    )
    for page in pages:
        yield from page.get("ModelPackageSummaryList", [])


def describe_checkpoint(sm: Any, model_package_arn: str) -> CheckpointRecord:
    """The record of one model package version."""
    return record_of(sm.describe_model_package(ModelPackageName=model_package_arn))


def find_registration(sm: Any, group: str, training_job_name: str) -> CheckpointRecord | None:
    """The version already registered for a training job, or None.

    The description names the job, which narrows the search without a describe per version;
    the metadata confirms it.
    """
    for summary in _versions(sm, group):
        named = _JOB_IN_DESCRIPTION.search(summary.get("ModelPackageDescription", ""))
        if named is None or named.group(1) != training_job_name:
            continue
        record = describe_checkpoint(sm, summary["ModelPackageArn"])
        if record.training_job_name == training_job_name:
            return record
    return None


def iter_checkpoints(
    sm: Any, group: str, *, approved_only: bool = False
) -> Iterator[CheckpointRecord]:
    """The group's checkpoints, newest first (only Approved ones if `approved_only`).

    Each version is described only when it is reached, so a caller that stops early pays for
    the versions it read and no more. Versions that record no checkpoint are skipped.
    """
    filters = {"ModelApprovalStatus": "Approved"} if approved_only else {}
    for summary in _versions(sm, group, **filters):
        record = describe_checkpoint(sm, summary["ModelPackageArn"])
        if record.checkpoint_uri:
            yield record


def list_checkpoints(sm: Any, group: str) -> list[CheckpointRecord]:
    """Every checkpoint of the group, newest first (one describe per version)."""
    return list(iter_checkpoints(sm, group))


def latest_checkpoint(sm: Any, group: str, *, approved_only: bool) -> CheckpointRecord | None:
    """The newest checkpoint of the group (only Approved ones if `approved_only`), or None."""
    return next(iter_checkpoints(sm, group, approved_only=approved_only), None)


def find_checkpoint(sm: Any, group: str, checkpoint_uri: str) -> CheckpointRecord | None:
    """The newest version that records `checkpoint_uri`, or None; stops at the first match."""
    matches = (r for r in iter_checkpoints(sm, group) if r.checkpoint_uri == checkpoint_uri)
    return next(matches, None)


def ancestry(sm: Any, group: str, checkpoint_uri: str) -> list[CheckpointRecord]:
    """The checkpoint's record, then its parent's, and so on back to the first run.

    The walk stops at a parent that is not a checkpoint of this group: the base model, or a
    checkpoint registered elsewhere; the last record's `parent` names it. CheckpointNotFoundError
    if the group does not record `checkpoint_uri`.
    """
    by_uri: dict[str, CheckpointRecord] = {}
    for record in list_checkpoints(sm, group):
        by_uri.setdefault(record.checkpoint_uri, record)  # newest first: keep the newest
    current = by_uri.get(checkpoint_uri)
    if current is None:
        raise CheckpointNotFoundError(
            f"no version of model package group {group} records checkpoint {checkpoint_uri}"
        )
    chain = [current]
    seen = {checkpoint_uri}
    while current.parent in by_uri and current.parent not in seen:
        seen.add(current.parent)
        current = by_uri[current.parent]
        chain.append(current)
    return chain
