"""What the operator commands share on the AWS side: boto3 sessions and the account behind
them, the environment an ARN belongs to, and model packages named on the command line.

Sessions use the standard credential chain (or `--profile`), the environment's region from
cdk.json, and `AWS_ENDPOINT_URL` when it is set (the local rehearsal endpoint). A command
checks that the credentials are the environment's account before it reads or changes anything.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

from lambdas.evaluation import scorecard_of
from lambdas.registry import CheckpointRecord, describe_checkpoint
from pipeline.commands.common import InputError, OperationError
from pipeline.config import EnvironmentConfig, ProjectConfig

_PACKAGE_ARN = re.compile(
    r"arn:aws[a-z-]*:sagemaker:([a-z0-9-]+):([0-9]{12}):model-package/([A-Za-z0-9-]+)/([0-9]+)"
)
EXECUTION_ARN = re.compile(
    r"arn:aws[a-z-]*:sagemaker:([a-z0-9-]+):([0-9]{12}):pipeline/([A-Za-z0-9-]+)/execution/"
    r"([a-z0-9]+)"
)


# -- sessions and accounts ------------------------------------------------------------------------


@functools.cache
def _data_loader() -> Any:
    """botocore's service model loader, shared by every session a command makes: loading the
    SageMaker model takes about 0.3 s, and a command may make sessions for two accounts."""
    import botocore.loaders

    return botocore.loaders.create_loader()


def make_session(profile: str | None, region: str | None) -> Any:
    """A boto3 session with `profile` (None: the standard credential chain) in `region`."""
    import boto3
    import botocore.session

    core = botocore.session.get_session()
    core.register_component("data_loader", _data_loader())
    session = boto3.Session(botocore_session=core, profile_name=profile or None, region_name=region)
    paths = _data_loader().search_paths
    paths[:] = list(dict.fromkeys(paths))  # boto3 appends its own folder on every session
    return session


class Sessions:
    """The boto3 sessions of one command, one per (profile, region). Each asks STS who its
    credentials are at most once, however often the command needs the account."""

    def __init__(self) -> None:
        self._sessions: dict[tuple[str | None, str | None], Any] = {}
        self._accounts: dict[tuple[str | None, str | None], str] = {}

    def session(self, profile: str | None, region: str | None) -> Any:
        key = (profile or None, region)
        if key not in self._sessions:
            self._sessions[key] = make_session(profile, region)
        return self._sessions[key]

    def account(self, profile: str | None, region: str | None) -> str:
        """The account of the session's credentials (STS, on the first call only)."""
        key = (profile or None, region)
        if key not in self._accounts:
            self._accounts[key] = caller_account(self.session(profile, region))
        return self._accounts[key]

    def connect(self, profile: str | None, env: EnvironmentConfig) -> Any:
        """A session for `env`, after checking that the credentials are its account's."""
        check_account(self.account(profile, env.region), env)
        return self.session(profile, env.region)


def caller_account(session: Any) -> str:
    """The account of `session`'s credentials (one STS GetCallerIdentity call). A profile that
    does not exist raises ProfileNotFound (what was typed is wrong), any other failure
    OperationError."""
    try:
        return str(session.client("sts").get_caller_identity()["Account"])
    except ProfileNotFound:
        raise
    except (ClientError, BotoCoreError) as error:
        raise OperationError(
            f"cannot identify your AWS credentials ({error}): sign in (e.g. `aws sso login`) "
            "or pass --profile"
        ) from error


def check_account(account: str, env: EnvironmentConfig) -> None:
    """OperationError when `account` (the credentials') is not the environment's account."""
    if env.account is not None and account != env.account:
        raise OperationError(
            f"your credentials are for account {account}, but environment {env.name} is account "
            f"{env.account}: pass --profile with credentials for {env.account}"
        )


# -- environments and model packages named on the command line ------------------------------


def environment_of_group(project: ProjectConfig, group: str) -> EnvironmentConfig:
    """The environment whose model package group is `group`; InputError if none."""
    for env in project.environments.values():
        if env.model_package_group_name == group:
            return env
    known = ", ".join(e.model_package_group_name for e in project.environments.values())
    raise InputError(f"model package group {group} belongs to no environment in cdk.json ({known})")


def environment_of_execution(project: ProjectConfig, arn: str) -> EnvironmentConfig:
    """The environment whose pipeline ran the execution `arn`; InputError if none."""
    match = EXECUTION_ARN.fullmatch(arn)
    if match is None:
        raise InputError(
            f"{arn!r} is not a pipeline execution ARN "
            "(arn:aws:sagemaker:<region>:<account>:pipeline/<name>/execution/<id>)"
        )
    for env in project.environments.values():
        if env.pipeline_name == match.group(3):
            if env.region != match.group(1):
                raise InputError(
                    f"{arn} is in region {match.group(1)}, but environment {env.name} is in "
                    f"{env.region}"
                )
            return env
    raise InputError(f"pipeline {match.group(3)} belongs to no environment in cdk.json")


@dataclass(frozen=True)
class PackageRef:
    """A model package version named on the command line, with the environment that owns it."""

    env: EnvironmentConfig
    arn: str


def resolve_package(
    project: ProjectConfig, text: str, env: EnvironmentConfig | None, account: Callable[[], str]
) -> PackageRef:
    """A package given as its ARN, or as a version number of `env`'s group.

    `account` gives the caller's account, used only to spell the ARN of a version number.
    """
    match = _PACKAGE_ARN.fullmatch(text)
    if match is not None:
        owner = environment_of_group(project, match.group(3))
        if match.group(1) != owner.region or owner.account not in (None, match.group(2)):
            raise InputError(
                f"{text} is in {match.group(2)}/{match.group(1)}, but environment {owner.name} "
                f"is {owner.account or 'your account'}/{owner.region}"
            )
        if env is not None and env.name != owner.name:
            raise InputError(f"{text} is a package of environment {owner.name}, not {env.name}")
        return PackageRef(owner, text)
    if text.isdigit() and env is not None:
        arn = (
            f"arn:aws:sagemaker:{env.region}:{env.account or account()}:model-package/"
            f"{env.model_package_group_name}/{int(text)}"
        )
        return PackageRef(env, arn)
    if text.isdigit():
        raise InputError(f"version {text}: name the environment with --env, or give the ARN")
    raise InputError(
        f"{text!r} is not a model package: give its ARN "
        "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>) or, with --env, "
        "its version number"
    )


def describe_package(sm: Any, ref: PackageRef) -> CheckpointRecord:
    """The package's record; OperationError when it does not exist or is not a checkpoint."""
    try:
        record = describe_checkpoint(sm, ref.arn)
    except ClientError as error:
        raise OperationError(
            f"cannot describe {ref.arn}: {error}; list the packages with "
            f"`python -m pipeline lineage --env {ref.env.name}`"
        ) from error
    if not record.checkpoint_uri:
        raise OperationError(f"{ref.arn} records no checkpoint: it was not registered by a run")
    return record


def record_dict(record: CheckpointRecord) -> dict[str, Any]:
    """A checkpoint as JSON-ready data."""
    return {
        "model_package_arn": record.model_package_arn,
        "version": record.version,
        "approval_status": record.approval_status,
        "created": record.creation_time.isoformat() if record.creation_time else None,
        "checkpoint_s3_uri": record.checkpoint_uri,
        "parent": record.parent,
        "technique": record.technique,
        "training_job": record.training_job_name,
        "training_steps": record.training_steps,
        "final_training_loss": record.final_loss,
        "evaluation": evaluation_dict(record),
    }


def evaluation_dict(record: CheckpointRecord) -> dict[str, Any] | None:
    """A checkpoint's recorded score, its change from the parent and its gate's verdict, as
    JSON-ready data; None when it was never evaluated."""
    card = scorecard_of(record.metadata)
    if card is None:
        return None
    return {
        "task": card.task,
        "metric": card.metric,
        "score": card.score,
        "parent_score": card.parent_score,
        "change": card.change,
        "gate_verdict": card.verdict or None,
        "metrics": dict(sorted(card.metrics.items())),
        "report": card.report_uri or None,
    }
