"""Each step type (`pipeline.rehearsal.step_types`): a raising or incomplete Lambda fails its
step, a training request is held to the service model."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from pipeline.rehearsal.execution_record import DefinitionError
from pipeline.rehearsal.executor import LocalExecutor
from tests.pipeline.rehearsal import test_executor as executor_tests
from tests.pipeline.rehearsal.test_executor import FN_A, FN_B, RecordingTrainer, definition, start


def test_a_raising_function_fails_the_execution_with_its_message(aws: boto3.Session) -> None:
    def broken(_event: dict[str, Any], _context: Any) -> dict[str, str]:
        raise ValueError("MaxSteps=2 is below the minimum 4")

    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"),
        lambda_handlers={FN_A: broken, FN_B: lambda _e, _c: {}},
        trainer=RecordingTrainer(aws),
    )
    record = executor.run(start(aws, executor_tests.branching_definition()))
    assert record.status == "Failed"
    assert record.step("Prepare").failure_reason == "ValueError: MaxSteps=2 is below the minimum 4"
    assert "Step Prepare failed" in record.failure_reason
    assert "FromCheckpoint" not in record.started()


def test_a_missing_declared_output_fails_the_step(aws: boto3.Session) -> None:
    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"),
        lambda_handlers={FN_A: lambda _e, _c: {"Other": "x"}},
        trainer=RecordingTrainer(aws),
    )
    record = executor.run(
        start(aws, definition(executor_tests.lambda_step("S", FN_A, {}, ["Wanted"])))
    )
    assert record.status == "Failed"
    assert "returned no output 'Wanted'" in record.failure_reason


def test_invalid_training_request_is_checked_against_the_service_model(aws: boto3.Session) -> None:
    request = executor_tests.training_request()
    request["ResourceConfig"]["InstanceKount"] = 2
    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"), lambda_handlers={}, trainer=RecordingTrainer(aws)
    )
    step = {"Name": "Train", "Type": "Training", "Arguments": request}
    with pytest.raises(DefinitionError, match="InstanceKount"):
        executor.run(start(aws, definition(step)))
