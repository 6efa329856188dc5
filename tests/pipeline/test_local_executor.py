"""The local executor interprets stored definitions faithfully and refuses what it cannot run."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from pipeline.local_executor import DefinitionError, LocalExecutor

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
    """Completes every job, as moto does, and keeps the requests it was given."""

    def __init__(self, session: boto3.Session, status: str = "Completed") -> None:
        self.sm = session.client("sagemaker")
        self.status = status
        self.requests: list[dict[str, Any]] = []

    def train(self, request: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(request)
        self.sm.create_training_job(**request)
        described: dict[str, Any] = self.sm.describe_training_job(
            TrainingJobName=request["TrainingJobName"]
        )
        if self.status != "Completed":
            described.update(TrainingJobStatus=self.status, FailureReason="capacity")
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
    assert record.step("Train").status == "NotExecuted"
    assert record.step("Register").status == "NotExecuted"
    assert trainer.requests == []


def test_a_raising_function_fails_the_execution_with_its_message(aws: boto3.Session) -> None:
    def broken(_event: dict[str, Any], _context: Any) -> dict[str, str]:
        raise ValueError("MaxSteps=2 is below the minimum 4")

    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"),
        lambda_handlers={FN_A: broken, FN_B: lambda _e, _c: {}},
        trainer=RecordingTrainer(aws),
    )
    record = executor.run(start(aws, branching_definition()))
    assert record.status == "Failed"
    assert record.step("Prepare").failure_reason == "ValueError: MaxSteps=2 is below the minimum 4"
    assert "Step Prepare failed" in record.failure_reason
    assert record.step("FromCheckpoint").status == "NotExecuted"


def test_throttling_is_retried_by_the_step_retry_policy(aws: boto3.Session) -> None:
    calls = []

    def flaky(_event: dict[str, Any], _context: Any) -> dict[str, str]:
        calls.append(1)
        if len(calls) < 3:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "X")
        return {"Out": "ok"}

    retry = [
        {
            "ExceptionType": ["Step.THROTTLING"],
            "IntervalSeconds": 1,
            "BackoffRate": 2.0,
            "MaxAttempts": 3,
        }
    ]
    waits: list[float] = []
    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"),
        lambda_handlers={FN_A: flaky},
        trainer=RecordingTrainer(aws),
        sleep=waits.append,
    )
    record = executor.run(
        start(aws, definition(lambda_step("S", FN_A, {}, ["Out"], RetryPolicies=retry)))
    )
    assert record.status == "Succeeded"
    assert record.step("S").attempts == 3
    assert waits == [1.0, 2.0]


def test_max_attempts_counts_retries_after_the_first_attempt(aws: boto3.Session) -> None:
    def throttled(_event: dict[str, Any], _context: Any) -> dict[str, str]:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "X")

    retry = [{"ExceptionType": ["Step.THROTTLING"], "IntervalSeconds": 1, "MaxAttempts": 2}]
    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"),
        lambda_handlers={FN_A: throttled},
        trainer=RecordingTrainer(aws),
    )
    record = executor.run(
        start(aws, definition(lambda_step("S", FN_A, {}, [], RetryPolicies=retry)))
    )
    assert record.status == "Failed"
    assert record.step("S").attempts == 3
    assert "ThrottlingException" in record.failure_reason


def test_other_errors_are_not_retried(aws: boto3.Session) -> None:
    def denied(_event: dict[str, Any], _context: Any) -> dict[str, str]:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetObject")

    retry = [
        {
            "ExceptionType": ["Step.THROTTLING"],
            "IntervalSeconds": 1,
            "BackoffRate": 2.0,
            "MaxAttempts": 5,
        }
    ]
    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"),
        lambda_handlers={FN_A: denied},
        trainer=RecordingTrainer(aws),
    )
    record = executor.run(
        start(aws, definition(lambda_step("S", FN_A, {}, [], RetryPolicies=retry)))
    )
    assert record.status == "Failed"
    assert record.step("S").attempts == 1
    assert "AccessDenied" in record.failure_reason


def test_a_failed_training_job_stops_the_run(aws: boto3.Session) -> None:
    registered = []
    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"),
        lambda_handlers={
            FN_A: lambda _e, _c: {"FromCheckpoint": "true"},
            FN_B: lambda e, _c: registered.append(e),
        },
        trainer=RecordingTrainer(aws, status="Failed"),
    )
    record = executor.run(start(aws, branching_definition()))
    assert record.status == "Failed"
    assert record.step("Train").failure_reason == "capacity"
    assert record.step("Register").status == "NotExecuted"
    assert registered == []


def test_a_missing_declared_output_fails_the_step(aws: boto3.Session) -> None:
    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"),
        lambda_handlers={FN_A: lambda _e, _c: {"Other": "x"}},
        trainer=RecordingTrainer(aws),
    )
    record = executor.run(start(aws, definition(lambda_step("S", FN_A, {}, ["Wanted"]))))
    assert record.status == "Failed"
    assert "returned no output 'Wanted'" in record.failure_reason


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


def test_invalid_training_request_is_checked_against_the_service_model(aws: boto3.Session) -> None:
    request = training_request()
    request["ResourceConfig"]["InstanceKount"] = 2
    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"), lambda_handlers={}, trainer=RecordingTrainer(aws)
    )
    step = {"Name": "Train", "Type": "Training", "Arguments": request}
    with pytest.raises(DefinitionError, match="InstanceKount"):
        executor.run(start(aws, definition(step)))


def test_bad_override_type_is_refused(aws: boto3.Session) -> None:
    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"), lambda_handlers={}, trainer=RecordingTrainer(aws)
    )
    with pytest.raises(DefinitionError, match="'four' is not a valid Integer"):
        executor.run(start(aws, definition(), Count="four"))
