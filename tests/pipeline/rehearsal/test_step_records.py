"""The executor records steps as ListPipelineExecutionSteps reports them, the local endpoint
serves them (and the execution's real status) over HTTP, and jobs carry the service's names."""

from __future__ import annotations

import re
from typing import Any

import boto3
import pytest

from pipeline.rehearsal.endpoint import LocalEndpoint
from pipeline.rehearsal.execution_record import DefinitionError, StepRecord
from pipeline.rehearsal.executor import LocalExecutor
from pipeline.rehearsal.step_records import api_step, job_name
from tests.pipeline.rehearsal.test_executor import (
    FN_A,
    FN_B,
    RecordingTrainer,
    branching_definition,
    definition,
    lambda_step,
    start,
    training_request,
)

CAPACITY = "CapacityError: Unable to provision requested ML compute capacity."


def executor(
    aws: boto3.Session, endpoint: LocalEndpoint, handlers: dict[str, Any], **options: Any
) -> LocalExecutor:
    return LocalExecutor(
        sagemaker_client=aws.client("sagemaker"),
        lambda_handlers=handlers,
        trainer=options.pop("trainer", RecordingTrainer(aws)),
        publish=endpoint.executions.publish,
        **options,
    )


def listed(aws: boto3.Session, arn: str, **request: Any) -> list[dict[str, Any]]:
    pages = aws.client("sagemaker").get_paginator("list_pipeline_execution_steps")
    return [
        step
        for page in pages.paginate(PipelineExecutionArn=arn, **request)
        for step in page["PipelineExecutionSteps"]
    ]


def test_steps_are_listed_with_the_apis_statuses_and_metadata(
    aws: boto3.Session, local_endpoint: LocalEndpoint
) -> None:
    handlers = {FN_A: lambda _e, _c: {"FromCheckpoint": "true"}, FN_B: lambda _e, _c: {}}
    runner = executor(aws, local_endpoint, {**handlers, FN_B: lambda _e, _c: {"Checkpoint": "c"}})
    arn = start(aws, branching_definition(), Source="s3://escrow/parent")
    record = runner.run(arn)

    steps = {s["StepName"]: s for s in listed(aws, arn, SortOrder="Ascending")}
    assert list(steps) == ["Prepare", "FromCheckpoint", "Train", "Register"]
    assert {s["StepStatus"] for s in steps.values()} == {"Succeeded"}
    assert steps["Prepare"]["Metadata"]["Lambda"] == {
        "Arn": FN_A,
        "OutputParameters": [{"Name": "FromCheckpoint", "Value": "true"}],
    }
    assert steps["FromCheckpoint"]["Metadata"] == {"Condition": {"Outcome": "True"}}
    job = record.step("Train").arguments["TrainingJobName"]
    assert steps["Train"]["Metadata"]["TrainingJob"]["Arn"].endswith(f"/{job}")
    assert steps["Train"]["AttemptCount"] == 1
    assert all(s["StartTime"] <= s["EndTime"] for s in steps.values())
    # Newest first unless asked otherwise; pages of one step give the same list.
    assert [s["StepName"] for s in listed(aws, arn)] == list(reversed(steps))
    assert [s["StepName"] for s in listed(aws, arn, PaginationConfig={"PageSize": 1})] == list(
        reversed(steps)
    )
    described = aws.client("sagemaker").describe_pipeline_execution(PipelineExecutionArn=arn)
    assert described["PipelineExecutionStatus"] == "Succeeded"


def test_a_failed_step_and_execution_report_their_reasons_and_nothing_after_is_listed(
    aws: boto3.Session, local_endpoint: LocalEndpoint
) -> None:
    runner = executor(
        aws,
        local_endpoint,
        {FN_A: lambda _e, _c: {"FromCheckpoint": "true"}, FN_B: lambda _e, _c: {}},
        trainer=RecordingTrainer(aws, failures=[CAPACITY]),
    )
    arn = start(aws, branching_definition())
    runner.run(arn)

    steps = listed(aws, arn, SortOrder="Ascending")
    assert [(s["StepName"], s["StepStatus"]) for s in steps] == [
        ("Prepare", "Succeeded"),
        ("FromCheckpoint", "Succeeded"),
        ("Train", "Failed"),
    ]
    assert steps[-1]["FailureReason"] == CAPACITY
    sm = aws.client("sagemaker")
    described = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert described["FailureReason"] == f"Step Train failed: {CAPACITY}"
    [summary] = sm.list_pipeline_executions(PipelineName="p")["PipelineExecutionSummaries"]
    assert summary["PipelineExecutionStatus"] == "Failed"


def test_while_a_step_runs_the_execution_and_the_step_are_executing(
    aws: boto3.Session, local_endpoint: LocalEndpoint
) -> None:
    seen: list[Any] = []
    sm = aws.client("sagemaker")

    def look(_event: dict[str, Any], _context: Any) -> dict[str, str]:
        arn = sm.list_pipeline_executions(PipelineName="p")["PipelineExecutionSummaries"][0][
            "PipelineExecutionArn"
        ]
        described = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
        seen.append(described["PipelineExecutionStatus"])
        seen.append([(s["StepName"], s["StepStatus"]) for s in listed(aws, arn)])
        return {}

    executor(aws, local_endpoint, {FN_A: look}).run(
        start(aws, definition(lambda_step("Look", FN_A, {}, [])))
    )
    assert seen == ["Executing", [("Look", "Executing")]]


def test_an_execution_no_executor_ran_lists_no_step(aws: boto3.Session) -> None:
    arn = start(aws, definition())
    assert listed(aws, arn) == []


def test_a_status_the_api_does_not_have_is_refused() -> None:
    with pytest.raises(ValueError, match="'NotExecuted' is not one of"):
        api_step(StepRecord(name="S", step_type="Lambda", status="NotExecuted"))


def test_job_names_have_the_services_shape_and_a_new_suffix_each_time() -> None:
    names = {job_name("kytlemm1lvpq", "TrainFromCheckpoint") for _ in range(20)}
    assert len(names) == 20
    assert all(
        re.fullmatch(r"pipelines-kytlemm1lvpq-TrainFromCheckpoint-[A-Za-z0-9]{10}", n)
        for n in names
    )


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("T" * 30, "use a step name of at most 29"),  # 63 - len("pipelines-") - 12 - 2 - 10
        ("Train_Model", "not a valid TrainingJobName"),  # '_' is outside its pattern
    ],
)
def test_a_step_name_that_would_not_fit_a_job_name_is_refused(step: str, message: str) -> None:
    assert len(job_name("kytlemm1lvpq", "T" * 29)) == 63
    with pytest.raises(ValueError, match=message):
        job_name("kytlemm1lvpq", step)


def test_the_executor_refuses_a_training_step_whose_job_name_would_not_fit(
    aws: boto3.Session, local_endpoint: LocalEndpoint
) -> None:
    step = {"Name": "T" * 30, "Type": "Training", "Arguments": training_request()}
    arn = start(aws, definition(step))
    with pytest.raises(DefinitionError, match="at most 29"):
        executor(aws, local_endpoint, {}).run(arn)
    # A run the rehearsal refuses also ends for whoever watches it.
    described = aws.client("sagemaker").describe_pipeline_execution(PipelineExecutionArn=arn)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert "at most 29" in described["FailureReason"]
    [step] = listed(aws, arn)
    assert (step["StepStatus"], "at most 29" in step["FailureReason"]) == ("Failed", True)
