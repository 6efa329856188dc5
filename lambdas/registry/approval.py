"""Approving or rejecting a registered checkpoint, keeping its metadata."""

from __future__ import annotations

from typing import Any

from lambdas.registry.lineage import describe_checkpoint
from lambdas.registry.records import APPROVAL_STATUSES, CheckpointRecord


def set_approval(
    sm: Any, model_package_arn: str, status: str, *, reason: str = ""
) -> CheckpointRecord:
    """Approve, reject or reset a version, sending its metadata back with the change.

    SageMaker keeps the metadata on its own; resending it also keeps it on local endpoints that
    clear fields an update does not name.
    """
    if status not in APPROVAL_STATUSES:
        raise ValueError(f"approval status {status!r} must be one of {APPROVAL_STATUSES}")
    record = describe_checkpoint(sm, model_package_arn)
    update: dict[str, Any] = {"ModelPackageArn": model_package_arn, "ModelApprovalStatus": status}
    if record.metadata:
        update["CustomerMetadataProperties"] = dict(record.metadata)
    if reason:
        update["ApprovalDescription"] = reason[:1024]
    sm.update_model_package(**update)
    return describe_checkpoint(sm, model_package_arn)
