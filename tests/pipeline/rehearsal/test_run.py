"""The local rehearsal runs the synthesized sandbox end to end, twice, and survives faults."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from lambdas.evaluation import scorecard_of
from lambdas.recipe.spec import BASE_MODEL
from pipeline.definition import PREPARE_STEP, VALIDATE_STEP
from pipeline.rehearsal import run as rehearsal
from pipeline.rehearsal.execution_record import DefinitionError
from pipeline.rehearsal.in_process import load_handler
from pipeline.rehearsal.options import SAMPLE_DATA, Options
from pipeline.rehearsal.run import Rehearsal, rehearse
from pipeline.rehearsal.stand_in_trainer import StandInTrainer
from pipeline.rehearsal.step_types import LAMBDA_INPUT_FORMS
from tests.cloud_assembly import Assembly

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def cdk_out(assembly: Assembly) -> Path:
    """The session's synthesized app, laid out as `make synth` leaves cdk.out."""
    return assembly.outdir


def run(cdk_out: Path, tmp_path: Path, **options: object) -> tuple[Rehearsal, list[str]]:
    lines: list[str] = []
    result = rehearse(
        Options(cdk_out=cdk_out, out_dir=tmp_path, **options),  # type: ignore[arg-type]
        log=lines.append,
    )
    return result, lines


@pytest.mark.parametrize("inputs", LAMBDA_INPUT_FORMS)
def test_run_two_starts_from_run_ones_checkpoint_and_the_registry_records_it(
    cdk_out: Path, tmp_path: Path, inputs: str
) -> None:
    result, lines = run(cdk_out, tmp_path, lambda_inputs=inputs, plot=inputs == "json")

    assert [e.status for e in result.executions] == ["Succeeded", "Succeeded"]
    first, second = result.executions
    checkpoint = first.output("CheckpointS3Uri")
    assert checkpoint.startswith("s3://customer-escrow-")
    assert first.parameters["ModelNameOrPath"] == BASE_MODEL
    assert second.parameters["ModelNameOrPath"] == checkpoint
    # Each run took its own branch of the conditions: run 1 without validation data (the
    # parameter's default, none), run 2 with it.
    assert first.parameters["ValidationDataS3Uri"] == "none"
    assert first.step("TrainFromBaseModel").status == "Succeeded"
    assert "TrainFromCheckpoint" not in first.started()
    assert second.step("TrainFromCheckpointValidating").status == "Succeeded"
    assert "TrainFromCheckpoint" not in second.started()
    request = second.step("TrainFromCheckpointValidating").arguments
    hyperparameters = request["HyperParameters"]
    assert hyperparameters["base_model_location"] == checkpoint
    assert "base_model" not in hyperparameters
    channels = {c["ChannelName"]: c for c in request["InputDataConfig"]}
    validation = second.parameters["ValidationDataS3Uri"]
    assert validation.endswith("/datasets/sample/validation.jsonl")
    assert channels["validation"]["DataSource"]["S3DataSource"]["S3Uri"] == validation
    assert "validation" not in {
        c["ChannelName"] for c in first.step("TrainFromBaseModel").arguments["InputDataConfig"]
    }
    assert second.output("ValidationSamples") == "32"

    # Typed parameters reached the Lambda steps in the form asked for, and the handlers took it.
    count = first.step(PREPARE_STEP).arguments["TrainingInstanceCount"]
    assert count == (str(count) if inputs == "strings" else int(count))
    # The steps were printed as the endpoint lists them, with the service-shaped job name.
    job = first.step("TrainFromBaseModel").arguments["TrainingJobName"]
    assert any(line.split() == ["TrainFromBaseModel", "Succeeded", job] for line in lines)

    # The base model was scored first (the evaluate-only pipeline); run 1 compares with it,
    # run 2 with run 1, and both passed the demo's gate.
    assert result.baseline is not None
    assert result.baseline.status == "Succeeded"
    baseline_score = float(result.baseline.output("EvaluationScore"))
    first_card, second_card = (scorecard_of(r.metadata) for r in reversed(result.lineage))
    assert first_card is not None
    assert second_card is not None
    assert first_card.parent_score == baseline_score
    assert second_card.parent_score == first_card.score
    assert second_card.score is not None
    assert first_card.score is not None
    assert second_card.score > first_card.score > baseline_score
    assert first.output("GateVerdict").startswith("passed:")

    newest, oldest = result.lineage
    assert newest.checkpoint_uri == second.output("CheckpointS3Uri")
    assert newest.parent == checkpoint
    assert oldest.checkpoint_uri == checkpoint
    assert oldest.parent == BASE_MODEL
    assert result.registered == 2
    assert any(checkpoint in line for line in lines if "└─" in line)

    # Run 2 continues the loss where run 1 ended; the PNG holds both curves.
    run_1, run_2 = result.curves
    assert (run_1.label, run_2.label) == ("run 1", "run 2")
    assert run_2.points[0][1] < run_1.points[0][1]
    assert run_2.points[0][1] < run_1.points[-1][1] * 1.1
    if inputs == "json":
        assert result.plot_path is not None
        assert result.plot_path.read_bytes().startswith(PNG_MAGIC)


def test_each_handler_runs_under_its_deployed_timeout_and_memory(
    cdk_out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Budgets come from the synthesized template, through the deployed functions."""
    template = {
        props["Handler"]: (props["Timeout"], props["MemorySize"])
        for path in cdk_out.glob("assembly-sandbox/*.template.json")
        for resource in json.loads(path.read_text(encoding="utf-8"))["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Function"
        for props in [resource["Properties"]]
        if props.get("Handler", "").startswith("lambdas.")
    }
    seen: dict[str, tuple[int, str]] = {}
    load = load_handler

    def recording(function: Any) -> Any:
        handler = load(function)

        def call(event: dict[str, Any], context: Any) -> Any:
            seen[function.handler] = (
                context.get_remaining_time_in_millis(),
                context.memory_limit_in_mb,
            )
            return handler(event, context)

        return call

    monkeypatch.setattr(rehearsal, "load_handler", recording)
    result, _ = run(cdk_out, tmp_path, plot=False)

    assert result.succeeded
    # validate, prepare, prepare-evaluation, register; record (the evaluate-only pipeline's,
    # run by the baseline round)
    assert len(template) == 5
    assert set(seen) == set(template)
    for handler, (timeout, memory) in template.items():
        remaining, memory_text = seen[handler]
        assert timeout * 1000 - 5_000 < remaining <= timeout * 1000, handler
        assert memory_text == str(memory)


def test_continuing_with_the_other_technique_is_refused_before_any_training_job(
    cdk_out: Path, tmp_path: Path
) -> None:
    result, lines = run(cdk_out, tmp_path, plot=False)

    first, second = result.executions
    # Each run's PrepareRecipe says what it checked, in its own output.
    assert first.step("PrepareRecipe").outputs["CheckpointCheck"].startswith("base-model:")
    checked = second.step("PrepareRecipe").outputs["CheckpointCheck"]
    assert checked.startswith("same-technique: LoRA, as arn:aws:sagemaker:")
    assert checked.endswith(f"records for {first.output('CheckpointS3Uri')}")
    assert (
        second.step("RegisterFromCheckpointValidating").arguments["SourceModelPackageArn"] == "none"
    )

    third = result.other_technique
    assert third is not None
    checkpoint = second.output("CheckpointS3Uri")
    assert third.parameters["ModelNameOrPath"] == checkpoint
    assert third.parameters["Technique"] == "FullRank"
    assert third.status == "Failed"
    assert third.step("ValidateData").status == "Succeeded"
    assert third.step("PrepareRecipe").status == "Failed"
    assert f"Technique FullRank cannot continue from checkpoint {checkpoint}" in (
        third.failure_reason
    )
    assert "trained with LoRA" in third.failure_reason
    assert all(s.attempts == 0 for s in third.steps if s.step_type == "Training")
    assert result.registered == 2
    assert result.succeeded
    assert any("run 3: FullRank from run 2's LoRA checkpoint: Failed (refused" in x for x in lines)


def test_s3_errors_and_throttling_are_retried_to_success(cdk_out: Path, tmp_path: Path) -> None:
    result, _ = run(cdk_out, tmp_path, s3_error_rate=0.1, throttle_rate=0.1, plot=False)

    assert result.faults is not None
    assert result.faults.injected["s3"] > 0
    assert result.faults.injected["sagemaker"] > 0
    assert [e.status for e in result.executions] == ["Succeeded", "Succeeded"]
    assert result.registered == 2


def test_a_failing_training_job_fails_the_run_and_registers_nothing(
    cdk_out: Path, tmp_path: Path
) -> None:
    result, _ = run(cdk_out, tmp_path, fail_training=True)

    (only,) = result.executions
    assert only.status == "Failed"
    assert "asked to fail" in only.failure_reason
    assert only.step("TrainFromBaseModel").status == "Failed"
    assert "RegisterFromBaseModel" not in only.started()
    assert result.registered == 0
    assert result.lineage == []
    assert result.plot_path is None


def test_every_round_evaluates_its_own_checkpoint_before_registering_it(
    cdk_out: Path, tmp_path: Path
) -> None:
    result, _ = run(cdk_out, tmp_path, other_technique_round=False, plot=False)

    first, second = result.executions
    assert first.parameters["EvaluationTask"] == "gen_qa"
    assert first.parameters["GateMetric"] == "rougeL"
    order = first.started()
    assert order.index("TrainFromBaseModel") < order.index("EvalFromBaseModel")
    assert order.index("EvalFromBaseModel") < order.index("RegisterFromBaseModel")
    assert "RegisterFromBaseModelUnevaluated" not in order
    # The evaluation scored the checkpoint the training job of the same round produced.
    prepared = first.step("PrepareEvaluationFromBaseModel").outputs
    assert prepared["ModelNameOrPath"] == first.output("CheckpointS3Uri")
    register = second.step("RegisterFromCheckpointValidating").arguments
    assert (
        register["EvaluationJobName"]
        == (second.step("EvalFromCheckpointValidating").arguments["TrainingJobName"])
    )
    assert len(register["EvaluationDataSha256"]) == 64


def test_a_failing_evaluation_fails_the_run_and_registers_nothing(
    cdk_out: Path, tmp_path: Path
) -> None:
    result, _ = run(cdk_out, tmp_path, fail_evaluation=True, plot=False)

    (only,) = result.executions
    assert only.status == "Failed"
    assert "stand-in evaluator was asked to fail" in only.failure_reason
    assert only.step("TrainFromBaseModel").status == "Succeeded"
    assert only.step("EvalFromBaseModel").status == "Failed"
    assert "RegisterFromBaseModel" not in only.started()
    assert result.registered == 0


def test_a_score_below_the_gate_registers_rejected_with_the_reason_and_approves_nothing(
    cdk_out: Path, tmp_path: Path
) -> None:
    result, _ = run(cdk_out, tmp_path, low_score=True, serving=False, plot=False)

    assert [e.status for e in result.executions] == ["Succeeded", "Succeeded"]
    assert result.registered == 2
    for execution, record in zip(result.executions, reversed(result.lineage), strict=True):
        verdict = execution.output("GateVerdict")
        assert verdict.startswith("rejected:")
        assert "rougeL" in verdict
        card = scorecard_of(record.metadata)
        assert card is not None
        assert card.score is not None
        assert card.score < 0.4
        # The metadata keeps the same verdict, in the characters SageMaker allows there.
        assert card.verdict == verdict.replace(" < ", " lt ")
        assert record.approval_status == "Rejected"
        # The recorded reason names the metric and the threshold it missed.
        assert "threshold 0.4" in verdict


def test_the_deployed_definition_retries_a_capacity_failure_with_a_new_job(
    cdk_out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class ShortOfCapacityOnce(StandInTrainer):
        """Fails the first job as SageMaker does when no instance is free."""

        def train(self, request: dict[str, Any]) -> dict[str, Any]:
            jobs.append(request["TrainingJobName"])
            if len(jobs) == 1:
                return {
                    "TrainingJobName": request["TrainingJobName"],
                    "TrainingJobStatus": "Failed",
                    "FailureReason": "CapacityError: Unable to provision requested ML compute "
                    "capacity. Please retry using a different ML instance type.",
                }
            return super().train(request)

    jobs: list[str] = []
    monkeypatch.setattr(rehearsal, "StandInTrainer", ShortOfCapacityOnce)
    result, _ = run(cdk_out, tmp_path, plot=False)

    assert [e.status for e in result.executions] == ["Succeeded", "Succeeded"]
    first = result.executions[0].step("TrainFromBaseModel")
    execution_id = result.executions[0].arn.rsplit("/", 1)[-1]
    # The definition's retry policy (SageMaker.CAPACITY_ERROR) started a second job.
    assert first.attempts == 2
    # A retry is a new job: the same service-shaped name with a new random suffix.
    assert first.arguments["TrainingJobName"] == jobs[1] != jobs[0]
    assert jobs[1][:-10] == jobs[0][:-10] == f"pipelines-{execution_id}-{first.name}-"
    assert result.registered == 2
    # The registered checkpoint is the retried job's, not the failed one's.
    assert jobs[1] in [record.training_job_name for record in result.lineage]
    assert jobs[0] not in [record.training_job_name for record in result.lineage]


def test_a_bad_dataset_stops_the_run_before_any_training_job(cdk_out: Path, tmp_path: Path) -> None:
    dataset = tmp_path / "bad.jsonl"
    lines = (SAMPLE_DATA.read_text(encoding="utf-8")).splitlines()
    sample = json.loads(lines[3])
    sample["messages"][0]["role"] = "assistant"  # a conversation must open with the user
    lines[3] = json.dumps(sample)
    dataset.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result, _ = run(cdk_out, tmp_path, dataset=dataset)

    (only,) = result.executions
    assert only.status == "Failed"
    assert only.step("ValidateData").status == "Failed"
    assert "line 4" in only.failure_reason
    assert only.started() == [VALIDATE_STEP]  # nothing after the failed step starts
    assert result.registered == 0


@pytest.mark.parametrize(
    "changed", ["prepare_recipe.py", "recipe/templates/nova_lite_2_0_sft_lora.yaml"]
)
def test_a_stale_lambda_asset_is_refused(cdk_out: Path, tmp_path: Path, changed: str) -> None:
    stale = tmp_path / "cdk.out"
    shutil.copytree(cdk_out, stale)
    (asset,) = {path.parent for path in stale.rglob("asset.*/lambdas")}
    target = asset / "lambdas" / changed
    target.write_text(target.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")

    with pytest.raises(DefinitionError, match=rf"differs from lambdas/ \({changed}\).*make synth"):
        run(stale, tmp_path)
