"""`python -m pipeline deploy`, `undeploy` and `invoke`: serve a checkpoint on Amazon Bedrock.

`deploy` and `undeploy` start the environment's serving state machine (the one an approval or a
rejection starts: stacks/serving.py) for one package, by hand; `invoke` sends a prompt to the
package's on-demand deployment with Bedrock Runtime's Converse and prints the answer (the smoke
test to run after an approval). What is served is recorded on the package
(`ServingStatus`, `ServingDeploymentArn`: pipeline/serving_config.py).
"""

from __future__ import annotations

import argparse
import functools
import json
import uuid
from typing import Any

from botocore.exceptions import ClientError

from pipeline.commands import aws, common
from pipeline.config import EnvironmentConfig, read_cdk_json
from pipeline.serving_config import (
    DEPLOYED,
    KEY_SERVING_DEPLOYMENT,
    KEY_SERVING_STATUS,
    REQUEST_DEPLOY,
    REQUEST_UNDEPLOY,
    state_machine_name,
)

_DESCRIPTIONS = {
    "deploy": "Import an approved checkpoint into Amazon Bedrock and deploy it on demand, by "
    "starting the environment's serving state machine (the one an approval starts). It "
    "records the custom model and deployment ARNs on the package; follow it with `lineage`.",
    "undeploy": "Delete a checkpoint's on-demand deployment (the custom model is kept unless "
    "cdk.json says otherwise), by starting the environment's serving state machine.",
    "invoke": "Send a prompt to a deployed checkpoint with Bedrock Runtime's Converse and print "
    "the answer: the smoke test after an approval.",
}


_SUMMARIES = {
    "deploy": "serve an approved checkpoint on Bedrock (on demand)",
    "undeploy": "take a checkpoint's Bedrock deployment down",
    "invoke": "send a prompt to a deployed checkpoint",
}


def add_parser(subparsers: common.Subparsers) -> None:
    """`deploy`, `undeploy`, then `invoke`."""
    for command in ("deploy", "undeploy", "invoke"):
        parser = common.add_command(
            subparsers, command, _SUMMARIES[command], _DESCRIPTIONS[command]
        )
        parser.add_argument(
            "package", metavar="PACKAGE", help="model package ARN, or version number with --env"
        )
        if command == "invoke":
            parser.add_argument("prompt", metavar="PROMPT", help="the text to send")
            parser.add_argument(
                "--max-tokens", type=int, default=512, metavar="N", help="(default: %(default)s)"
            )
        common.add_env_arguments(parser, env_help="environment of a version number")
        common.add_aws_arguments(parser)
        parser.set_defaults(run=run, command_name=command)


def run(args: argparse.Namespace) -> int:
    project = read_cdk_json(args.cdk_json)
    env = common.named_environment(project, args.env, "--env") if args.env else None
    default_env = env or common.named_environment(project, project.default_environment, "--env")
    sessions = aws.Sessions()
    account = functools.partial(sessions.account, args.profile, default_env.region)
    ref = aws.resolve_package(project, args.package, env, account)
    if not ref.env.serving.enabled:
        raise common.OperationError(
            f"environment {ref.env.name} does not serve checkpoints: set "
            f'"serving": {{"deploy": "on_approval"}} in its cdk.json entry and deploy the stage'
        )
    session = sessions.connect(args.profile, ref.env)
    record = aws.describe_package(session.client("sagemaker"), ref)
    if args.command_name == "invoke":
        answer = invoke(session.client("bedrock-runtime"), record, args.prompt, args.max_tokens)
        if args.json:
            common.emit_json(answer)
        else:
            common.print_text(answer["text"])
        return common.EXIT_OK
    if args.command_name == "deploy" and record.approval_status != "Approved":
        raise common.OperationError(
            f"{ref.arn} is {record.approval_status}: only an approved checkpoint is deployed "
            f"(`python -m pipeline approve {ref.arn}` first)"
        )
    request = REQUEST_DEPLOY if args.command_name == "deploy" else REQUEST_UNDEPLOY
    execution = start(session.client("stepfunctions"), ref.env, ref.arn, request)
    if args.json:
        common.emit_json({"execution_arn": execution, "request": request, "package": ref.arn})
    else:
        common.print_text(
            f"{request}: started {execution}\n"
            f"follow it with `aws stepfunctions describe-execution --execution-arn {execution}`, "
            f"then `python -m pipeline lineage --env {ref.env.name}`"
        )
    return common.EXIT_OK


def state_machine_arn(env: EnvironmentConfig, package_arn: str) -> str:
    """The serving state machine's ARN, in the package's account and region."""
    region, account = package_arn.split(":")[3:5]
    return f"arn:aws:states:{region}:{account}:stateMachine:{state_machine_name(env.name)}"


def start(sfn: Any, env: EnvironmentConfig, package_arn: str, request: str) -> str:
    """Start the serving state machine for one package; its input is shaped like the approval
    event's, with `Request` saying what to do whatever the package's status."""
    payload = {
        "source": "nova-sft.operator",
        "detail-type": "Serving request",
        "detail": {
            "ModelPackageArn": package_arn,
            "ModelPackageGroupName": env.model_package_group_name,
            "Request": request,
        },
    }
    version = package_arn.rsplit("/", 1)[-1]
    try:
        response = sfn.start_execution(
            stateMachineArn=state_machine_arn(env, package_arn),
            name=f"{request}-v{version}-{uuid.uuid4().hex[:12]}",
            input=json.dumps(payload),
        )
    except ClientError as error:
        raise common.OperationError(
            f"cannot start {state_machine_name(env.name)}: {error}; is the stage deployed with "
            "serving on?"
        ) from error
    return str(response["executionArn"])


def invoke(runtime: Any, record: Any, prompt: str, max_tokens: int) -> dict[str, Any]:
    """Converse with the package's deployment; the answer's text, the deployment and usage."""
    if not prompt.strip():
        raise common.UsageError("PROMPT must not be empty")
    if max_tokens < 1:
        raise common.UsageError(f"--max-tokens must be at least 1, got {max_tokens}")
    status = record.metadata.get(KEY_SERVING_STATUS)
    deployment = record.metadata.get(KEY_SERVING_DEPLOYMENT)
    if status != DEPLOYED or not deployment:
        raise common.OperationError(
            f"{record.model_package_arn} is not deployed (ServingStatus: {status or 'none'}); "
            f"deploy it with `python -m pipeline deploy {record.model_package_arn}`"
        )
    try:
        response = runtime.converse(
            modelId=deployment,
            messages=[{"role": "user", "content": [{"text": prompt}]}],
            inferenceConfig={"maxTokens": max_tokens},
        )
    except ClientError as error:
        raise common.OperationError(f"cannot converse with {deployment}: {error}") from error
    blocks = response["output"]["message"]["content"]
    return {
        "text": "".join(block.get("text", "") for block in blocks),
        "deployment_arn": deployment,
        "stop_reason": response.get("stopReason"),
        "usage": response.get("usage", {}),
    }
