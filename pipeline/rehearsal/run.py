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
prints the registry's lineage and writes both loss curves to a PNG. When the synthesized stage
tracks experiments, a local MLflow server stands in for SageMaker's and the runs it recorded are
printed side by side (`pipeline.rehearsal.tracking`).

Its options are `pipeline.rehearsal.options`, its command line `pipeline.rehearsal.command_line`;
the deployed code runs in this process through `pipeline.rehearsal.in_process`.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from lambdas.evaluation import scorecard_of
from lambdas.recipe.spec import BASE_MODEL, FULL_RANK, LORA
from lambdas.registry import CheckpointRecord, ancestry
from lambdas.tracking.client import TrackingClient
from pipeline.commands import LossCurve, plot_curves, poll, read_loss_curve
from pipeline.commands.lineage import score_text
from pipeline.config import EnvironmentConfig, read_cdk_json
from pipeline.evaluate_pipeline import evaluate_pipeline_name
from pipeline.rehearsal.endpoint import Faults, LocalEndpoint
from pipeline.rehearsal.execution_record import DefinitionError, ExecutionRecord
from pipeline.rehearsal.executor import LocalExecutor
from pipeline.rehearsal.in_process import (
    cold_start,
    environment,
    load_handler,
    local_credentials,
    require_current_asset,
)
from pipeline.rehearsal.lambda_budget import budget_of, budgeted
from pipeline.rehearsal.options import (
    DEMO_GATE_METRIC,
    DEMO_GATE_THRESHOLD,
    SAMPLE_EVALUATION_DATA,
    SAMPLE_EVALUATION_KEY,
    SAMPLE_KEY,
    SAMPLE_VALIDATION_DATA,
    SAMPLE_VALIDATION_KEY,
    Options,
)
from pipeline.rehearsal.resources import LocalStage
from pipeline.rehearsal.serving import ServingRehearsal, rehearse_serving
from pipeline.rehearsal.stack import deploy_stage
from pipeline.rehearsal.stand_in_evaluator import JobRunner, StandInEvaluator
from pipeline.rehearsal.stand_in_trainer import StandInTrainer
from pipeline.rehearsal.tracking import experiment_lines, local_tracking
from pipeline.step_names import TRAINING_STEPS


def say(text: str) -> None:
    """Print a line of the rehearsal's log at once."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


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
    serving: ServingRehearsal | None = None  # round 2's checkpoint served, then taken down
    # The base model scored by the evaluate-only pipeline before run 1 (run 1's parent score).
    baseline: ExecutionRecord | None = None
    # The MLflow experiment's runs, side by side (empty when the stage does not track).
    experiment: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        """Every training round succeeded and, when it ran, the other-technique round was
        refused before any training job."""
        trained = bool(self.executions) and all(e.status == "Succeeded" for e in self.executions)
        return (
            trained
            and (self.baseline is None or self.baseline.status == "Succeeded")
            and (self.other_technique is None or refused_before_training(self.other_technique))
            and (self.serving is None or self.serving.succeeded)
        )


def refused_before_training(record: ExecutionRecord) -> bool:
    """The execution failed at PrepareRecipe and started no training job."""
    return (
        record.status == "Failed"
        and record.step("PrepareRecipe").status == "Failed"
        and not any(s.step_type == "Training" and s.attempts for s in record.steps)
    )


def _start(sm: Any, pipeline_name: str, parameters: dict[str, str]) -> str:
    response = sm.start_pipeline_execution(
        PipelineName=pipeline_name,
        PipelineParameters=[{"Name": k, "Value": v} for k, v in parameters.items()],
        ClientRequestToken=str(uuid.uuid4()),
    )
    return str(response["PipelineExecutionArn"])


def _training_step(record: ExecutionRecord) -> Any:
    # The training job (the evaluation job after it is a Training step too).
    trained = [s for s in record.steps if s.name in TRAINING_STEPS and s.arguments]
    if len(trained) != 1:
        raise DefinitionError(f"{record.arn}: expected one training step, found {len(trained)}")
    return trained[0]


def rehearse(options: Options, log: Callable[[str], None] = say) -> Rehearsal:
    """Deploy the stage locally and run it twice (once if the first run fails)."""
    env = read_cdk_json().environment(options.stage)
    result = Rehearsal()
    with (
        LocalEndpoint() as endpoint,
        environment(local_credentials(endpoint.url, env.region)),
        ExitStack() as scope,
    ):
        session = boto3.Session(region_name=env.region)
        stage: LocalStage = deploy_stage(options.cdk_out, options.stage, session)
        log(f"deployed {options.stage} to {endpoint.url}: {len(stage.physical)} resources")
        tracking = scope.enter_context(
            local_tracking(stage, options.mlflow_python, log, options.mlflow_url)
        )
        for asset_dir in {fn.asset_dir for fn in stage.functions.values()}:
            require_current_asset(asset_dir)  # one asset for every function: compared once
        functions = session.client("lambda")
        handlers = {
            arn: budgeted(load_handler(fn), arn, budget_of(functions, arn))
            for arn, fn in stage.functions.items()
        }
        cold_start()
        s3 = session.client("s3")
        train_uri, validation_by_round, evaluation = _upload_samples(
            s3, stage.output("DataBucketName"), options.dataset
        )
        sm = session.client("sagemaker")
        executor = LocalExecutor(
            sagemaker_client=sm,
            lambda_handlers=handlers,
            trainer=(jobs := _job_runner(options, session, env.region)),
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
            result.baseline = _baseline_round(sm, executor, env, evaluation, log)
            source = BASE_MODEL
            for round_number in (1, 2):
                parameters = {"TrainDataS3Uri": train_uri, "ModelNameOrPath": source}
                arn = _start(
                    sm,
                    env.pipeline_name,
                    {**parameters, **validation_by_round[round_number], **evaluation},
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
        _record_registry(result, sm, env, tracking, log)
        if options.serving:  # round 2's checkpoint approved, served on the stand-in Bedrock
            result.serving = rehearse_serving(
                session=session,
                stage=stage,
                env=env,
                cdk_out=options.cdk_out,
                endpoint=endpoint,
                checkpoints=jobs.trainer.final_loss_by_checkpoint,
                package_arn=result.lineage[0].model_package_arn if result.lineage else None,
                log=log,
            )
    if options.plot and result.curves:
        curves = _with_scores(result.curves, result.lineage)
        result.plot_path = plot_curves(curves, options.out_dir / "loss_curves.png")
        log(f"loss curves: {result.plot_path}")
    return result


def _upload_samples(
    s3: Any, data_bucket: str, dataset: Path
) -> tuple[str, dict[int, dict[str, str]], dict[str, str]]:
    """The training data's URI, each round's validation parameters (run 1 leaves
    ValidationDataS3Uri at its default; run 2 sends the validation channel) and the evaluation
    parameters, after uploading the samples."""
    s3.upload_file(str(dataset), data_bucket, SAMPLE_KEY)
    s3.upload_file(str(SAMPLE_VALIDATION_DATA), data_bucket, SAMPLE_VALIDATION_KEY)
    validation_by_round: dict[int, dict[str, str]] = {
        1: {},
        2: {"ValidationDataS3Uri": f"s3://{data_bucket}/{SAMPLE_VALIDATION_KEY}"},
    }
    evaluation = _evaluation_parameters(s3, data_bucket)
    return f"s3://{data_bucket}/{SAMPLE_KEY}", validation_by_round, evaluation


def _baseline_round(
    sm: Any,
    executor: LocalExecutor,
    env: EnvironmentConfig,
    evaluation: dict[str, str],
    log: Callable[[str], None],
) -> ExecutionRecord:
    """Score the base model with the evaluate-only pipeline (what `python -m pipeline evaluate
    --base-model` starts), so that run 1's score has a parent score to compare with."""
    parameters = {k: evaluation[k] for k in ("EvaluationTask", "EvaluationDataS3Uri")}
    arn = _start(sm, evaluate_pipeline_name(env), parameters)
    record = executor.run(arn)
    outcome = record.status
    if record.status == "Succeeded":
        outcome += f", {BASE_MODEL} scores {record.output('EvaluationScore')}"
    else:
        outcome += f": {record.failure_reason}"
    log(f"baseline: {arn.rsplit('/', 1)[-1]} scores the base model: {outcome}")
    return record


def _evaluation_parameters(s3: Any, data_bucket: str) -> dict[str, str]:
    """Every training round evaluates on the sample questions (uploaded here), gated on
    DEMO_GATE_METRIC."""
    s3.upload_file(str(SAMPLE_EVALUATION_DATA), data_bucket, SAMPLE_EVALUATION_KEY)
    return {
        "EvaluationTask": "gen_qa",
        "EvaluationDataS3Uri": f"s3://{data_bucket}/{SAMPLE_EVALUATION_KEY}",
        "GateMetric": DEMO_GATE_METRIC,
        "GateThreshold": DEMO_GATE_THRESHOLD,
    }


def _job_runner(options: Options, session: Any, region: str) -> JobRunner:
    """The stand-in trainer and evaluator, failing or scoring low as the options say."""
    trainer = StandInTrainer(
        session=session,
        region=region,
        fail_reason=(
            "AlgorithmError: the stand-in trainer was asked to fail (--fail-training)"
            if options.fail_training
            else None
        ),
    )
    evaluator = StandInEvaluator(
        session=session,
        region=region,
        trainer=trainer,
        fail_reason=(
            "AlgorithmError: the stand-in evaluator was asked to fail (--fail-evaluation)"
            if options.fail_evaluation
            else None
        ),
        low_score=options.low_score,
    )
    return JobRunner(trainer, evaluator, region)


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


def _record_registry(
    result: Rehearsal,
    sm: Any,
    env: EnvironmentConfig,
    tracking: TrackingClient | None,
    log: Callable[[str], None],
) -> None:
    """How many versions the group holds at the end, the lineage, and the MLflow experiment's
    runs when the stage tracks experiments; each logged."""
    group = env.model_package_group_name
    listed = sm.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    result.registered = len(listed)
    _log_lineage(result.lineage, log)
    result.experiment = experiment_lines(tracking, env.pipeline_name) if tracking else []
    for line in result.experiment:
        log(line)


def _log_lineage(chain: list[CheckpointRecord], log: Callable[[str], None]) -> None:
    """The registry's lineage, oldest first: each checkpoint with the parent it started from;
    then the MLflow experiment's runs (`experiment`, lines), if any."""
    if chain:
        log("lineage (model registry):")
        log(f"  {chain[-1].parent}")
    for depth, record in enumerate(reversed(chain), start=1):
        loss = f"{record.final_loss:.4f}" if record.final_loss is not None else "n/a"
        log(
            f"  {'   ' * (depth - 1)}└─ v{record.version} {record.checkpoint_uri} "
            f"({record.technique}, final loss {loss}, {record.approval_status})"
        )
        if scorecard_of(record.metadata) is not None:
            log(f"  {'   ' * depth}{score_text(record)}")


def _with_scores(curves: list[LossCurve], chain: list[CheckpointRecord]) -> list[LossCurve]:
    """The loss curves with the score each run's checkpoint records, for the plot."""
    by_job = {record.training_job_name: scorecard_of(record.metadata) for record in chain}
    return [dataclasses.replace(c, score=by_job.get(c.training_job)) for c in curves]
