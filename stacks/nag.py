"""Acknowledge cdk-nag findings precisely: one finding, on one construct, with its reason.

cdk-nag 3 matches an acknowledgment by its exact finding ID, e.g.
`AwsSolutions-IAM5[Resource::arn:aws:s3:::customer-escrow-<AWS::AccountId>*]`, in which the
resource appears as cdk-nag flattens the CloudFormation value: a `Ref` becomes `<Name>`, a
`Fn::GetAtt` `<Resource.Attribute>`, a `Fn::ImportValue` its export name, a `Fn::Join` the
joined parts. `wildcard_resource` builds that ID from the same value the policy uses, so the
acknowledgment cannot drift from the statement it covers.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import IConstruct


def acknowledge(construct: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on `construct` (and only its subtree)."""
    cdk.Validations.of(construct).acknowledge(cdk.Acknowledgment(id=finding, reason=reason))


def wildcard_resource(scope: IConstruct, resource: str) -> str:
    """The ID of the AwsSolutions-IAM5 finding for a wildcard `resource` used in `scope`'s stack."""
    flat = _flatten(cdk.Stack.of(scope).resolve(resource))
    if "*" not in flat:
        raise ValueError(f"{flat} has no wildcard: there is no finding to acknowledge")
    return f"AwsSolutions-IAM5[Resource::{flat}]"


def finding_resource(resolved: Any) -> str:
    """A resolved CloudFormation value as cdk-nag writes it inside a finding ID."""
    return _flatten(resolved)


def _flatten(value: Any) -> str:
    if isinstance(value, str):
        return value.replace("${", "<").replace("}", ">")
    if isinstance(value, dict) and len(value) == 1:
        ((kind, argument),) = value.items()
        if kind == "Fn::Join":
            separator, parts = argument
            return str(separator).join(_flatten(part) for part in parts)
        if kind == "Ref":
            return f"<{_flatten(argument)}>"
        if kind == "Fn::GetAtt":
            resource, attribute = argument
            return f"<{_flatten(resource)}.{_flatten(attribute)}>"
        if kind in ("Fn::ImportValue", "Fn::Sub"):
            return _flatten(argument)
    raise ValueError(f"cannot tell how cdk-nag names the resource {value!r}")
