"""Lineage over the model registry (lambdas/registry/lineage.py) against moto over HTTP.

Runs are registered through the real register path, chained the way iterative training chains
them: each run starts from the previous run's checkpoint.
"""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.recipe.spec import BASE_MODEL, FULL_RANK, LORA
from lambdas.registry import (
    KEY_CHECKPOINT,
    KEY_PARENT,
    CheckpointNotFoundError,
    CheckpointRecord,
    ancestry,
    find_checkpoint,
    iter_checkpoints,
    latest_checkpoint,
    list_checkpoints,
    set_approval,
)
from tests.lambdas.registry.helpers import run
from tests.lambdas.test_register_checkpoint import GROUP, escrow


def jobs(records: list[CheckpointRecord]) -> list[str]:
    return [record.training_job_name for record in records]


def test_ancestry_walks_back_to_the_base_model(
    clients: tuple[Any, Any], chain: list[CheckpointRecord]
) -> None:
    sm, _ = clients
    lineage = ancestry(sm, GROUP, escrow("job-3"))
    assert jobs(lineage) == ["job-3", "job-2", "job-1"]
    assert [r.parent for r in lineage] == [escrow("job-2"), escrow("job-1"), BASE_MODEL]
    assert [r.technique for r in lineage] == [LORA, FULL_RANK, LORA]
    assert jobs(ancestry(sm, GROUP, escrow("job-1"))) == ["job-1"]


def test_ancestry_of_an_unknown_checkpoint_is_an_error(
    clients: tuple[Any, Any], chain: list[CheckpointRecord]
) -> None:
    sm, _ = clients
    with pytest.raises(CheckpointNotFoundError, match=f"no version of model package group {GROUP}"):
        ancestry(sm, GROUP, escrow("job-9"))


def test_ancestry_stops_at_a_parent_registered_elsewhere(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    foreign = "s3://customer-escrow-123456789012-smtj-ffffffff/old-job/step_10"
    run(sm, s3, "job-1", foreign)
    lineage = ancestry(sm, GROUP, escrow("job-1"))
    assert jobs(lineage) == ["job-1"]
    assert lineage[-1].parent == foreign


def test_ancestry_survives_a_cycle_in_the_metadata(clients: tuple[Any, Any]) -> None:
    sm, _ = clients
    a, b = "s3://escrow-bucket/a", "s3://escrow-bucket/b"
    for checkpoint, parent in ((a, b), (b, a)):
        sm.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelPackageDescription="hand made",
            CustomerMetadataProperties={KEY_CHECKPOINT: checkpoint, KEY_PARENT: parent},
        )
    assert [r.checkpoint_uri for r in ancestry(sm, GROUP, a)] == [a, b]


def test_latest_checkpoint_is_the_newest_of_any_status(
    clients: tuple[Any, Any], chain: list[CheckpointRecord]
) -> None:
    sm, _ = clients
    latest = latest_checkpoint(sm, GROUP, approved_only=False)
    assert latest is not None
    assert latest.training_job_name == "job-3"
    assert latest.model_package_arn == chain[2].model_package_arn
    assert latest_checkpoint(sm, GROUP, approved_only=True) is None


def test_versions_without_checkpoint_metadata_are_ignored(
    clients: tuple[Any, Any], chain: list[CheckpointRecord]
) -> None:
    sm, _ = clients
    sm.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelPackageDescription="registered by hand",
        ModelApprovalStatus="Approved",
    )
    assert jobs(list_checkpoints(sm, GROUP)) == ["job-3", "job-2", "job-1"]
    latest = latest_checkpoint(sm, GROUP, approved_only=False)
    assert latest is not None
    assert latest.training_job_name == "job-3"
    assert latest_checkpoint(sm, GROUP, approved_only=True) is None


def test_an_empty_group_has_no_latest_checkpoint(clients: tuple[Any, Any]) -> None:
    sm, _ = clients
    assert latest_checkpoint(sm, GROUP, approved_only=False) is None
    assert list_checkpoints(sm, GROUP) == []


def test_find_checkpoint_by_uri(clients: tuple[Any, Any], chain: list[CheckpointRecord]) -> None:
    sm, _ = clients
    found = find_checkpoint(sm, GROUP, escrow("job-2"))
    assert found is not None
    assert found.model_package_arn == chain[1].model_package_arn
    assert found.final_loss == 2.0
    assert found.training_steps == 4
    assert find_checkpoint(sm, GROUP, escrow("job-9")) is None


def count_describes(sm: Any) -> list[str]:
    """The ARNs of every DescribeModelPackage call `sm` makes from now on."""
    described: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        described.append(str(params["ModelPackageName"]))

    sm.meta.events.register("before-parameter-build.sagemaker.DescribeModelPackage", record)
    return described


def test_iter_checkpoints_describes_a_version_only_when_it_is_reached(
    clients: tuple[Any, Any], chain: list[CheckpointRecord]
) -> None:
    sm, _ = clients
    described = count_describes(sm)
    checkpoints = iter_checkpoints(sm, GROUP)
    assert described == []
    newest = next(checkpoints)
    assert newest.training_job_name == "job-3"
    assert described == [chain[2].model_package_arn]
    assert jobs(list(checkpoints)) == ["job-2", "job-1"]
    assert described == [record.model_package_arn for record in reversed(chain)]


def test_finding_the_newest_checkpoint_describes_one_version(
    clients: tuple[Any, Any], chain: list[CheckpointRecord]
) -> None:
    sm, _ = clients
    described = count_describes(sm)
    found = find_checkpoint(sm, GROUP, escrow("job-3"))
    assert found is not None
    assert found.model_package_arn == chain[2].model_package_arn
    assert described == [chain[2].model_package_arn]
    latest = latest_checkpoint(sm, GROUP, approved_only=False)
    assert latest is not None
    assert described == [chain[2].model_package_arn] * 2


def test_iter_checkpoints_can_keep_to_approved_versions(
    clients: tuple[Any, Any], chain: list[CheckpointRecord]
) -> None:
    sm, _ = clients
    assert list(iter_checkpoints(sm, GROUP, approved_only=True)) == []
    set_approval(sm, chain[0].model_package_arn, "Approved")
    set_approval(sm, chain[2].model_package_arn, "Approved")
    assert jobs(list(iter_checkpoints(sm, GROUP, approved_only=True))) == ["job-3", "job-1"]
