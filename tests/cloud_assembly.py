"""The real CDK app, synthesized in process the way `cdk synth` does, once per test session.

The context is the real cdk.json's (feature flags, environments, toolchain) plus the metadata
the CDK CLI asks for (construct paths, asset paths). cdk-nag runs as in `cdk synth`: an
unacknowledged finding fails the synth, and every test that uses it. The `assembly` fixture
(tests/conftest.py) holds the result; stages are found wherever they are (at the top of the app
or inside the toolchain).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template

from pipeline.config import CDK_JSON, read_cdk_json
from pipeline.definition_cache import DEFINITION_CACHE_CONTEXT
from stacks.stage import NovaSftStage
from stacks.toolchain_stack import ToolchainStack

ENVIRONMENTS = ("sandbox", "dev", "staging", "prod")
CLI_CONTEXT = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": False,
    "@aws-cdk/core:validationReportJson": True,
    # Every test session builds the definitions with the SDK, whatever the project's cache holds.
    DEFINITION_CACHE_CONTEXT: "false",
}


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

    def stack_artifacts(self, env: str) -> dict[str, dict[str, Any]]:
        """The stack artifacts of `env`'s manifest, by display name (`Toolchain/dev/Data`)."""
        artifacts = self.manifest(env)["artifacts"]
        return {
            a["displayName"]: a
            for a in artifacts.values()
            if a["type"] == "aws:cloudformation:stack"
        }

    def toolchain_json(self) -> dict[str, Any]:
        path = self.outdir / self.toolchain.template_file
        return dict(json.loads(path.read_text(encoding="utf-8")))


def cdk_json_context(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A fresh copy of the project's cdk.json context, with the `extra` keys on top."""
    context = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"]
    return {**context, **(extra or {})}


def synthesize(outdir: Path) -> Assembly:
    """Synthesize every environment of cdk.json and the toolchain into `outdir`."""
    from app import build_app

    app = cdk.App(context=cdk_json_context(CLI_CONTEXT), outdir=str(outdir))
    build_app(app, read_cdk_json())
    app.synth()
    stages = {
        child.config.name: child for child in app.node.find_all() if isinstance(child, NovaSftStage)
    }
    (toolchain,) = [c for c in app.node.children if isinstance(c, ToolchainStack)]
    return Assembly(outdir=outdir, stages=stages, toolchain=toolchain)
