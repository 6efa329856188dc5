"""`python -m pipeline definition`: an environment's pipeline definition JSON, as deployed, with
readable placeholders (such as "<TrainingRole.Arn>") where deployment fills in ARNs and names.
"""

from __future__ import annotations

import argparse
import json
import sys

from pipeline.commands import common

# What `definition` prints where the deployed stack passes CDK references.
PLACEHOLDERS: dict[str, str] = {
    "role_arn": "<PipelineRole.Arn>",
    "execution_role_arn": "<TrainingRole.Arn>",
    "validate_function_arn": "<ValidateFunction.Arn>",
    "prepare_function_arn": "<PrepareFunction.Arn>",
    "register_function_arn": "<RegisterFunction.Arn>",
    "prepare_evaluation_function_arn": "<PrepareEvaluationFunction.Arn>",
    "artifacts_bucket": "<ArtifactsBucket.Name>",
    "data_bucket": "<DataBucket.Name>",
    "kms_key_arn": "<DataKey.Arn>",
}
# ... and, where the environment tracks experiments, its MLflow tracking server.
TRACKING_PLACEHOLDER = "<MlflowTrackingServer.Arn>"


_HELP = "print the pipeline definition JSON"
_DESCRIPTION = (
    "Print an environment's SageMaker pipeline definition (JSON), as deployed, with "
    "placeholders such as <TrainingRole.Arn> for the values deployment fills in."
)


def add_parser(subparsers: common.Subparsers) -> None:
    parser = common.add_command(subparsers, "definition", _HELP, _DESCRIPTION, epilog=None)
    common.add_env_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pipeline.definition import build_pipeline, definition_json

    _, env = common.environment(args)
    tracking = TRACKING_PLACEHOLDER if env.tracking_enabled else None
    pipeline = build_pipeline(env=env, **PLACEHOLDERS, tracking_arn=tracking)
    document = json.loads(definition_json(pipeline))
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return common.EXIT_OK
