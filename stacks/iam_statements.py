"""Hand-written IAM statements, and the policy CDK collects a role's statements in.

A statement built with `allow` names its resources; where it is used, a comment says why the
role needs it (house style 7). Its cdk-nag findings are acknowledged on `default_policy(role)`.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from constructs import IConstruct


def allow(actions: list[str], *resources: str) -> iam.PolicyStatement:
    """An Allow statement of `actions` on exactly `resources`, with no condition."""
    return iam.PolicyStatement(actions=actions, resources=list(resources))


def default_policy(role: iam.IRole) -> IConstruct:
    """The policy that holds the statements added to `role` with `add_to_principal_policy`.

    CDK creates it, as the child `DefaultPolicy`, with the first such statement; this raises
    when `role` has none yet.
    """
    return role.node.find_child("DefaultPolicy")
