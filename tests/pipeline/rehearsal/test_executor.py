"""The local executor interprets stored definitions faithfully and refuses what it cannot run."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from pipeline.rehearsal.execution_record import DefinitionError
from pipeline.rehearsal.executor import LocalExecutor

ROLE = "arn:aws:iam::123456789012:role/pipeline"
FN_A = "arn:aws:lambda:us-east-1:123456789012:function:a"
FN_B = "arn:aws:lambda:us-east-1:123456789012:function:b"


def lambda_step(name: str, arn: str, arguments: Any, outputs: list[str], **extra: Any) -> Any:
    return {
        "Name": name,
        "Type": "Lambda",
        "Arguments": arguments,
        "FunctionArn": arn,
        "OutputParameters": [{"OutputName": o, "OutputType": "String"} for o in outputs],
        **extra,
    }


def training_request() -> dict[str, Any]:
    return {
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://out/jobs"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "ResourceConfig": {
            "InstanceCount": {"Get": "Parameters.Count"},
            "InstanceType": "ml.p5.48xlarge",
            "VolumeSizeInGB": 30,
        },
        "RoleArn": ROLE,
    }


def start(session: boto3.Session, definition: dict[str, Any], **overrides: str) -> str:
    sm = session.client("sagemaker")
    sm.create_pipeline(PipelineName="p", PipelineDefinition=json.dumps(definition), RoleArn=ROLE)
    response = sm.start_pipeline_execution(
        PipelineName="p",
        PipelineParameters=[{"Name": k, "Value": v} for k, v in overrides.items()],
    )
    return str(response["PipelineExecutionArn"])


class RecordingTrainer:
    """Keeps the requests it is given; fails the first attempts as `failures` says, else
    completes the job as moto does. A failure is a job's FailureReason, or a ClientError that
    CreateTrainingJob raises.
    """

    def __init__(self, session: boto3.Session, failures: Sequence[str | ClientError] = ()) -> None:
        self.sm = session.client("sagemaker")
        self.failures = list(failures)
        self.requests: list[dict[str, Any]] = []

    def train(self, request: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(request)
        failure = self.failures.pop(0) if self.failures else None
        if isinstance(failure, ClientError):
            raise failure
        self.sm.create_training_job(**request)
        described: dict[str, Any] = self.sm.describe_training_job(
            TrainingJobName=request["TrainingJobName"]
        )
        if failure is not None:
            described.update(TrainingJobStatus="Failed", FailureReason=failure)
        return described


PARAMETERS = [
    {"Name": "Source", "Type": "String", "DefaultValue": "base"},
    {"Name": "Count", "Type": "Integer", "DefaultValue": 4},
]


def definition(*steps: Any) -> dict[str, Any]:
    return {"Version": "2020-12-01", "Parameters": PARAMETERS, "Steps": list(steps)}


def branching_definition() -> dict[str, Any]:
    prepare = lambda_step(
        "Prepare",
        FN_A,
        {
            "Source": {"Get": "Parameters.Source"},
            "Where": {
                "Std:Join": {
                    "On": "/",
                    "Values": ["s3://b", {"Get": "Execution.PipelineExecutionId"}, "r"],
                }
            },
        },
        ["FromCheckpoint"],
    )
    train = {"Name": "Train", "Type": "Training", "Arguments": training_request()}
    register = lambda_step(
        "Register",
        FN_B,
        {
            "Job": {"Get": "Steps.Train.TrainingJobName"},
            "Model": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"},
        },
        ["Checkpoint"],
    )
    branch = {
        "Name": "FromCheckpoint",
        "Type": "Condition",
        "Arguments": {
            "Conditions": [
                {
                    "Type": "Equals",
                    "LeftValue": {"Get": "Steps.Prepare.OutputParameters['FromCheckpoint']"},
                    "RightValue": "true",
                }
            ],
            "IfSteps": [train, register],
            "ElseSteps": [],
        },
    }
    return definition(prepare, branch)


def test_runs_lambda_condition_training_and_register_in_order(aws: boto3.Session) -> None:
    events: list[tuple[str, Any]] = []

    def prepare(event: dict[str, Any], _context: Any) -> dict[str, str]:
        events.append(("prepare", event))
        return {"FromCheckpoint": "true" if event["Source"].startswith("s3://") else "false"}

    def register(event: dict[str, Any], _context: Any) -> dict[str, str]:
        events.append(("register", event))
        return {"Checkpoint": "s3://escrow/x"}

    trainer = RecordingTrainer(aws)
    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"),
        lambda_handlers={FN_A: prepare, FN_B: register},
        trainer=trainer,
    )
    arn = start(aws, branching_definition(), Source="s3://escrow/parent", Count="8")
    record = executor.run(arn)

    assert record.status == "Succeeded", record.failure_reason
    assert [s.name for s in record.steps] == ["Prepare", "FromCheckpoint", "Train", "Register"]
    execution_id = arn.rsplit("/", 1)[-1]
    assert events[0] == (
        "prepare",
        {"Source": "s3://escrow/parent", "Where": f"s3://b/{execution_id}/r"},
    )
    request = trainer.requests[0]
    assert request["ResourceConfig"]["InstanceCount"] == 8  # the override, typed as Integer
    register_event = events[1][1]
    assert register_event["Job"] == request["TrainingJobName"]
    assert (
        register_event["Model"] == f"s3://out/jobs/{request['TrainingJobName']}/output/model.tar.gz"
    )
    assert record.output("Checkpoint") == "s3://escrow/x"


def test_the_other_branch_is_not_executed(aws: boto3.Session) -> None:
    trainer = RecordingTrainer(aws)
    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"),
        lambda_handlers={
            FN_A: lambda _e, _c: {"FromCheckpoint": "false"},
            FN_B: lambda _e, _c: {"Checkpoint": "never"},
        },
        trainer=trainer,
    )
    record = executor.run(start(aws, branching_definition()))
    assert record.status == "Succeeded"
    assert "Train" not in record.started()
    assert "Register" not in record.started()
    assert trainer.requests == []


CAPACITY = "CapacityError: Unable to provision requested ML compute capacity."
EVERY_RETRY_TYPE = [
    "Step.SERVICE_FAULT",
    "Step.THROTTLING",
    "SageMaker.JOB_INTERNAL_ERROR",
    "SageMaker.CAPACITY_ERROR",
    "SageMaker.RESOURCE_LIMIT",
]


def call_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "CreateTrainingJob",
    )


def retried_training(exception_types: list[str], max_attempts: int) -> dict[str, Any]:
    policy = {
        "ExceptionType": exception_types,
        "IntervalSeconds": 1,
        "BackoffRate": 2.0,
        "MaxAttempts": max_attempts,
    }
    return definition(
        {
            "Name": "Train",
            "Type": "Training",
            "Arguments": training_request(),
            "RetryPolicies": [policy],
        }
    )


@pytest.mark.parametrize(
    ("failure", "exception_type"),
    [
        (CAPACITY, "SageMaker.CAPACITY_ERROR"),
        ("InternalServerError: We encountered an internal error.", "SageMaker.JOB_INTERNAL_ERROR"),
        (call_error("ThrottlingException"), "Step.THROTTLING"),
        (call_error("ResourceLimitExceeded"), "SageMaker.RESOURCE_LIMIT"),
        (call_error("InternalFailure", 500), "Step.SERVICE_FAULT"),
    ],
)
def test_a_training_failure_is_retried_by_the_policy_for_its_type(
    aws: boto3.Session, failure: str | ClientError, exception_type: str
) -> None:
    waits: list[float] = []
    trainer = RecordingTrainer(aws, failures=[failure, failure])
    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"),
        lambda_handlers={},
        trainer=trainer,
        sleep=waits.append,
    )
    others = [t for t in EVERY_RETRY_TYPE if t != exception_type]
    # A policy for every other type leaves the failure alone ...
    record = executor.run(start(aws, retried_training(others, 3)))
    assert (record.status, record.step("Train").attempts) == ("Failed", 1)
    # ... the policy for its own type retries it, each attempt a new job.
    aws.client("sagemaker").delete_pipeline(PipelineName="p")
    trainer.failures = [failure, failure]
    trainer.requests.clear()
    record = executor.run(start(aws, retried_training([exception_type], 3)))
    assert record.status == "Succeeded"
    assert record.step("Train").attempts == 3
    assert waits == [1.0, 2.0]
    names = [request["TrainingJobName"] for request in trainer.requests]
    assert len(set(names)) == 3
    # Each attempt is a new job: the service's name shape with a new random suffix.
    prefix = f"pipelines-{record.arn.rsplit('/', 1)[-1]}-Train-"
    assert all(re.fullmatch(re.escape(prefix) + "[A-Za-z0-9]{10}", name) for name in names)
    assert all(len(name) <= 63 for name in names)
    assert record.step("Train").arguments["TrainingJobName"] == names[-1]


def test_max_attempts_counts_retries_after_the_first_attempt(aws: boto3.Session) -> None:
    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"),
        lambda_handlers={},
        trainer=RecordingTrainer(aws, failures=[CAPACITY] * 5),
        sleep=lambda _seconds: None,
    )
    record = executor.run(start(aws, retried_training(["SageMaker.CAPACITY_ERROR"], 2)))
    assert record.status == "Failed"
    assert record.step("Train").attempts == 3
    assert record.failure_reason == f"Step Train failed: {CAPACITY}"


@pytest.mark.parametrize(
    "failure",
    ["AlgorithmError: loss is NaN", call_error("ValidationException"), call_error("AccessDenied")],
)
def test_failures_no_policy_covers_are_not_retried(
    aws: boto3.Session, failure: str | ClientError
) -> None:
    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"),
        lambda_handlers={},
        trainer=RecordingTrainer(aws, failures=[failure] * 5),
        sleep=lambda _seconds: None,
    )
    record = executor.run(start(aws, retried_training(EVERY_RETRY_TYPE, 5)))
    assert record.status == "Failed"
    assert record.step("Train").attempts == 1
    assert str(failure) in record.failure_reason


@pytest.mark.parametrize("step_type", ["Lambda", "Condition"])
def test_retry_policies_on_a_step_that_is_not_a_job_are_refused(
    aws: boto3.Session, step_type: str
) -> None:
    retry = [{"ExceptionType": ["Step.THROTTLING"], "MaxAttempts": 2}]
    if step_type == "Lambda":
        step = lambda_step("S", FN_A, {}, [], RetryPolicies=retry)
    else:
        step = {
            "Name": "S",
            "Type": "Condition",
            "Arguments": {"Conditions": [], "IfSteps": [], "ElseSteps": []},
            "RetryPolicies": retry,
        }
    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"),
        lambda_handlers={FN_A: lambda _e, _c: {}},
        trainer=RecordingTrainer(aws),
    )
    with pytest.raises(DefinitionError, match=f"job steps only .*not on a {step_type} step"):
        executor.run(start(aws, definition(step)))


def test_a_failed_training_job_stops_the_run(aws: boto3.Session) -> None:
    registered = []
    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"),
        lambda_handlers={
            FN_A: lambda _e, _c: {"FromCheckpoint": "true"},
            FN_B: lambda e, _c: registered.append(e),
        },
        trainer=RecordingTrainer(aws, failures=[CAPACITY]),
    )
    record = executor.run(start(aws, branching_definition()))
    assert record.status == "Failed"
    assert record.step("Train").attempts == 1  # the step has no retry policy
    assert record.step("Train").failure_reason == CAPACITY
    assert "Register" not in record.started()
    assert registered == []


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ({"Get": "Parameters.Nope"}, "no parameter 'Nope' is declared"),
        ({"Get": "Execution.Tomorrow"}, "unknown execution variable"),
        ({"Std:JsonGet": {"Path": "a"}}, "Std:JsonGet is not supported"),
        ({"Get": "Steps.Train.ModelArtifacts.S3ModelArtifact"}, "has no member 'S3ModelArtifact'"),
        ({"Get": "Steps.Train.TrainingJobName.Value"}, "cannot index"),
    ],
)
def test_unknown_expressions_and_paths_fail_loudly(
    aws: boto3.Session, argument: Any, message: str
) -> None:
    train = {"Name": "Train", "Type": "Training", "Arguments": training_request()}
    use = lambda_step("Use", FN_A, {"X": argument}, [])
    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"),
        lambda_handlers={FN_A: lambda _e, _c: {}},
        trainer=RecordingTrainer(aws),
    )
    with pytest.raises(DefinitionError, match=message):
        executor.run(start(aws, definition(train, use)))


def test_unknown_step_types_fail_loudly(aws: boto3.Session) -> None:
    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"), lambda_handlers={}, trainer=RecordingTrainer(aws)
    )
    step = {"Name": "P", "Type": "Processing", "Arguments": {}}
    with pytest.raises(DefinitionError, match="step type 'Processing' is not supported"):
        executor.run(start(aws, definition(step)))


def test_bad_override_type_is_refused(aws: boto3.Session) -> None:
    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"), lambda_handlers={}, trainer=RecordingTrainer(aws)
    )
    with pytest.raises(DefinitionError, match="Count='four': must be an Integer"):
        executor.run(start(aws, definition(), Count="four"))
