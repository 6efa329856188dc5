"""Synthesize the real CDK app in process, the way `cdk synth` would, for tests that need it.

The context is the real cdk.json's (feature flags and environments) plus the metadata the CDK
CLI asks for (construct paths, asset paths). cdk-nag runs as in `cdk synth`: an unacknowledged
finding fails the synth.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path

import aws_cdk as cdk

from pipeline.config import CDK_JSON, read_cdk_json

CLI_CONTEXT = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": False,
    "@aws-cdk/core:validationReportJson": True,
}


def synthesize(outdir: Path, environments: Iterable[str] | None = None) -> cdk.App:
    """Synthesize the app into `outdir`, with only `environments` (default: all of cdk.json)."""
    from app import build_app

    project = read_cdk_json()
    if environments is not None:
        wanted = list(environments)
        project = dataclasses.replace(
            project, environments={name: project.environment(name) for name in wanted}
        )
    context = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"]
    app = cdk.App(context={**context, **CLI_CONTEXT}, outdir=str(outdir))
    build_app(app, project)
    app.synth()
    return app
