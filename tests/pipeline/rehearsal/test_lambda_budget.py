"""Handlers run under their deployed budget: the timeout as a wall-clock limit, a context that
counts down; and Lambda inputs can arrive as JSON types or as strings."""

from __future__ import annotations

import io
import time
import zipfile
from typing import Any

import boto3
import pytest

from pipeline.rehearsal.executor import LocalExecutor
from pipeline.rehearsal.lambda_budget import (
    Budget,
    FunctionTimedOut,
    LambdaContext,
    budget_of,
    budgeted,
    budgeted_handlers,
    call_within,
    event_as_strings,
)
from tests.pipeline.rehearsal.test_executor import (
    FN_A,
    RecordingTrainer,
    definition,
    lambda_step,
    start,
)


def test_the_context_counts_down_from_the_timeout() -> None:
    now = [100.0]
    context = LambdaContext(FN_A, Budget(timeout_seconds=60, memory_mb=256), clock=lambda: now[0])
    assert context.get_remaining_time_in_millis() == 60_000
    now[0] += 12.5
    assert context.get_remaining_time_in_millis() == 47_500
    now[0] += 100
    assert context.get_remaining_time_in_millis() == 0
    assert (context.function_name, context.memory_limit_in_mb) == ("a", "256")
    assert context.invoked_function_arn == FN_A


def test_a_handler_past_its_timeout_fails_with_lambdas_message() -> None:
    context = LambdaContext(FN_A, Budget(0.1, 128))
    with pytest.raises(FunctionTimedOut, match=r"^Task timed out after 0\.10 seconds$"):
        call_within(lambda _e, _c: time.sleep(2), {}, context, 0.1)


def test_a_handler_within_its_timeout_returns_or_raises_as_it_did() -> None:
    context = LambdaContext(FN_A, Budget(5, 128))
    assert call_within(lambda e, c: {"left": c.get_remaining_time_in_millis()}, {}, context, 5)[
        "left"
    ] in range(4_000, 5_001)

    def broken(_event: Any, _context: Any) -> None:
        raise KeyError("TrainDataS3Uri")

    with pytest.raises(KeyError, match="TrainDataS3Uri"):
        call_within(broken, {}, context, 5)


def test_a_timed_out_function_fails_its_step(aws: boto3.Session) -> None:
    handlers = budgeted_handlers({FN_A: lambda _e, _c: time.sleep(2)}, {FN_A: Budget(0.1, 128)})
    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"),
        lambda_handlers=handlers,
        trainer=RecordingTrainer(aws),
    )
    record = executor.run(start(aws, definition(lambda_step("Slow", FN_A, {}, []))))
    assert record.status == "Failed"
    assert record.step("Slow").failure_reason == (
        "FunctionTimedOut: Task timed out after 0.10 seconds"
    )


def test_every_handler_needs_a_deployed_budget() -> None:
    with pytest.raises(ValueError, match="no deployed budget"):
        budgeted_handlers({FN_A: lambda _e, _c: {}}, {})


def test_the_budget_is_read_from_the_deployed_function(aws: boto3.Session) -> None:
    role = aws.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    arn = aws.client("lambda").create_function(
        FunctionName="validate",
        Runtime="python3.13",
        Role=role["Arn"],
        Handler="handler.handler",
        Code={"ZipFile": code.getvalue()},
        Timeout=600,
        MemorySize=1769,
    )["FunctionArn"]
    budget = budget_of(aws.client("lambda"), arn)
    assert budget == Budget(timeout_seconds=600.0, memory_mb=1769)
    contexts: list[Any] = []
    budgeted(lambda _e, c: contexts.append(c), arn, budget)({}, None)
    assert contexts[0].memory_limit_in_mb == "1769"
    assert 599_000 < contexts[0].get_remaining_time_in_millis() <= 600_000


def test_event_values_as_strings_use_the_pipelines_literals() -> None:
    event = {"Count": 4, "Rate": 1e-05, "On": True, "Off": False, "Text": "x", "List": [2]}
    assert event_as_strings(event) == {
        "Count": "4",
        "Rate": "1e-05",
        "On": "true",
        "Off": "false",
        "Text": "x",
        "List": ["2"],
    }


@pytest.mark.parametrize(("form", "count"), [("json", 8), ("strings", "8")])
def test_the_executor_delivers_typed_parameters_in_either_form(
    aws: boto3.Session, form: str, count: Any
) -> None:
    events: list[Any] = []

    def keep(event: dict[str, Any], _context: Any) -> dict[str, str]:
        events.append(event)
        return {}

    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"),
        lambda_handlers={FN_A: keep},
        trainer=RecordingTrainer(aws),
        lambda_inputs=form,
    )
    step = lambda_step("S", FN_A, {"Count": {"Get": "Parameters.Count"}}, [])
    assert executor.run(start(aws, definition(step), Count="8")).status == "Succeeded"
    assert events == [{"Count": count}]


def test_an_unknown_input_form_is_refused(aws: boto3.Session) -> None:
    with pytest.raises(ValueError, match="lambda_inputs must be one of"):
        LocalExecutor(
            sagemaker_client=None,
            lambda_handlers={},
            trainer=RecordingTrainer(aws),
            lambda_inputs="xml",
        )
