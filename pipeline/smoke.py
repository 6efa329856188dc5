"""Smoke test of a deployed environment: is its SageMaker pipeline there, and is it this commit's?

The toolchain runs it after each stage deploys, from the same checkout it deployed:

    python -m pipeline.smoke --env dev --role-arn <ARN of the stage's smoke test role>

It assumes `--role-arn` (the stage's read-only smoke test role, stacks/smoke_access.py) when
given, else uses the standard credential chain, and checks, in the environment's region:
- the credentials belong to the environment's account (when cdk.json names one);
- the pipeline `nova-sft-<env>` exists and is Active;
- its definition declares exactly this commit's parameters (`definition.parameter_specs`): the
  same names, types, defaults and allowed values, so a stale or hand-edited pipeline fails;
- the model package group `nova-sft-<env>-checkpoints` exists.
It starts nothing and changes nothing. Exit status: 0 every check passed, 1 a check failed (each
failure on stderr, with what to look at), 2 the command line or cdk.json is wrong.
Needs boto3 and the standard library only (no SageMaker SDK, no CDK).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lambdas.aws_errors import error_code
from pipeline.config import CDK_JSON, ConfigError, EnvironmentConfig, read_cdk_json
from pipeline.definition import ParameterSpec, parameter_specs
from pipeline.serving_config import state_machine_name

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
SESSION_NAME = "nova-sft-smoke-test"
NOT_FOUND_CODES = ("ResourceNotFound", "ValidationException")


def expected_parameters(env: EnvironmentConfig) -> dict[str, dict[str, Any]]:
    """The `Parameters` entries this commit's definition declares for `env`, by name."""
    return {spec.name: _declaration(spec) for spec in parameter_specs(env)}


def _declaration(spec: ParameterSpec) -> dict[str, Any]:
    declared: dict[str, Any] = {"Name": spec.name, "Type": spec.kind}
    if spec.default is not None:
        declared["DefaultValue"] = spec.default
    if spec.choices:
        declared["EnumValues"] = list(spec.choices)
    return declared


def parameter_problems(deployed: Sequence[Mapping[str, Any]], env: EnvironmentConfig) -> list[str]:
    """How the deployed definition's `Parameters` differ from this commit's; [] when equal."""
    expected = expected_parameters(env)
    found = {str(p.get("Name")): dict(p) for p in deployed}
    problems = []
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing:
        problems.append(f"parameters missing from the deployed pipeline: {', '.join(missing)}")
    if unexpected:
        problems.append(f"parameters this commit does not define: {', '.join(unexpected)}")
    for name in sorted(set(expected) & set(found)):
        for key in ("Type", "DefaultValue", "EnumValues"):
            want, got = expected[name].get(key), found[name].get(key)
            if want != got:
                problems.append(f"parameter {name}: {key} is {got!r}, this commit has {want!r}")
    return problems


def check_environment(session: Any, env: EnvironmentConfig) -> tuple[list[str], list[str]]:
    """Run every check against the environment `session` reaches: (passed, failures)."""
    from botocore.exceptions import BotoCoreError, ClientError

    passed: list[str] = []
    failures: list[str] = []
    try:
        account = session.client("sts").get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as error:
        return passed, [f"cannot use the credentials: {error}"]
    if env.account is not None and account != env.account:
        return passed, [
            f"the credentials are for account {account}, but environment {env.name} is in "
            f"{env.account}: pass the stage's smoke test role with --role-arn"
        ]
    passed.append(f"credentials are for account {account}")

    sm = session.client("sagemaker", region_name=env.region)
    where = f"account {account}, {env.region}"
    try:
        pipeline = sm.describe_pipeline(PipelineName=env.pipeline_name)
    except ClientError as error:
        if error_code(error) in NOT_FOUND_CODES:
            failures.append(
                f"pipeline {env.pipeline_name} not found in {where}: did stack "
                f"nova-sft-{env.name}-training deploy?"
            )
        else:
            failures.append(f"cannot describe pipeline {env.pipeline_name} in {where}: {error}")
    else:
        passed.append(f"pipeline {env.pipeline_name} exists in {where}")
        failures += _pipeline_problems(pipeline, env, passed)

    try:
        sm.describe_model_package_group(ModelPackageGroupName=env.model_package_group_name)
    except ClientError as error:
        failures.append(
            f"model package group {env.model_package_group_name} not found in {where}: "
            f"{error.response.get('Error', {}).get('Message', error)}"
        )
    else:
        passed.append(f"model package group {env.model_package_group_name} exists")
    if env.serving.enabled:
        _check_serving(session, env, account, passed, failures)
    return passed, failures


def _check_serving(
    session: Any, env: EnvironmentConfig, account: str, passed: list[str], failures: list[str]
) -> None:
    """The serving state machine exists (issue 15), when the environment serves checkpoints."""
    from botocore.exceptions import ClientError

    name = state_machine_name(env.name)
    arn = f"arn:aws:states:{env.region}:{account}:stateMachine:{name}"
    try:
        machine = session.client("stepfunctions", region_name=env.region).describe_state_machine(
            stateMachineArn=arn
        )
    except ClientError as error:
        failures.append(
            f"serving state machine {name} not found in account {account}, {env.region}: "
            f"{error.response.get('Error', {}).get('Message', error)}"
        )
        return
    if machine.get("status", "ACTIVE") != "ACTIVE":
        failures.append(f"serving state machine {name} is {machine.get('status')!r}, not ACTIVE")
    else:
        passed.append(f"serving state machine {name} exists")


def _pipeline_problems(
    pipeline: Mapping[str, Any], env: EnvironmentConfig, passed: list[str]
) -> list[str]:
    status = pipeline.get("PipelineStatus")
    problems = []
    if status != "Active":
        problems.append(f"pipeline {env.pipeline_name} is {status!r}, not 'Active'")
    try:
        definition = json.loads(pipeline.get("PipelineDefinition") or "")
        deployed = definition["Parameters"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        return [*problems, f"pipeline {env.pipeline_name} has no readable definition: {error!r}"]
    parameters = parameter_problems(deployed, env)
    if not parameters:
        passed.append(f"its {len(deployed)} parameters are this commit's, with its defaults")
    return problems + parameters


def assume_role(base: Any, role_arn: str, region: str) -> Any:
    """A boto3 Session with `role_arn`'s temporary credentials, from `base`'s."""
    import boto3

    credentials = base.client("sts", region_name=region).assume_role(
        RoleArn=role_arn, RoleSessionName=SESSION_NAME
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


def _out(line: str) -> None:
    sys.stdout.write(f"{line}\n")


def _err(line: str) -> None:
    sys.stderr.write(f"{line}\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.smoke",
        description="Check that an environment's deployed SageMaker pipeline is this commit's.",
        epilog="Exit status: 0 every check passed, 1 a check failed, 2 usage error.",
    )
    parser.add_argument("--env", required=True, metavar="NAME", help="environment in cdk.json")
    parser.add_argument(
        "--role-arn",
        metavar="ARN",
        help="role to assume in the environment's account (default: the current credentials)",
    )
    parser.add_argument(
        "--cdk-json", metavar="PATH", type=Path, default=CDK_JSON, help="default: %(default)s"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the smoke test; print each passed check on stdout and each failure on stderr."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:
        return EXIT_OK if exit_.code == 0 else EXIT_USAGE
    try:
        env = read_cdk_json(args.cdk_json).environment(args.env)
    except ConfigError as error:
        _err(f"error: {error}")
        return EXIT_USAGE
    session = boto3.Session(region_name=env.region)
    if args.role_arn:
        try:
            session = assume_role(session, args.role_arn, env.region)
        except (BotoCoreError, ClientError) as error:
            _err(f"FAILED: cannot assume {args.role_arn}: {error}")
            return EXIT_FAILED
    passed, failures = check_environment(session, env)
    for line in passed:
        _out(f"ok: {line}")
    for line in failures:
        _err(f"FAILED: {line}")
    _out(f"smoke test of {env.name}: {'FAILED' if failures else 'passed'}")
    return EXIT_FAILED if failures else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
