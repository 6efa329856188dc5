"""The local rehearsal: deploy the synthesized sandbox to a local endpoint and run it twice.

`make demo` runs this. It starts moto's server on 127.0.0.1, creates the stage's resources from
the templates in cdk.out (so the pipeline body that runs is the one `cdk deploy` would send),
uploads the sample datasets, starts two executions through the SageMaker API - the first without
validation data (ValidationDataS3Uri keeps its default, none), the second from the first one's
checkpoint with validation data - and runs them with the local executor, the deployed Lambda
handlers and the stand-in trainer. Each handler runs under its deployed timeout with a
counting-down context (`pipeline.rehearsal.lambda_budget`); the steps are printed as the endpoint's
ListPipelineExecutionSteps reports them. A third execution continues from the second one's
checkpoint with the other technique, which the pipeline must refuse before any training job. It
prints the registry's lineage and writes both loss curves to a PNG.
"""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import importlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from lambdas.recipe.spec import BASE_MODEL, FULL_RANK, LORA
from lambdas.registry import CheckpointRecord, ancestry
from pipeline.commands.operate import LossCurve, plot_curves, poll, read_loss_curve
from pipeline.config import ConfigError, read_cdk_json
from pipeline.rehearsal.endpoint import Faults, LocalEndpoint
from pipeline.rehearsal.execution_record import DefinitionError, ExecutionRecord
from pipeline.rehearsal.executor import LocalExecutor
from pipeline.rehearsal.lambda_budget import budget_of, budgeted
from pipeline.rehearsal.stack import DeployedFunction, LocalStage, deploy_stage
from pipeline.rehearsal.stand_in_trainer import StandInTrainer
from pipeline.rehearsal.step_types import LAMBDA_INPUT_FORMS, LambdaHandler

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DATA = Path(__file__).resolve().parent / "sample_data" / "train.jsonl"
SAMPLE_KEY = "datasets/sample/train.jsonl"
SAMPLE_VALIDATION_DATA = SAMPLE_DATA.parent / "validation.jsonl"
SAMPLE_VALIDATION_KEY = "datasets/sample/validation.jsonl"


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _error(text: str) -> None:
    sys.stderr.write(f"error: {text}\n")


@dataclass(frozen=True)
class Options:
    """How to rehearse. Rates are shares of calls (0 to 1) answered with an error."""

    cdk_out: Path = ROOT / "cdk.out"
    stage: str = "sandbox"
    dataset: Path = SAMPLE_DATA
    out_dir: Path = ROOT / "rehearsal-out"
    s3_error_rate: float = 0.0
    throttle_rate: float = 0.0
    fail_training: bool = False
    seed: int = 7
    plot: bool = True
    # Run 3 (the other technique, which must be refused); the benchmark times runs 1 and 2 only.
    other_technique_round: bool = True
    lambda_inputs: str = "json"  # or "strings": how typed parameters reach the Lambda events


@dataclass
class Rehearsal:
    """What the rehearsal did."""

    executions: list[ExecutionRecord] = field(default_factory=list)
    # The round that continues from run 2's checkpoint with the other technique.
    other_technique: ExecutionRecord | None = None
    lineage: list[CheckpointRecord] = field(default_factory=list)  # newest first
    curves: list[LossCurve] = field(default_factory=list)
    faults: Faults | None = None
    registered: int = 0  # model package versions in the group at the end
    plot_path: Path | None = None
    seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        """Every training round succeeded and, when it ran, the other-technique round was
        refused before any training job."""
        trained = bool(self.executions) and all(e.status == "Succeeded" for e in self.executions)
        return trained and (
            self.other_technique is None or refused_before_training(self.other_technique)
        )


def refused_before_training(record: ExecutionRecord) -> bool:
    """The execution failed at PrepareRecipe and started no training job."""
    return (
        record.status == "Failed"
        and record.step("PrepareRecipe").status == "Failed"
        and not any(s.step_type == "Training" and s.attempts for s in record.steps)
    )


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _local_credentials(url: str, region: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "rehearsal",
        "AWS_SECRET_ACCESS_KEY": "rehearsal",
        "AWS_SESSION_TOKEN": "rehearsal",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_RETRY_MODE": "standard",
        "AWS_MAX_ATTEMPTS": "8",
    }


def cold_start() -> None:
    """Drop what the Lambda modules cached (their boto3 clients): a new container per rehearsal.

    Handlers run in this process, so a client cached by an earlier rehearsal would still point
    at that rehearsal's endpoint, which is gone.
    """
    for name, module in list(sys.modules.items()):
        if name == "lambdas" or name.startswith("lambdas."):
            for value in vars(module).values():
                clear = getattr(value, "cache_clear", None)
                if callable(clear):
                    clear()


def require_current_asset(asset_dir: Path) -> None:
    """The Lambda asset in cdk.out must hold exactly the code in lambdas/, else cdk.out is stale.

    Handlers are imported from this checkout, so this is what makes them the deployed code.
    """
    stale: list[str] = []
    pending = [
        ("", filecmp.dircmp(asset_dir / "lambdas", ROOT / "lambdas", ignore=["__pycache__"]))
    ]
    while pending:  # dircmp compares one level; its subdirs (recipes/) hold compared pairs too
        prefix, comparison = pending.pop()
        different = comparison.diff_files + comparison.left_only + comparison.right_only
        stale += [prefix + name for name in different]
        pending += [(f"{prefix}{name}/", sub) for name, sub in comparison.subdirs.items()]
    if stale:
        raise DefinitionError(
            f"the Lambda asset {asset_dir} differs from lambdas/ ({', '.join(stale)}): "
            "run `make synth` again"
        )


def load_handler(function: DeployedFunction) -> LambdaHandler:
    """The deployed function's handler, imported by its dotted name and run in process with the
    function's environment set (check its asset with `require_current_asset` first)."""
    module_name, _, attribute = function.handler.rpartition(".")
    handler: LambdaHandler = getattr(importlib.import_module(module_name), attribute)

    def call(event: dict[str, Any], context: Any) -> Any:
        with _environment(function.environment):
            return handler(event, context)

    return call


def _start(sm: Any, pipeline_name: str, parameters: dict[str, str]) -> str:
    response = sm.start_pipeline_execution(
        PipelineName=pipeline_name,
        PipelineParameters=[{"Name": k, "Value": v} for k, v in parameters.items()],
        ClientRequestToken=str(uuid.uuid4()),
    )
    return str(response["PipelineExecutionArn"])


def _training_step(record: ExecutionRecord) -> Any:
    trained = [s for s in record.steps if s.step_type == "Training" and s.arguments]
    if len(trained) != 1:
        raise DefinitionError(f"{record.arn}: expected one training step, found {len(trained)}")
    return trained[0]


def rehearse(options: Options, log: Callable[[str], None] = _say) -> Rehearsal:
    """Deploy the stage locally and run it twice (once if the first run fails)."""
    env = read_cdk_json().environment(options.stage)
    result = Rehearsal()
    with LocalEndpoint() as endpoint, _environment(_local_credentials(endpoint.url, env.region)):
        session = boto3.Session(region_name=env.region)
        stage: LocalStage = deploy_stage(options.cdk_out, options.stage, session)
        log(f"deployed {options.stage} to {endpoint.url}: {len(stage.physical)} resources")
        for asset_dir in {fn.asset_dir for fn in stage.functions.values()}:
            require_current_asset(asset_dir)  # one asset for every function: compared once
        functions = session.client("lambda")
        handlers = {
            arn: budgeted(load_handler(fn), arn, budget_of(functions, arn))
            for arn, fn in stage.functions.items()
        }
        cold_start()
        data_bucket = stage.output("DataBucketName")
        s3 = session.client("s3")
        s3.upload_file(str(options.dataset), data_bucket, SAMPLE_KEY)
        s3.upload_file(str(SAMPLE_VALIDATION_DATA), data_bucket, SAMPLE_VALIDATION_KEY)
        train_uri = f"s3://{data_bucket}/{SAMPLE_KEY}"
        # Run 1 leaves ValidationDataS3Uri at its default; run 2 sends the validation channel.
        validation_by_round = {
            1: {},
            2: {"ValidationDataS3Uri": f"s3://{data_bucket}/{SAMPLE_VALIDATION_KEY}"},
        }
        fail_reason = (
            "AlgorithmError: the stand-in trainer was asked to fail (--fail-training)"
            if options.fail_training
            else None
        )
        trainer = StandInTrainer(session=session, region=env.region, fail_reason=fail_reason)
        sm = session.client("sagemaker")
        executor = LocalExecutor(
            sagemaker_client=sm,
            lambda_handlers=handlers,
            trainer=trainer,
            publish=endpoint.executions.publish,
            lambda_inputs=options.lambda_inputs,
        )
        faults = Faults(
            s3_error_rate=options.s3_error_rate,
            throttle_rate=options.throttle_rate,
            seed=options.seed,
        )
        started = time.perf_counter()
        with endpoint.faults(faults):
            source = BASE_MODEL
            for round_number in (1, 2):
                parameters = {"TrainDataS3Uri": train_uri, "ModelNameOrPath": source}
                arn = _start(
                    sm, env.pipeline_name, {**parameters, **validation_by_round[round_number]}
                )
                record = executor.run(arn)
                result.executions.append(record)
                log(f"run {round_number}: {arn.rsplit('/', 1)[-1]} from {source}: {record.status}")
                _log_listed_steps(sm, record, env.model_package_group_name, log)
                if record.status != "Succeeded":
                    log(f"  failure reason: {record.failure_reason}")
                    break
                job_name = _training_step(record).arguments["TrainingJobName"]
                result.curves.append(read_loss_curve(sm, s3, job_name, f"run {round_number}"))
                source = str(record.output("CheckpointS3Uri"))
            else:  # both rounds trained: run 3 must be refused
                if options.other_technique_round:
                    result.other_technique = _other_technique_round(
                        sm,
                        executor,
                        env.pipeline_name,
                        train_uri=train_uri,
                        checkpoint=source,
                        log=log,
                    )
        result.seconds = time.perf_counter() - started
        result.faults = faults
        if result.succeeded:
            result.lineage = ancestry(sm, env.model_package_group_name, source)
        registered = sm.list_model_packages(ModelPackageGroupName=env.model_package_group_name)
        result.registered = len(registered["ModelPackageSummaryList"])
    _log_lineage(result.lineage, log)
    if options.plot and result.curves:
        result.plot_path = plot_curves(result.curves, options.out_dir / "loss_curves.png")
        log(f"loss curves: {result.plot_path}")
    return result


def _other_technique_round(
    sm: Any,
    executor: LocalExecutor,
    pipeline_name: str,
    *,
    train_uri: str,
    checkpoint: str,
    log: Callable[[str], None],
) -> ExecutionRecord:
    """Run 3: continue from run 2's (LoRA) checkpoint with full rank, which AWS does not allow;
    the PrepareRecipe step must refuse it before any training job."""
    parameters = {
        "TrainDataS3Uri": train_uri,
        "ModelNameOrPath": checkpoint,
        "Technique": FULL_RANK,
    }
    record = executor.run(_start(sm, pipeline_name, parameters))
    verdict = "refused before training" if refused_before_training(record) else "NOT refused"
    log(f"run 3: {FULL_RANK} from run 2's {LORA} checkpoint: {record.status} ({verdict})")
    for step in record.steps:
        log(f"  {step.name:<32} {step.status}")
    if record.failure_reason:
        log(f"  failure reason: {' '.join(record.failure_reason.split())}")
    return record


def _log_listed_steps(
    sm: Any, record: ExecutionRecord, group: str, log: Callable[[str], None]
) -> None:
    """The run's steps as the API lists them (what `python -m pipeline watch` reads); the
    endpoint must report what the executor did."""
    progress = poll(sm, record.arn, group)
    listed = progress.steps or ()
    if progress.status != record.status or [s.name for s in listed] != record.started():
        raise DefinitionError(
            f"{record.arn}: the endpoint reports {progress.status} with steps "
            f"{[s.name for s in listed]}, the executor {record.status} with {record.started()}"
        )
    for step in listed:
        job = f" {step.training_job}" if step.training_job else ""
        reason = f" ({step.failure_reason})" if step.failure_reason else ""
        log(f"  {step.name:<32} {step.status}{job}{reason}")


def _log_lineage(chain: list[CheckpointRecord], log: Callable[[str], None]) -> None:
    """The registry's lineage, oldest first: each checkpoint with the parent it started from."""
    if not chain:
        return
    log("lineage (model registry):")
    log(f"  {chain[-1].parent}")
    for depth, record in enumerate(reversed(chain), start=1):
        loss = f"{record.final_loss:.4f}" if record.final_loss is not None else "n/a"
        log(
            f"  {'   ' * (depth - 1)}└─ v{record.version} {record.checkpoint_uri} "
            f"({record.technique}, final loss {loss}, {record.approval_status})"
        )


def _rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share of calls from 0 to below 1")
    return rate


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.rehearsal",
        description=(
            "Create the synthesized stage (cdk.out, from `make synth`) in a local AWS endpoint "
            "on 127.0.0.1 and run its pipeline twice: run 1 from the base model, run 2 from run "
            "1's checkpoint; then run 3 from run 2's checkpoint with the other technique, which "
            "must be refused before training. Nothing leaves this machine."
        ),
    )
    defaults = Options()
    parser.add_argument("--stage", default=defaults.stage, help="environment (%(default)s)")
    parser.add_argument("--cdk-out", type=Path, default=defaults.cdk_out, help="cloud assembly")
    parser.add_argument(
        "--dataset", type=Path, default=defaults.dataset, help="JSONL to train on (the sample)"
    )
    parser.add_argument(
        "--out-dir", type=Path, default=defaults.out_dir, help="where the PNG goes (%(default)s)"
    )
    parser.add_argument(
        "--s3-error-rate",
        type=_rate,
        default=0.0,
        metavar="SHARE",
        help="answer this share of S3 calls with 503 SlowDown (e.g. 0.2)",
    )
    parser.add_argument(
        "--throttle-rate",
        type=_rate,
        default=0.0,
        metavar="SHARE",
        help="answer this share of SageMaker calls with ThrottlingException (e.g. 0.2)",
    )
    parser.add_argument(
        "--fail-training",
        action="store_true",
        help="make the training job fail: the run must end Failed with nothing registered",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="fault sequence seed")
    parser.add_argument("--no-plot", action="store_true", help="do not write the PNG")
    parser.add_argument(
        "--lambda-inputs",
        choices=LAMBDA_INPUT_FORMS,
        default=defaults.lambda_inputs,
        help="deliver typed parameters to the Lambda steps as JSON types or as strings "
        "(the service's form is undocumented; the handlers must take both)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when every run succeeded, 1 when a run failed or the rehearsal could not run."""
    args = _parser().parse_args(argv)
    options = Options(
        cdk_out=args.cdk_out,
        stage=args.stage,
        dataset=args.dataset,
        out_dir=args.out_dir,
        s3_error_rate=args.s3_error_rate,
        throttle_rate=args.throttle_rate,
        fail_training=args.fail_training,
        seed=args.seed,
        plot=not args.no_plot,
        lambda_inputs=args.lambda_inputs,
    )
    if not options.dataset.is_file():
        _error(f"dataset {options.dataset} not found")
        return 1
    try:
        result = rehearse(options)
    except (DefinitionError, ConfigError) as err:
        _error(f"{err}")
        return 1
    faults = result.faults
    if faults is not None and (options.s3_error_rate or options.throttle_rate):
        _say(
            f"faults injected: S3 {faults.injected['s3']} of {faults.seen['s3']} calls, "
            f"SageMaker {faults.injected['sagemaker']} of {faults.seen['sagemaker']} calls"
        )
    run_3 = result.other_technique
    refused = run_3 is not None and refused_before_training(run_3)
    _say(
        f"{len(result.executions)} run(s) in {result.seconds:.2f} s; {result.registered} registered"
        + ("; run 3 (the other technique) refused before training" if refused else "")
    )
    if run_3 is not None and not refused:
        _error("run 3 continued a LoRA checkpoint with full rank and was not refused")
        return 1
    if not result.succeeded:
        _error("a run failed (see its failure reason above)")
        return 1
    return 0
