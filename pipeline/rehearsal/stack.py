"""Create one synthesized stage's resources in a local AWS endpoint, from the templates in cdk.out.

This is a small deployer for the resource types this project's stacks use. It resolves the
CloudFormation intrinsics CDK emits (Ref, Fn::GetAtt, Fn::Join, Fn::Sub, Fn::Select, Fn::Split,
Fn::ImportValue, pseudo parameters) against the resources it created, so the pipeline body that
reaches the endpoint is the body `cdk deploy` would send, with references resolved. Permission and
policy resources are recorded, not applied: moto does not enforce IAM. A resource type it does not
know stops the deployment with its name.

The stage's templates are read by `pipeline.rehearsal.templates`; each resource kind is created
by `pipeline.rehearsal.resources`; this module resolves the intrinsics between them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pipeline.rehearsal.execution_record import DefinitionError
from pipeline.rehearsal.resources import NOT_APPLIED, LocalStage, ResourceCreator, physical_name
from pipeline.rehearsal.templates import (
    SUB_VARIABLE,
    StackTemplate,
    resources_in_order,
    stage_stacks,
)


class _Deployer:
    """Deploys stacks in order: resolves each resource's intrinsics, then creates it."""

    def __init__(self, session: Any, stage: LocalStage) -> None:
        self.stage = stage
        self.resources = ResourceCreator(session, stage)
        self.exports: dict[str, str] = {}
        self.attributes: dict[str, dict[str, str]] = {}  # "<stack>/<id>" -> attributes

    # -- intrinsics -------------------------------------------------------------------------------

    def resolve(self, stack: StackTemplate, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(stack, item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            intrinsic = {
                "Ref": self._ref,
                "Fn::GetAtt": self._get_att,
                "Fn::Join": self._join,
                "Fn::Select": self._select,
                "Fn::Split": self._split,
                "Fn::ImportValue": self._import_value,
                "Fn::Sub": self._sub,
            }.get(key)
            if intrinsic is not None:
                return intrinsic(stack, argument)
            if key.startswith("Fn::") or key == "Condition":
                raise DefinitionError(f"{stack.name}: intrinsic {key} is not supported locally")
        return {k: self.resolve(stack, v) for k, v in value.items()}

    def _get_att(self, stack: StackTemplate, argument: Any) -> str:
        logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
        return self._attribute(stack, logical_id, attribute)

    def _join(self, stack: StackTemplate, argument: Any) -> str:
        separator, items = argument
        return str(separator).join(str(self.resolve(stack, i)) for i in items)

    def _select(self, stack: StackTemplate, argument: Any) -> Any:
        index, items = argument
        return self.resolve(stack, items)[int(self.resolve(stack, index))]

    def _split(self, stack: StackTemplate, argument: Any) -> list[str]:
        separator, text = argument
        return str(self.resolve(stack, text)).split(separator)

    def _import_value(self, stack: StackTemplate, argument: Any) -> str:
        name = self.resolve(stack, argument)
        if name not in self.exports:
            raise DefinitionError(f"{stack.name}: no stack exports {name!r}")
        return self.exports[name]

    def _sub(self, stack: StackTemplate, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(stack, variables[name]))
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self._attribute(stack, logical_id, attribute)
            return str(self._ref(stack, name))

        return SUB_VARIABLE.sub(replace, text)

    def _ref(self, stack: StackTemplate, name: str) -> Any:
        pseudo = {
            "AWS::AccountId": self.stage.account,
            "AWS::Region": self.stage.region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack.name,
        }
        if name in pseudo:
            return pseudo[name]
        key = f"{stack.name}/{name}"
        if key in self.stage.physical:
            return self.stage.physical[key]
        parameter = stack.template.get("Parameters", {}).get(name)
        if parameter is not None and "Default" in parameter:
            return parameter["Default"]
        raise DefinitionError(f"{stack.name}: Ref {name} has no local value (created later?)")

    def _attribute(self, stack: StackTemplate, logical_id: str, attribute: str) -> str:
        attributes = self.attributes.get(f"{stack.name}/{logical_id}", {})
        if attribute not in attributes:
            raise DefinitionError(
                f"{stack.name}: Fn::GetAtt {logical_id}.{attribute} has no local value"
            )
        return attributes[attribute]

    # -- resources --------------------------------------------------------------------------------

    def deploy(self, stack: StackTemplate) -> None:
        for logical_id, resource in resources_in_order(stack):
            kind = resource["Type"]
            if kind in NOT_APPLIED or kind.startswith("Custom::"):
                # Recorded with a name, so a Ref to it resolves; it has no attributes to read.
                self.stage.not_applied.append(f"{stack.name}/{logical_id} ({kind})")
                self.stage.physical[f"{stack.name}/{logical_id}"] = physical_name(
                    stack.name, logical_id
                )
                continue
            properties = self.resolve(stack, resource.get("Properties", {}))
            create = getattr(
                self.resources, "create_" + kind.replace("AWS::", "").replace("::", "_"), None
            )
            if create is None:
                raise DefinitionError(
                    f"{stack.name}/{logical_id}: resource type {kind} is not supported by the "
                    "local rehearsal (pipeline/rehearsal/resources.py)"
                )
            key = f"{stack.name}/{logical_id}"
            physical, attributes = create(
                stack, logical_id, properties, resource.get("Metadata", {})
            )
            self.stage.physical[key] = physical
            self.attributes[key] = attributes
        for name, output in stack.template.get("Outputs", {}).items():
            value = str(self.resolve(stack, output["Value"]))
            self.stage.outputs[f"{stack.name}.{name}"] = value
            export = output.get("Export", {}).get("Name")
            if export is not None:
                self.exports[str(self.resolve(stack, export))] = value


def deploy_stage(cdk_out: Path, stage: str, session: Any) -> LocalStage:
    """Create every resource of the stage's stacks in the endpoint `session` points at."""
    account = session.client("sts").get_caller_identity()["Account"]
    local = LocalStage(account=account, region=session.region_name)
    deployer = _Deployer(session, local)
    for stack in stage_stacks(cdk_out, stage):
        deployer.deploy(stack)
    return local
