#!/usr/bin/env python3
"""The CDK app: one NovaSftStage per environment in cdk.json, gated by cdk-nag.

`cdk synth` runs this file (cdk.json "app"). The environments are the `nova-sft` block of
cdk.json's context, read here and nowhere else, with the same parser the operator commands use.
It is read from the file rather than through `app.node.try_get_context`, because CDK context
drops object members whose value is null, and the sandbox's `"account": null` must arrive
(docs/decisions/0005-environment-stacks-and-iam.md). A bad cdk.json stops synth with a message
naming the key to fix. Deploy the sandbox with `cdk deploy 'sandbox/*'`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from pipeline.config import CDK_JSON, ConfigError, ProjectConfig, read_cdk_json
from stacks.stage import NovaSftStage


def build_app(app: cdk.App, project: ProjectConfig) -> cdk.App:
    """Add one stage per environment of `project` to `app`, and the AWS Solutions checks.

    The stage's construct id is the environment's name. Unacknowledged cdk-nag findings fail
    `app.synth()`.
    """
    for environment in project.environments.values():
        NovaSftStage(app, environment.name, config=environment)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def main(cdk_json: Path = CDK_JSON) -> None:
    """Synthesize every environment; exit with the message when cdk.json is wrong."""
    try:
        project = read_cdk_json(cdk_json)
    except ConfigError as err:
        sys.exit(f"error: {err}")
    app = cdk.App()
    build_app(app, project)
    app.synth()


if __name__ == "__main__":
    main()
