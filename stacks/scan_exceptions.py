"""Record, on the resource itself, why a template scanner's check does not apply to it.

checkov reads `Metadata.checkov.skip` of each CloudFormation resource; every skip here carries
the reason in its comment, so a reviewer sees the exception and its justification together.
cdk-nag findings are acknowledged with `cdk.Validations.of(construct).acknowledge` instead.
"""

from __future__ import annotations

from typing import Any, cast

import aws_cdk as cdk
from constructs import IConstruct


def skip_checkov(construct: IConstruct, check_id: str, comment: str) -> None:
    """Skip one checkov check on `construct`'s CloudFormation resource, with the reason.

    `construct` is the resource itself or an L2 whose default child is the resource.
    """
    resource = construct if isinstance(construct, cdk.CfnResource) else construct.node.default_child
    if not isinstance(resource, cdk.CfnResource):
        raise TypeError(f"{construct.node.path} is not a CloudFormation resource")
    metadata = cast(dict[str, Any], resource.get_metadata("checkov") or {"skip": []})
    metadata["skip"] = [*metadata["skip"], {"id": check_id, "comment": comment}]
    resource.add_metadata("checkov", metadata)
