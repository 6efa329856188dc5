"""Synthesize the real app once per test session and share the cloud assembly.

The app is built in process from the real cdk.json (its feature flags and its environments),
with the metadata the CDK CLI would ask for (construct paths, asset paths), into a temporary
folder. cdk-nag gates this synth: an unacknowledged finding fails the fixture, and every test.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from pipeline.config import CDK_JSON, read_cdk_json
from stacks.stage import NovaSftStage

ENVIRONMENTS = ("sandbox", "dev", "staging", "prod")


@dataclass
class Assembly:
    """The synthesized app: its output folder and its stages by environment name."""

    outdir: Path
    stages: dict[str, NovaSftStage]

    def template_path(self, env: str, stack: str) -> Path:
        """The template file of the `Data` or `Training` stack of `env`."""
        stage = self.stages[env]
        target = stage.data if stack == "Data" else stage.training
        return self.outdir / f"assembly-{env}" / target.template_file

    def template_json(self, env: str, stack: str) -> dict[str, Any]:
        return dict(json.loads(self.template_path(env, stack).read_text(encoding="utf-8")))

    def template(self, env: str, stack: str) -> Template:
        return Template.from_json(self.template_json(env, stack))

    def manifest(self, env: str) -> dict[str, Any]:
        path = self.outdir / f"assembly-{env}" / "manifest.json"
        return dict(json.loads(path.read_text(encoding="utf-8")))


@pytest.fixture(scope="session")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Assembly:
    """Every environment of cdk.json, synthesized once (cdk-nag included)."""
    from app import build_app

    context = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"]
    context.update(
        {
            "aws:cdk:enable-path-metadata": True,
            "aws:cdk:enable-asset-metadata": True,
            "aws:cdk:version-reporting": False,
            "@aws-cdk/core:validationReportJson": True,
        }
    )
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = cdk.App(context=context, outdir=str(outdir))
    build_app(app, read_cdk_json())
    app.synth()
    stages = {
        child.node.id: child for child in app.node.children if isinstance(child, NovaSftStage)
    }
    return Assembly(outdir=outdir, stages=stages)


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
            inner = path.split("/", 2)[2]  # drop "<stage>/<stack>/"
            paths[logical_id] = inner.removesuffix("/Resource")
    return paths


@pytest.fixture(scope="session")
def flat() -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """Flatten a whole template's references into placeholders (see `flatten`)."""

    def flatten_template(template: Mapping[str, Any]) -> dict[str, Any]:
        return dict(flatten(template, construct_paths(template)))

    return flatten_template
