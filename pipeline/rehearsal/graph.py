"""The step graph of a stored definition: steps inside conditions flattened with the branch each
needs, what each step depends on, and a repeatable dependency order (also used for the stacks and
resources of a cloud assembly, `pipeline.rehearsal.templates`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.rehearsal.execution_record import DefinitionError

STEP_REF = re.compile(r"^Steps\.([A-Za-z0-9_-]+)\.(.+)$")


def dependency_order(needs: Mapping[str, Collection[str]], what: str) -> list[str]:
    """The keys of `needs`, each after every name it needs (names that are not keys are ignored).

    Ties keep the order of `needs`, so the order is repeatable. A cycle is a DefinitionError
    that names `what` (e.g. "steps") and the names left over.
    """
    ordered: list[str] = []
    done: set[str] = set()
    remaining = list(needs)
    while remaining:
        ready = next(
            (n for n in remaining if all(d in done or d not in needs for d in needs[n])), None
        )
        if ready is None:
            raise DefinitionError(f"dependency cycle among {what} {sorted(remaining)}")
        ordered.append(ready)
        done.add(ready)
        remaining.remove(ready)
    return ordered


@dataclass
class Node:
    """A step of the definition and the condition branches it runs under."""

    step: dict[str, Any]
    gates: tuple[tuple[str, bool], ...]  # (condition step name, branch it must have taken)


def flatten(
    steps: list[dict[str, Any]], gates: tuple[tuple[str, bool], ...] = ()
) -> dict[str, Node]:
    """Every step by name, those inside conditions with the branches that lead to them."""
    nodes: dict[str, Node] = {}
    for step in steps:
        name = step["Name"]
        nodes[name] = Node(step, gates)
        if step["Type"] == "Condition":
            arguments = step.get("Arguments", {})
            nodes.update(flatten(arguments.get("IfSteps", []), (*gates, (name, True))))
            nodes.update(flatten(arguments.get("ElseSteps", []), (*gates, (name, False))))
    return nodes


def dependencies(node: Node) -> set[str]:
    """The steps a node needs: DependsOn, its gates, and every step its expressions `Get`."""
    found = set(node.step.get("DependsOn", []))
    found.update(gate for gate, _branch in node.gates)

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            get = value.get("Get")
            if isinstance(get, str) and (match := STEP_REF.match(get)):
                found.add(match.group(1))
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    step = node.step
    if step["Type"] == "Condition":
        visit(step.get("Arguments", {}).get("Conditions", []))
    else:
        visit(step.get("Arguments", {}))
    return found


def step_order(nodes: dict[str, Node]) -> list[str]:
    """Topological order; ties keep the definition's order so runs are repeatable."""
    needs = {name: dependencies(node) for name, node in nodes.items()}
    for name, needed in needs.items():
        missing = sorted(needed - set(nodes))
        if missing:
            raise DefinitionError(f"step {name} depends on undefined step(s) {missing}")
    return dependency_order(needs, "steps")
