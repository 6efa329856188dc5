"""Fixtures and helpers for the stack tests; the synthesized app is the session fixture
`assembly` (tests/conftest.py, tests/cloud_assembly.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from aws_cdk.assertions import Template

from tests.cloud_assembly import Assembly

STAGE_STACKS = ("Data", "Training")


@pytest.fixture(scope="session")
def sandbox_data(assembly: Assembly) -> Template:
    return assembly.template("sandbox", "Data")


@pytest.fixture(scope="session")
def sandbox_training(assembly: Assembly) -> Template:
    return assembly.template("sandbox", "Training")


def flatten(value: Any, paths: dict[str, str]) -> Any:
    """A CloudFormation value with its references written as readable placeholders.

    `Ref` -> `<path>`, `Fn::GetAtt` -> `<path.Attribute>` (path: the resource's construct path
    inside its stack, from `paths`), `Fn::ImportValue` -> `import:<export name>`,
    `Fn::Join` -> the joined string; lists and objects are flattened item by item.
    """
    if isinstance(value, list):
        return [flatten(item, paths) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((kind, argument),) = value.items()
        reference = _reference(kind, argument, paths)
        if reference is not None:
            return reference
    return {key: flatten(item, paths) for key, item in value.items()}


def _reference(kind: str, argument: Any, paths: dict[str, str]) -> str | None:
    if kind == "Ref":
        return f"<{paths.get(argument, argument)}>"
    if kind == "Fn::GetAtt":
        logical_id, attribute = argument
        return f"<{paths.get(logical_id, logical_id)}.{attribute}>"
    if kind == "Fn::ImportValue":
        return f"import:{argument}"
    if kind == "Fn::Join":
        separator, parts = argument
        return str(separator).join(str(flatten(part, paths)) for part in parts)
    return None


def construct_paths(template: Mapping[str, Any]) -> dict[str, str]:
    """Logical ID -> construct path inside the stack (`Functions/ValidateDataset`)."""
    paths = {}
    for logical_id, resource in template["Resources"].items():
        path = resource.get("Metadata", {}).get("aws:cdk:path")
        if path:
            paths[logical_id] = inner_path(path)
    return paths


def inner_path(path: str) -> str:
    """A construct path inside its stack, without `/Resource` at the end.

    Stage stacks are `<stage>/<Data|Training>/...` at the top of the app and
    `Toolchain/<stage>/<Data|Training>/...` inside the toolchain; the toolchain's own
    resources are `Toolchain/...`.
    """
    parts = path.split("/")
    stack_index = next((i for i, part in enumerate(parts[:3]) if part in STAGE_STACKS), 0)
    return "/".join(parts[stack_index + 1 :]).removesuffix("/Resource")


@pytest.fixture(scope="session")
def flat() -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """Flatten a whole template's references into placeholders (see `flatten`)."""

    def flatten_template(template: Mapping[str, Any]) -> dict[str, Any]:
        return dict(flatten(template, construct_paths(template)))

    return flatten_template
