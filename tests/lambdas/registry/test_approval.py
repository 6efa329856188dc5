"""Approving and rejecting checkpoints (lambdas/registry/approval.py) against moto over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.registry import CheckpointRecord, latest_checkpoint, set_approval
from tests.lambdas.test_register_checkpoint import GROUP


def test_latest_approved_follows_approvals_and_keeps_the_metadata(
    clients: tuple[Any, Any], chain: list[CheckpointRecord]
) -> None:
    sm, _ = clients
    approved = set_approval(sm, chain[1].model_package_arn, "Approved", reason="eval passed")
    assert approved.approval_status == "Approved"
    assert approved.metadata == chain[1].metadata
    latest = latest_checkpoint(sm, GROUP, approved_only=True)
    assert latest is not None
    assert latest.training_job_name == "job-2"
    set_approval(sm, chain[0].model_package_arn, "Approved")
    set_approval(sm, chain[1].model_package_arn, "Rejected")
    latest = latest_checkpoint(sm, GROUP, approved_only=True)
    assert latest is not None
    assert latest.training_job_name == "job-1"


def test_set_approval_refuses_an_unknown_status(
    clients: tuple[Any, Any], chain: list[CheckpointRecord]
) -> None:
    sm, _ = clients
    with pytest.raises(ValueError, match="must be one of"):
        set_approval(sm, chain[0].model_package_arn, "Approve")
