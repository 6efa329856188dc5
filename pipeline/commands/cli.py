"""Operator commands: `python -m pipeline <command> ...` (`--help` on any command explains it).

Each command is a pair of functions here: `_add_<command>(subparsers)` declares its arguments
and `_<command>(args) -> int` runs it; the work itself is in `pipeline.commands.operate` and
`pipeline.commands.promote`. Exit statuses: 0 success (for `validate-data`: the data is valid),
1 the command could not do its work or the run/data failed, 2 what was typed is wrong (a usage
error, an unknown environment or parameter, a bad value). Every error is one line on stderr,
never a traceback. `--json` prints one JSON document on stdout for scripts.

Commands:
- `definition [--env NAME]`: the pipeline definition JSON of an environment, with readable
  placeholders (such as "<TrainingRole.Arn>") where deployment fills in ARNs and names.
- `start`, `watch`, `lineage`, `metrics`, `approve`, `reject`: run and iterate (issue 7).
- `validate-data`: check a dataset on this machine before a run (issue 8).
- `promote`: replay an approved checkpoint's run in the next environment (issue 5).

Commands that call AWS use the standard credential chain (or `--profile`), the environment's
region from cdk.json, and `AWS_ENDPOINT_URL` when it is set (the local rehearsal endpoint).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from pipeline.config import CDK_JSON, ConfigError, EnvironmentConfig, ProjectConfig, read_cdk_json

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

# What `definition` prints where the deployed stack passes CDK references.
PLACEHOLDERS: dict[str, str] = {
    "role_arn": "<PipelineRole.Arn>",
    "execution_role_arn": "<TrainingRole.Arn>",
    "validate_function_arn": "<ValidateFunction.Arn>",
    "prepare_function_arn": "<PrepareFunction.Arn>",
    "register_function_arn": "<RegisterFunction.Arn>",
    "artifacts_bucket": "<ArtifactsBucket.Name>",
    "data_bucket": "<DataBucket.Name>",
    "kms_key_arn": "<DataKey.Arn>",
}

_EPILOG_EXIT = "Exit status: 0 done, 1 failed, 2 usage error (bad argument or value)."


class UsageError(Exception):
    """The command line is wrong; the message says how to fix it (exit 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and no usage dump."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _add_env_arguments(parser: argparse.ArgumentParser, *, env_help: str = "") -> None:
    parser.add_argument(
        "--env",
        metavar="NAME",
        help=env_help or "environment in cdk.json (default: its default_environment)",
    )
    _add_cdk_json(parser)


def _add_cdk_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cdk-json",
        metavar="PATH",
        type=Path,
        default=CDK_JSON,
        help="the project's cdk.json (default: %(default)s)",
    )


def _add_aws_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        metavar="NAME",
        help="AWS profile with credentials for the environment's account (default: the "
        "standard credential chain)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document for scripts")


def _environment(args: argparse.Namespace) -> tuple[ProjectConfig, EnvironmentConfig]:
    """cdk.json (read once per command) and the chosen environment; a bad cdk.json fails (1),
    an unknown name is a usage error (2)."""
    project = read_cdk_json(args.cdk_json)
    name = args.env or project.default_environment
    return project, _named_environment(project, name, "--env")


def _named_environment(project: ProjectConfig, name: str, option: str) -> EnvironmentConfig:
    try:
        return project.environment(name)
    except ConfigError as error:
        raise UsageError(f"{option}: {error}") from None


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


class _Sessions:
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
        from pipeline.commands.operate import caller_account

        key = (profile or None, region)
        if key not in self._accounts:
            self._accounts[key] = caller_account(self.session(profile, region))
        return self._accounts[key]

    def connect(self, profile: str | None, env: EnvironmentConfig) -> Any:
        """A session for `env`, after checking that the credentials are its account's."""
        from pipeline.commands.operate import check_account

        check_account(self.account(profile, env.region), env)
        return self.session(profile, env.region)


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")


def _emit_json(document: Any) -> None:
    _print(json.dumps(document, indent=2, sort_keys=True, default=str))


def _key_values(pairs: Sequence[str] | None, option: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs or ():
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"{option} {pair!r}: write NAME=VALUE, e.g. {option} MaxSteps=200")
        if name in values:
            raise UsageError(f"{option} names {name} twice: give each parameter once")
        values[name] = value.strip()
    return values


def _prices(args: argparse.Namespace) -> dict[str, dict[str, float]] | None:
    from pipeline.commands.prices import PriceTableError, load_prices

    if args.prices is None:
        return None
    try:
        return load_prices(args.prices)
    except PriceTableError as error:
        raise UsageError(f"--prices: {error}") from None


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        metavar="NAME=VALUE",
        action="append",
        help="set a pipeline parameter, e.g. --set MaxSteps=200 --set LearningRate=2e-5 "
        "(repeatable; names as in the pipeline definition)",
    )
    parser.add_argument(
        "--prices",
        metavar="FILE.json",
        type=Path,
        help='price table for the estimate: {"<region>": {"<instance type>": <USD per hour>}} '
        "(default: the approximate table in pipeline/commands/prices.py)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="check and print what would run; start nothing"
    )


# -- definition ---------------------------------------------------------------------------------


def _add_definition(subparsers: argparse._SubParsersAction[_Parser]) -> None:
    parser = subparsers.add_parser(
        "definition",
        help="print the pipeline definition JSON",
        description=(
            "Print an environment's SageMaker pipeline definition (JSON), as deployed, with "
            "placeholders such as <TrainingRole.Arn> for the values deployment fills in."
        ),
    )
    _add_env_arguments(parser)
    parser.set_defaults(run=_definition)


def _definition(args: argparse.Namespace) -> int:
    from pipeline.definition import build_pipeline, definition_json

    _, env = _environment(args)
    pipeline = build_pipeline(env=env, **PLACEHOLDERS)
    document = json.loads(definition_json(pipeline))
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return EXIT_OK


# -- start --------------------------------------------------------------------------------------


def _add_start(subparsers: argparse._SubParsersAction[_Parser]) -> None:
    parser = subparsers.add_parser(
        "start",
        help="start a training run (checked locally first)",
        description=(
            "Start one execution of an environment's pipeline. The parameters are checked "
            "first against the deployed pipeline and with the same code the PrepareRecipe step "
            "runs, so a typo fails here rather than after instances started. Prints what will "
            "run, the prior checkpoint, and an upper-bound estimate of instance-hours and cost. "
            "The request carries a client token derived from the pipeline, the parameters and "
            "the UTC day, so that SageMaker treats a retried command as the same request; pass "
            "--client-token to start an identical run again on the same day."
        ),
        epilog="Example: python -m pipeline start --env dev --train s3://bucket/data/train.jsonl "
        "--from latest-approved --set MaxSteps=200. " + _EPILOG_EXIT,
    )
    _add_env_arguments(parser)
    _add_aws_arguments(parser)
    parser.add_argument(
        "--train", metavar="S3_URI", help="training data: s3://bucket/key.jsonl (or a folder/)"
    )
    parser.add_argument(
        "--from",
        dest="source",
        metavar="SOURCE",
        help="what to train from: base (the base model), latest (newest checkpoint not rejected), "
        "latest-approved (newest approved checkpoint: the usual way to iterate) or an s3:// "
        "checkpoint URI (default: the pipeline's default, the base model)",
    )
    parser.add_argument("--technique", choices=("LoRA", "FullRank"), help="default: LoRA")
    parser.add_argument(
        "--client-token",
        metavar="TOKEN",
        help="idempotency token (32 to 128 characters); default: derived from the pipeline, "
        "the parameters and the UTC day",
    )
    _add_run_arguments(parser)
    parser.set_defaults(run=_start)


def _run_overrides(args: argparse.Namespace) -> dict[str, str]:
    overrides = _key_values(args.set, "--set")
    for option, name, value in (
        ("--train", "TrainDataS3Uri", args.train),
        ("--technique", "Technique", args.technique),
    ):
        if value is not None:
            if name in overrides:
                raise UsageError(f"{option} and --set {name}=... both given: give one")
            overrides[name] = value
    return overrides


def _check_typed_overrides(env: EnvironmentConfig, overrides: dict[str, str]) -> None:
    """Refuse what was typed by the service's own override rules before any AWS call: checked
    against this checkout's definition of the parameters (the deployed one is checked again
    once read); required parameters are checked later, when every value is known."""
    from pipeline.definition import parameter_specs
    from pipeline.overrides import check, declared_of_specs

    _, problems = check(declared_of_specs(parameter_specs(env)), overrides.items(), require=False)
    if problems:
        raise UsageError(
            f"{len(problems)} parameter problem(s), nothing was started:\n- "
            + "\n- ".join(problems)
        )


def _describe_plan(plan: Any, title: str) -> list[str]:
    lines = [f"{title}: environment {plan.env.name}, pipeline {plan.env.pipeline_name}"]
    source = plan.source
    start_from = plan.parameters.get("ModelNameOrPath", "")
    if source is not None:
        lines.append(
            f"Starts from: {source.checkpoint_uri} (v{source.version}, {source.approval_status}, "
            f"{source.model_package_arn})"
        )
    else:
        lines.append(f"Starts from: {start_from}")
    if plan.continuity is not None:
        lines.append(f"Technique check: {plan.continuity.describe()}")
    lines.append("Parameters (* = set for this run):")
    for name in sorted(plan.parameters):
        mark = "*" if name in plan.overrides else " "
        lines.append(f"  {mark} {name} = {_shown(plan.parameters[name])}")
    lines.append(f"Estimate: {plan.estimate.describe()}")
    return lines


def _shown(value: Any) -> str:
    """A parameter value as the pipeline reads it: JSON booleans, quotes around empty text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return '""' if value == "" else str(value)


def _start(args: argparse.Namespace) -> int:
    from pipeline.commands.operate import check_source_choice, plan_run, resolve_source

    # Everything that checks what was typed comes before the first AWS call.
    _, env = _environment(args)
    overrides = _run_overrides(args)
    _check_typed_overrides(env, overrides)
    prices = _prices(args)
    if args.client_token is not None and not 32 <= len(args.client_token) <= 128:
        raise UsageError("--client-token must be 32 to 128 characters")
    if args.source is not None:
        if "ModelNameOrPath" in overrides:
            raise UsageError("--from and --set ModelNameOrPath=... both given: give one")
        check_source_choice(args.source)
    if "SourceModelPackageArn" in overrides:
        raise UsageError(
            "--set SourceModelPackageArn=... is not accepted by start: it records what a replay "
            "replays, and only promote sets it"
        )
    sm = _Sessions().connect(args.profile, env).client("sagemaker")
    source = None
    if args.source is not None:
        overrides["ModelNameOrPath"], source = resolve_source(sm, env, args.source)
    plan = plan_run(
        sm,
        env,
        overrides=overrides,
        source=source,
        prices=prices,
        description="Started by `python -m pipeline start` from "
        + overrides.get("ModelNameOrPath", "the pipeline's default model"),
        token=args.client_token,
    )
    return _launch(args, sm, plan, plan.to_dict(), title="Run")


def _launch(
    args: argparse.Namespace, sm: Any, plan: Any, document: dict[str, Any], *, title: str
) -> int:
    """Print the plan and start it (or, with --dry-run, only print it); `document` is the
    plan's JSON for --json."""
    from pipeline.commands.operate import console_url, start_run

    if args.dry_run:
        if args.json:
            _emit_json({**document, "started": False})
        else:
            _print("\n".join([*_describe_plan(plan, title), "Dry run: nothing was started."]))
        return EXIT_OK
    if not args.json:
        _print("\n".join(_describe_plan(plan, title)))
    arn = start_run(sm, plan)
    url = console_url(arn)
    if args.json:
        _emit_json({**document, "started": True, "execution_arn": arn, "console_url": url})
    else:
        _print(f"Started: {arn}\nConsole: {url}\nFollow it: python -m pipeline watch {arn}")
    return EXIT_OK


# -- watch --------------------------------------------------------------------------------------


def _add_watch(subparsers: argparse._SubParsersAction[_Parser]) -> None:
    parser = subparsers.add_parser(
        "watch",
        help="follow an execution until it ends",
        description=(
            "Follow a pipeline execution: its status, its steps and the training job's status "
            "and secondary status, and the elapsed time, printed whenever they change. Exits 0 "
            "and prints the registered checkpoint when the run succeeds; exits 1 with the "
            "failure reason when it fails or is stopped, or when --timeout passes first."
        ),
        epilog=_EPILOG_EXIT,
    )
    parser.add_argument("execution", metavar="EXECUTION_ARN", help="as printed by `start`")
    _add_cdk_json(parser)
    _add_aws_arguments(parser)
    parser.add_argument(
        "--interval", type=_seconds, default=30.0, metavar="SECONDS", help="poll every (30)"
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="give up after this long (default 0: wait until the run ends)",
    )
    parser.set_defaults(run=_watch)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 7 * 24 * 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to 604800")
    return value


def _progress_lines(progress: Any) -> list[str]:
    minutes, seconds = divmod(int(progress.elapsed_seconds), 60)
    lines = [f"[{minutes // 60:02d}:{minutes % 60:02d}:{seconds:02d}] {progress.status}"]
    if progress.steps is None:
        lines.append("  (this endpoint does not list steps: status only)")
    for step in progress.steps or ():
        job = ""
        if step.training_job:
            job = f" job {step.training_job}: {step.job_status} / {step.secondary_status}"
        reason = f" - {step.failure_reason}" if step.failure_reason else ""
        lines.append(f"  {step.name:<24} {step.status}{job}{reason}")
    return lines


def _watch(args: argparse.Namespace) -> int:
    from pipeline.commands.operate import OperationError, environment_of_execution, watch

    env = environment_of_execution(read_cdk_json(args.cdk_json), args.execution)
    sm = _Sessions().connect(args.profile, env).client("sagemaker")

    def report(progress: Any) -> None:
        if not args.json:
            _print("\n".join(_progress_lines(progress)))
            sys.stdout.flush()

    progress = watch(
        sm,
        args.execution,
        env.model_package_group_name,
        interval=args.interval,
        timeout=args.timeout,
        sleep=time.sleep,
        report=report,
        clock=time.monotonic,
    )
    if args.json:
        _emit_json(progress.to_dict())
    if not progress.finished:
        raise OperationError(
            f"{args.execution} is still {progress.status} after {args.timeout:g} s: watch it again"
        )
    if progress.status != "Succeeded":
        reason = progress.failure_reason or "no failure reason recorded: see the console"
        raise OperationError(f"execution {progress.status}: {reason}")
    if not args.json:
        record = progress.checkpoint
        if record is None:
            _print("Succeeded, but no checkpoint of this execution is in the registry.")
        else:
            loss = f", final loss {record.final_loss:g}" if record.final_loss is not None else ""
            _print(
                f"Registered checkpoint v{record.version} ({record.approval_status}{loss}): "
                f"{record.checkpoint_uri}\n  {record.model_package_arn}"
            )
    return EXIT_OK


# -- lineage ------------------------------------------------------------------------------------


def _add_lineage(subparsers: argparse._SubParsersAction[_Parser]) -> None:
    parser = subparsers.add_parser(
        "lineage",
        help="show the checkpoints as a tree, parent to child",
        description=(
            "Show an environment's checkpoints as a tree: each run under the checkpoint it "
            "continued from, with its technique, steps, final training loss, approval status "
            "and date. With PACKAGE, only that checkpoint's ancestors and descendants."
        ),
        epilog=_EPILOG_EXIT,
    )
    parser.add_argument(
        "package", nargs="?", metavar="PACKAGE", help="a model package ARN or version number"
    )
    _add_env_arguments(parser)
    _add_aws_arguments(parser)
    parser.set_defaults(run=_lineage)


def _tree_lines(nodes: Sequence[Any], indent: str) -> list[str]:
    lines = []
    for index, node in enumerate(nodes):
        last = index == len(nodes) - 1
        r = node.record
        steps = f"{r.training_steps} steps" if r.training_steps is not None else "? steps"
        loss = f"loss {r.final_loss:.4f}" if r.final_loss is not None else "loss n/a"
        date = r.creation_time.strftime("%Y-%m-%d %H:%M") if r.creation_time else "?"
        lines.append(
            f"{indent}{'└─' if last else '├─'} v{r.version} {r.approval_status} {r.technique} "
            f"{steps} {loss} {date} {r.checkpoint_uri}"
        )
        lines.extend(_tree_lines(node.children, indent + ("   " if last else "│  ")))
    return lines


def _lineage(args: argparse.Namespace) -> int:
    from lambdas.registry import list_checkpoints
    from pipeline.commands.operate import lineage, resolve_package

    project, env = _environment(args)
    sessions = _Sessions()
    focus = ""
    if args.package:
        account = functools.partial(sessions.account, args.profile, env.region)
        focus = resolve_package(project, args.package, env, account).arn
    sm = sessions.connect(args.profile, env).client("sagemaker")
    records = list_checkpoints(sm, env.model_package_group_name)
    roots = lineage(records, focus)
    if args.json:
        _emit_json(
            {
                "environment": env.name,
                "model_package_group": env.model_package_group_name,
                "roots": [
                    {"started_from": start, "checkpoints": [n.to_dict() for n in nodes]}
                    for start, nodes in roots.items()
                ],
            }
        )
        return EXIT_OK
    if not roots:
        _print(f"No checkpoints in {env.model_package_group_name} yet.")
        return EXIT_OK
    lines = [f"Checkpoints of {env.name} ({env.model_package_group_name}):"]
    for start, nodes in roots.items():
        lines.append(start)
        lines.extend(_tree_lines(nodes, ""))
    _print("\n".join(lines))
    return EXIT_OK


# -- metrics ------------------------------------------------------------------------------------


def _add_metrics(subparsers: argparse._SubParsersAction[_Parser]) -> None:
    parser = subparsers.add_parser(
        "metrics",
        help="training loss of one or more runs, optionally plotted",
        description=(
            "Read step_wise_training_metrics.csv from each run's output.tar.gz, print a summary "
            "(steps, first, final and lowest training loss) and, with --plot, draw training loss "
            "against step with the runs overlaid. A run is named by its model package (ARN, or "
            "version number with --env) or by its training job name."
        ),
        epilog=_EPILOG_EXIT,
    )
    parser.add_argument("runs", nargs="+", metavar="PACKAGE|JOB", help="one or more runs")
    _add_env_arguments(parser, env_help="environment of version numbers and job names")
    _add_aws_arguments(parser)
    parser.add_argument("--plot", metavar="FILE.png", type=Path, help="write a PNG here")
    parser.set_defaults(run=_metrics)


def _metrics(args: argparse.Namespace) -> int:
    from pipeline.commands.operate import (
        PackageRef,
        describe_package,
        is_job_name,
        plot_curves,
        read_loss_curve,
        resolve_package,
    )

    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise UsageError(f"--plot {args.plot}: the file name must end in .png")
    project, default_env = _environment(args)
    sessions = _Sessions()
    account = functools.partial(sessions.account, args.profile, default_env.region)
    # Every run is checked before the first AWS call (an ARN resolves without one).
    refs: dict[str, PackageRef] = {}
    for run in args.runs:
        if run.startswith("arn:"):
            refs[run] = resolve_package(project, run, default_env, account)
        elif not (run.isdigit() or is_job_name(run)):
            raise UsageError(f"{run!r} is neither a model package ARN, a version nor a job name")
    curves = []
    for run in args.runs:
        if run.startswith("arn:") or run.isdigit():
            ref = refs.get(run) or resolve_package(project, run, default_env, account)
            session = sessions.connect(args.profile, ref.env)
            record = describe_package(session.client("sagemaker"), ref)
            job, label = record.training_job_name, f"v{record.version} {record.technique}"
            if not job:
                raise UsageError(f"{ref.arn} records no training job: name the job instead")
        else:
            session, job, label = sessions.connect(args.profile, default_env), run, run
        curves.append(
            read_loss_curve(session.client("sagemaker"), session.client("s3"), job, label)
        )
    plot = plot_curves(curves, args.plot) if args.plot is not None else None
    if args.json:
        _emit_json({"runs": [c.to_dict() for c in curves], "plot": str(plot) if plot else None})
        return EXIT_OK
    for curve in curves:
        s = curve.summary
        _print(
            f"{curve.label} ({curve.training_job}): {s.steps} steps, training loss "
            f"{s.first_loss:.4f} -> {s.final_loss:.4f} (lowest {s.min_loss:.4f})"
        )
    if plot is not None:
        _print(f"Plot: {plot}")
    return EXIT_OK


# -- approve / reject ---------------------------------------------------------------------------


def _add_approval(subparsers: argparse._SubParsersAction[_Parser], status: str) -> None:
    command = "approve" if status == "Approved" else "reject"
    parser = subparsers.add_parser(
        command,
        help=f"mark a checkpoint {status}",
        description=(
            f"Set a checkpoint's approval status to {status}, keeping the metadata it records. "
            + (
                "An approved checkpoint is what `start --from latest-approved` continues from "
                "and what `promote` replays in the next environment."
                if status == "Approved"
                else "A rejected checkpoint is never chosen by --from latest-approved or promote."
            )
        ),
        epilog=_EPILOG_EXIT,
    )
    parser.add_argument(
        "package", metavar="PACKAGE", help="model package ARN, or version number with --env"
    )
    parser.add_argument(
        "--reason",
        required=status == "Rejected",
        metavar="TEXT",
        help="why (recorded as the approval description)"
        + ("; required" if status == "Rejected" else ""),
    )
    _add_env_arguments(parser, env_help="environment of a version number")
    _add_aws_arguments(parser)
    parser.set_defaults(run=_approval, status=status)


def _approval(args: argparse.Namespace) -> int:
    from pipeline.commands.operate import change_approval, record_dict, resolve_package

    project = read_cdk_json(args.cdk_json)
    env = _named_environment(project, args.env, "--env") if args.env else None
    if args.reason is not None and not args.reason.strip():
        raise UsageError("--reason must not be empty")
    default_env = env or _named_environment(project, project.default_environment, "--env")
    sessions = _Sessions()
    account = functools.partial(sessions.account, args.profile, default_env.region)
    ref = resolve_package(project, args.package, env, account)
    sm = sessions.connect(args.profile, ref.env).client("sagemaker")
    record = change_approval(sm, ref, args.status, (args.reason or "").strip())
    if args.json:
        _emit_json(record_dict(record))
    else:
        _print(f"{record.model_package_arn}: {record.approval_status}")
    return EXIT_OK


# -- validate-data ------------------------------------------------------------------------------


def _add_validate_data(subparsers: argparse._SubParsersAction[_Parser]) -> None:
    parser = subparsers.add_parser(
        "validate-data",
        help="check a bedrock-conversation-2024 dataset before a run",
        description=(
            "Check a training dataset (JSONL, bedrock-conversation-2024) with the same "
            "validator the pipeline's ValidateData step runs: every sample's schema, roles, "
            "content blocks, reserved strings, tools and media, and the dataset's size and "
            "consistency. Each finding names the line, the JSON path, the rule and the fix, and "
            "is an error (the run would fail) or a warning (legal but suspicious). Exit 0 when "
            "there is no error (warnings are printed), 1 when there is one, 2 on a usage error."
        ),
        epilog="Example: python -m pipeline validate-data train.jsonl --global-batch-size 64",
    )
    parser.add_argument(
        "source", metavar="FILE_OR_S3_URI", help="a local .jsonl file, or s3://bucket/key"
    )
    parser.add_argument(
        "--global-batch-size",
        type=_positive,
        default=32,
        metavar="N",
        help="the run's GlobalBatchSize: the data needs at least this many samples (32)",
    )
    parser.add_argument(
        "--reasoning",
        choices=("true", "false"),
        help="the run's ReasoningEnabled: true requires reasoningContent in every sample, false "
        "forbids it (default: only require it to be used consistently)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="treat every warning as an error (exit 1 on any finding)",
    )
    parser.add_argument(
        "--show", type=_positive, default=20, metavar="N", help="findings to print (20)"
    )
    parser.add_argument("--profile", metavar="NAME", help="AWS profile for an s3:// dataset")
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.set_defaults(run=_validate_data)


def _positive(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


def _validate_data(args: argparse.Namespace) -> int:
    from pipeline.commands.operate import OperationError, validate_local_file

    reasoning = None if args.reasoning is None else args.reasoning == "true"
    if args.source.startswith("s3://"):
        from lambdas.validate_dataset import DatasetAccessError, validate_s3_dataset

        s3 = make_session(args.profile, None).client("s3")
        try:
            report = validate_s3_dataset(
                s3,
                args.source,
                global_batch_size=args.global_batch_size,
                reasoning_enabled=reasoning,
                strict=args.strict,
            )
        except DatasetAccessError as error:
            raise OperationError(str(error)) from None
        except ValueError as error:
            raise UsageError(str(error)) from None
    else:
        report = validate_local_file(
            Path(args.source),
            global_batch_size=args.global_batch_size,
            reasoning_enabled=reasoning,
            max_findings=1000,
            strict=args.strict,
        )
    if args.json:
        _emit_json({"data": args.source, **report.to_dict()})
    else:
        _print("\n".join(_report_lines(report, args.show)))
    return EXIT_OK if report.ok else EXIT_FAILED


def _report_lines(report: Any, show: int) -> list[str]:
    """The headline, counts by rule (errors, then warnings), then the errors and the warnings
    found first, at most `show` of each."""
    if report.clean:
        return [f"valid: {report.samples} samples, no findings"]
    verdict = "valid" if report.ok else "invalid"
    lines = [
        f"{verdict}: {report.errors} error(s), {report.warnings} warning(s) in "
        f"{report.samples} samples"
    ]
    for severity in ("error", "warning"):
        counts = report.counts_by_severity(severity)
        if not counts:
            continue
        found = [f for f in report.findings if f.severity == severity]
        total = sum(counts.values())
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        lines.append(f"{severity}s by rule:")
        lines.extend(f"  {rule}: {count}" for rule, count in ranked)
        lines.append(f"{severity}s:")
        lines.extend(f"  {finding.describe(with_source=False)}" for finding in found[:show])
        rest = total - min(show, len(found))
        if rest > 0:
            lines.append(f"  ... and {rest} more (--show N, or --json for the full report)")
    return lines


# -- promote ------------------------------------------------------------------------------------


def _add_promote(subparsers: argparse._SubParsersAction[_Parser]) -> None:
    parser = subparsers.add_parser(
        "promote",
        help="replay an approved checkpoint's run in the next environment",
        description=(
            "Promote an approved checkpoint to another environment. A checkpoint never leaves "
            "the account that trained it, so this starts a new run in the target environment's "
            "pipeline with the recorded inputs of the approved run (technique, hyperparameters, "
            "instance count, data URIs; parameters the registry does not record take the "
            "target's defaults and are listed), and records the source package ARN in the "
            "execution's description as provenance. If the approved run continued from an "
            "earlier checkpoint, the replay continues from the target's replay of that "
            "checkpoint, so promote a chain oldest first. The target's role must be able to "
            "read the recorded data URIs, or pass --train with the target's copy; recorded "
            "validation data must be given as --validation (the target's copy, or none). The "
            "replay's technique is checked against its starting checkpoint's."
        ),
        epilog="Example: python -m pipeline promote <dev package ARN> --to staging "
        "--source-profile dev --profile staging. " + _EPILOG_EXIT,
    )
    parser.add_argument(
        "package", metavar="PACKAGE", help="approved model package ARN (or version with --env)"
    )
    parser.add_argument("--to", required=True, metavar="ENV", help="target environment")
    _add_env_arguments(parser, env_help="source environment of a version number")
    _add_aws_arguments(parser)
    parser.add_argument(
        "--source-profile",
        metavar="NAME",
        help="AWS profile for the source environment's account (default: --profile's)",
    )
    parser.add_argument("--train", metavar="S3_URI", help="training data to use instead")
    parser.add_argument(
        "--validation",
        metavar="S3_URI",
        help="validation data to use instead: the target's copy, or none to replay without "
        "validation data (required when the source run had validation data)",
    )
    parser.add_argument(
        "--from",
        dest="source",
        metavar="SOURCE",
        help="start from this instead of the mapped parent: base, latest, latest-approved or "
        "an s3:// checkpoint of the target environment",
    )
    parser.add_argument(
        "--again", action="store_true", help="start another replay even if one already ran"
    )
    _add_run_arguments(parser)
    parser.set_defaults(run=_promote)


def _promote(args: argparse.Namespace) -> int:
    from pipeline.commands.operate import check_source_choice, resolve_package
    from pipeline.commands.promote import plan_replay

    # Everything that checks what was typed comes before the first AWS call.
    project = read_cdk_json(args.cdk_json)
    target = _named_environment(project, args.to, "--to")
    source_env = _named_environment(project, args.env, "--env") if args.env else None
    overrides = _key_values(args.set, "--set")
    if "ModelNameOrPath" in overrides:
        raise UsageError(
            "--set ModelNameOrPath=... is not accepted by promote: the checkpoint comes from "
            "--from (default: the target's replay of the source's parent); use --from instead"
        )
    if "SourceModelPackageArn" in overrides:
        raise UsageError(
            "--set SourceModelPackageArn=... is not accepted by promote: it is the package "
            "being promoted"
        )
    for option, name, value in (
        ("--train", "TrainDataS3Uri", args.train),
        ("--validation", "ValidationDataS3Uri", args.validation),
    ):
        if value is not None:
            if name in overrides:
                raise UsageError(f"{option} and --set {name}=... both given: give one")
            overrides[name] = value
    _check_typed_overrides(target, overrides)
    if args.source is not None:
        check_source_choice(args.source)
    prices = _prices(args)
    source_profile = args.source_profile or args.profile
    if source_env is not None:
        _refuse_same_environment(source_env, target)
    sessions = _Sessions()
    region = (source_env or target).region
    ref = resolve_package(
        project,
        args.package,
        source_env,
        functools.partial(sessions.account, source_profile, region),
    )
    _refuse_same_environment(ref.env, target)
    source_sm = sessions.connect(source_profile, ref.env).client("sagemaker")
    target_sm = sessions.connect(args.profile, target).client("sagemaker")
    plan = plan_replay(
        source_sm,
        target_sm,
        ref,
        target,
        overrides=overrides,
        from_choice=args.source or "",
        again=args.again,
        prices=prices,
    )
    if not args.json:
        _print(f"Replaying {plan.source.model_package_arn} ({ref.env.name} -> {target.name})")
        if plan.unrecorded:
            _print(
                "Not recorded by the source package, so the target's defaults apply: "
                + ", ".join(plan.unrecorded)
            )
    return _launch(args, target_sm, plan.run, plan.to_dict(), title="Replay")


def _refuse_same_environment(source: EnvironmentConfig, target: EnvironmentConfig) -> None:
    if source.name == target.name:
        raise UsageError(f"--to {target.name} is the package's own environment: pick another")


# -- entry point --------------------------------------------------------------------------------

_COMMANDS: tuple[Callable[[argparse._SubParsersAction[_Parser]], None], ...] = (
    _add_definition,
    _add_start,
    _add_watch,
    _add_lineage,
    _add_metrics,
    lambda subparsers: _add_approval(subparsers, "Approved"),
    lambda subparsers: _add_approval(subparsers, "Rejected"),
    _add_validate_data,
    _add_promote,
)


def build_parser() -> argparse.ArgumentParser:
    """The `python -m pipeline` argument parser with every command."""
    parser = _Parser(
        prog="python -m pipeline",
        description="Operate the Nova 2 Lite fine-tuning pipeline. "
        "Run `python -m pipeline COMMAND --help` for a command's options.",
        epilog=_EPILOG_EXIT,
    )
    subparsers = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", parser_class=_Parser
    )
    for add in _COMMANDS:
        add(subparsers)
    return parser


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _failure(error: BaseException) -> tuple[int, str]:
    """The exit status and the one-line message for an error that ended a command."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound

    from pipeline.commands.operate import InputError, OperationError

    if isinstance(error, UsageError | InputError | ProfileNotFound):
        return EXIT_USAGE, f"usage error: {_one_line(error)}"
    if isinstance(error, ConfigError | OperationError):
        return EXIT_FAILED, _one_line(error)
    if isinstance(error, NoCredentialsError):
        return (
            EXIT_FAILED,
            "no AWS credentials found: sign in (e.g. `aws sso login`) or pass --profile",
        )
    if isinstance(error, ClientError | BotoCoreError):
        return EXIT_FAILED, f"AWS error: {_one_line(error)}"
    if isinstance(error, KeyboardInterrupt):
        return EXIT_FAILED, "interrupted"
    return EXIT_FAILED, f"{type(error).__name__}: {_one_line(error)}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status (0 ok, 1 failed, 2 usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            raise UsageError(f"give a command (see `{parser.prog} --help`)")
        status: int = args.run(args)
    except (Exception, KeyboardInterrupt) as error:  # noqa: BLE001 (one line, no traceback)
        status, message = _failure(error)
        sys.stderr.write(f"{parser.prog}: {message}\n")
    return status
