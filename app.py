#!/usr/bin/env python3
"""The CDK app: one NovaSftStage per environment in cdk.json, plus the toolchain, gated by cdk-nag.

`cdk synth` runs this file (cdk.json "app"). The environments are the `nova-sft` block of
cdk.json's context, read here and nowhere else, with the same parser the operator commands use.
It is read from the file rather than through `app.node.try_get_context`, because CDK context
drops object members whose value is null, and the sandbox's `"account": null` must arrive
(docs/decisions/0005-stacks-and-iam.md). A bad cdk.json or package.json stops synth with a
message naming the key to fix.

Environments that the toolchain deploys (cdk.json `nova-sft.toolchain.stages`) are stages inside
the `Toolchain` stack; every other environment is a stage of its own at the top of the app.
Deploy the sandbox with `cdk deploy 'sandbox/*'`, the toolchain once with `cdk deploy Toolchain`
(docs/decisions/0008-toolchain-and-promotion.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from pipeline.config import CDK_JSON, ConfigError, ProjectConfig, override_tracking, read_cdk_json
from pipeline.tracking_config import TRACKING_OVERRIDE_CONTEXT
from stacks.cli_versions import CliVersionError, read_cli_versions
from stacks.stage import NovaSftStage
from stacks.toolchain_stack import ToolchainStack

TOOLCHAIN_ID = "Toolchain"


def build_app(app: cdk.App, project: ProjectConfig) -> cdk.App:
    """Add the project's stages and toolchain to `app`, and the AWS Solutions checks.

    A stage's construct id is its environment's name. The toolchain (construct id `Toolchain`)
    is added when `project.toolchain` is set and names at least one of `project.environments`;
    it then holds those environments' stages, in its order, and installs the CLI versions that
    package.json pins (`read_cli_versions`). Unacknowledged cdk-nag findings fail `app.synth()`.
    """
    toolchain = project.toolchain
    deployed_by_toolchain = [
        project.environments[name]
        for name in (toolchain.stages if toolchain is not None else ())
        if name in project.environments
    ]
    for environment in project.environments.values():
        if environment not in deployed_by_toolchain:
            NovaSftStage(app, environment.name, config=environment)
    if toolchain is not None and deployed_by_toolchain:
        ToolchainStack(
            app,
            TOOLCHAIN_ID,
            config=toolchain,
            stages=deployed_by_toolchain,
            versions=read_cli_versions(),
            stack_name=toolchain.pipeline_name,
        )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def main(cdk_json: Path = CDK_JSON) -> None:
    """Synthesize every environment; exit with the message when cdk.json is wrong."""
    try:
        app = cdk.App()
        # `-c nova-sft:tracking=<env>=<setting>` turns one environment's experiment tracking on
        # or off for this synth only (docs/decisions/0020-experiment-tracking.md).
        project = override_tracking(
            read_cdk_json(cdk_json), app.node.try_get_context(TRACKING_OVERRIDE_CONTEXT)
        )
        build_app(app, project)
    except (ConfigError, CliVersionError) as err:
        sys.exit(f"error: {err}")
    app.synth()


if __name__ == "__main__":
    main()
