"""Synthesize the real app once per test session and share the cloud assembly.

The app is built in process from the real cdk.json (its feature flags and its environments),
with the metadata the CDK CLI would ask for (construct paths, asset paths), into a temporary
folder. cdk-nag gates this synth: an unacknowledged finding fails the fixture, and every test.

The app is synthesized with its toolchain. While cdk.json has no `toolchain` object (it waits
for package.json to pin cdk-assets), the session uses `TEST_TOOLCHAIN`, and `TEST_CDK_ASSETS`
where package.json pins no cdk-assets: the layout under test is then the one `cdk synth`
produces once the toolchain is switched on. Stages are found wherever they are (at the top of
the app or inside the toolchain).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from pipeline.config import CDK_JSON, ProjectConfig, ToolchainConfig, read_cdk_json
from stacks.cli_versions import PROJECT_ROOT, CliVersions
from stacks.stage import NovaSftStage
from stacks.toolchain_stack import ToolchainStack

ENVIRONMENTS = ("sandbox", "dev", "staging", "prod")
STAGE_STACKS = ("Data", "Training")
TEST_TOOLCHAIN = ToolchainConfig(
    account="444444444444",
    region="us-east-1",
    connection_arn=(
        "arn:aws:codeconnections:us-east-1:444444444444:"
        "connection/00000000-0000-0000-0000-000000000000"
    ),
    repository="example-org/nova-sft-pipeline",
    branch="main",
    stages=("dev", "staging", "prod"),
    manual_approval_before=("prod",),
)
TEST_CDK_ASSETS = "4.7.3"


def project_under_test() -> ProjectConfig:
    """cdk.json's project, with `TEST_TOOLCHAIN` when cdk.json configures no toolchain."""
    project = read_cdk_json()
    if project.toolchain is None:
        project = dataclasses.replace(project, toolchain=TEST_TOOLCHAIN)
    return project


def versions_under_test() -> CliVersions:
    """package.json's pins; `TEST_CDK_ASSETS` for cdk-assets where package.json has none."""
    manifest = json.loads((PROJECT_ROOT / "package.json").read_text(encoding="utf-8"))
    pins = manifest["devDependencies"]
    return CliVersions(cdk_cli=pins["aws-cdk"], cdk_assets=pins.get("cdk-assets", TEST_CDK_ASSETS))


@dataclass
class Assembly:
    """The synthesized app: its output folder, its stages by environment name, the toolchain."""

    outdir: Path
    stages: dict[str, NovaSftStage]
    toolchain: ToolchainStack

    def stage_dir(self, env: str) -> Path:
        """The cloud assembly folder of `env`'s stage."""
        return Path(self.stages[env].outdir)

    def template_path(self, env: str, stack: str) -> Path:
        """The template file of the `Data` or `Training` stack of `env`."""
        stage = self.stages[env]
        target = stage.data if stack == "Data" else stage.training
        return self.stage_dir(env) / target.template_file

    def template_json(self, env: str, stack: str) -> dict[str, Any]:
        return dict(json.loads(self.template_path(env, stack).read_text(encoding="utf-8")))

    def template(self, env: str, stack: str) -> Template:
        return Template.from_json(self.template_json(env, stack))

    def manifest(self, env: str) -> dict[str, Any]:
        path = self.stage_dir(env) / "manifest.json"
        return dict(json.loads(path.read_text(encoding="utf-8")))

    def toolchain_json(self) -> dict[str, Any]:
        path = self.outdir / self.toolchain.template_file
        return dict(json.loads(path.read_text(encoding="utf-8")))


@pytest.fixture(scope="session")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Assembly:
    """Every environment of cdk.json and the toolchain, synthesized once (cdk-nag included)."""
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
    build_app(app, project_under_test(), versions=versions_under_test())
    app.synth()
    stages = {
        child.config.name: child for child in app.node.find_all() if isinstance(child, NovaSftStage)
    }
    (toolchain,) = [c for c in app.node.children if isinstance(c, ToolchainStack)]
    return Assembly(outdir=outdir, stages=stages, toolchain=toolchain)


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
