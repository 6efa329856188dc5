"""Reading a synthesized stage from cdk.out: its stacks' templates in dependency order, and each
template's resources in the order their references need.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.rehearsal.execution_record import DefinitionError
from pipeline.rehearsal.graph import dependency_order

# A `${...}` variable of Fn::Sub (not the `${!literal}` escape).
SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


@dataclass
class StackTemplate:
    """One stack of the stage: its name, template, and the stacks it depends on."""

    name: str
    template: dict[str, Any]
    directory: Path
    dependencies: list[str]


def stage_stacks(cdk_out: Path, stage: str) -> list[StackTemplate]:
    """The stage's stacks from the cloud assembly, in dependency order."""
    manifest_path = cdk_out / f"assembly-{stage}" / "manifest.json"
    if not manifest_path.is_file():
        raise DefinitionError(f"{manifest_path} not found: run `make synth` first")
    directory = manifest_path.parent
    artifacts = json.loads(manifest_path.read_text(encoding="utf-8"))["artifacts"]
    stacks = {
        name: StackTemplate(
            name=name,
            template=json.loads(
                (directory / artifact["properties"]["templateFile"]).read_text(encoding="utf-8")
            ),
            directory=directory,
            dependencies=[d for d in artifact.get("dependencies", []) if d in artifacts],
        )
        for name, artifact in artifacts.items()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    # Ties keep the manifest's order, which is deterministic.
    needs = {name: stack.dependencies for name, stack in stacks.items()}
    return [stacks[name] for name in dependency_order(needs, f"the stacks of {manifest_path}")]


def resources_in_order(stack: StackTemplate) -> Iterator[tuple[str, dict[str, Any]]]:
    """The template's resources, each after those it references or depends on."""
    resources: dict[str, dict[str, Any]] = stack.template.get("Resources", {})

    def references(value: Any) -> set[str]:
        found: set[str] = set()
        if isinstance(value, dict):
            if "Ref" in value and isinstance(value["Ref"], str):
                found.add(value["Ref"])
            if "Fn::GetAtt" in value:
                target = value["Fn::GetAtt"]
                found.add(target[0] if isinstance(target, list) else target.split(".")[0])
            if "Fn::Sub" in value:
                text = value["Fn::Sub"]
                text = text if isinstance(text, str) else text[0]
                found.update(m.split(".")[0] for m in SUB_VARIABLE.findall(text))
            for item in value.values():
                found |= references(item)
        elif isinstance(value, list):
            for item in value:
                found |= references(item)
        return found

    needs = {
        logical_id: (references(r.get("Properties", {})) | set(_as_list(r.get("DependsOn"))))
        & set(resources)
        for logical_id, r in resources.items()
    }
    for logical_id in dependency_order(needs, f"the resources of {stack.name}"):
        yield logical_id, resources[logical_id]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
