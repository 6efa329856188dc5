"""Running each step type the rehearsal knows: a Lambda step calls the deployed handler in
process, a training step sends its CreateTrainingJob request (held to botocore's shape) to the
stand-in trainer, a condition step evaluates its conditions. Each takes the executor's `evaluate`
for the definition's expressions; a StepFailure fails the step (its retry policies may retry it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError
from botocore.model import Shape
from botocore.validate import ParamValidator

from lambdas.aws_errors import THROTTLED, error_code
from pipeline.rehearsal.execution_record import DefinitionError, StepFailure, StepRecord, Trainer
from pipeline.rehearsal.lambda_budget import event_as_strings
from pipeline.rehearsal.properties import as_text, convert
from pipeline.rehearsal.step_records import job_name

LambdaHandler = Callable[[dict[str, Any], Any], Any]
Evaluate = Callable[[Any], Any]

LAMBDA_INPUT_FORMS = ("json", "strings")
# A failed training job's FailureReason starts with its error name; the retry exception type
# each one maps to (the same guide: "SageMaker.CAPACITY_ERROR", "SageMaker.JOB_INTERNAL_ERROR").
JOB_FAILURE_TYPES = {
    "CapacityError": "SageMaker.CAPACITY_ERROR",
    "InternalServerError": "SageMaker.JOB_INTERNAL_ERROR",
}


def _call_failure_type(err: ClientError) -> str | None:
    """The retry exception type of a failed service call, or None if no policy may retry it."""
    code = error_code(err)
    if code == "ResourceLimitExceeded":
        return "SageMaker.RESOURCE_LIMIT"
    if code in THROTTLED:
        return "Step.THROTTLING"
    if err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500:
        return "Step.SERVICE_FAULT"
    return None


def run_lambda(
    step: dict[str, Any],
    record: StepRecord,
    *,
    evaluate: Evaluate,
    handlers: dict[str, LambdaHandler],
    lambda_inputs: str,
) -> dict[str, Any]:
    """Call the step's handler with its evaluated arguments; its declared outputs, typed."""
    arn = evaluate(step["FunctionArn"])
    handler = handlers.get(arn)
    if handler is None:
        raise DefinitionError(f"step {record.name}: no deployed function with ARN {arn}")
    event = evaluate(step.get("Arguments", {}))
    if lambda_inputs == "strings":
        event = event_as_strings(event)
    record.arguments = event
    record.metadata = {"Lambda": {"Arn": arn}}
    try:
        result = handler(event, None)
    except Exception as err:  # a raising function fails the step with its message
        raise StepFailure(f"{type(err).__name__}: {err}") from err
    if not isinstance(result, dict):
        raise StepFailure(f"function {arn} returned {type(result).__name__}, not an object")
    outputs = {}
    for declared in step.get("OutputParameters", []):
        name = declared["OutputName"]
        if name not in result:
            raise StepFailure(f"function {arn} returned no output {name!r}")
        outputs[name] = convert(name, declared.get("OutputType", "String"), result[name])
    record.metadata["Lambda"]["OutputParameters"] = [
        {"Name": name, "Value": as_text(value)} for name, value in outputs.items()
    ]
    return outputs


def run_training(
    step: dict[str, Any],
    record: StepRecord,
    *,
    evaluate: Evaluate,
    execution_id: str,
    request_shape: Shape,
    trainer: Trainer,
    properties: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Send the step's CreateTrainingJob request to the trainer; the job's DescribeTrainingJob
    response becomes the step's properties (in `properties`, by step name)."""
    request = evaluate(step.get("Arguments", {}))
    # Each attempt is a new job with a new random suffix.
    try:
        name = job_name(execution_id, record.name)
    except ValueError as err:
        raise DefinitionError(str(err)) from None
    request = {"TrainingJobName": name, **request}
    report = ParamValidator().validate(request, request_shape)
    if report.has_errors():
        raise DefinitionError(
            f"step {record.name}: not a valid CreateTrainingJob request:\n"
            f"{report.generate_report()}"
        )
    record.arguments = request
    try:
        described = trainer.train(request)
    except ClientError as err:  # CreateTrainingJob itself failed
        raise StepFailure(
            f"{type(err).__name__}: {err}", exception_type=_call_failure_type(err)
        ) from err
    properties[record.name] = described
    if described.get("TrainingJobArn"):
        record.metadata = {"TrainingJob": {"Arn": described["TrainingJobArn"]}}
    if described.get("TrainingJobStatus") != "Completed":
        reason = str(described.get("FailureReason", "training job did not complete"))
        error_name = reason.partition(":")[0]
        raise StepFailure(reason, exception_type=JOB_FAILURE_TYPES.get(error_name))
    return {}


def run_condition(
    step: dict[str, Any], record: StepRecord, *, evaluate: Evaluate, branches: dict[str, bool]
) -> dict[str, Any]:
    """Evaluate the step's conditions (all must hold); the branch taken goes in `branches`."""
    conditions = step.get("Arguments", {}).get("Conditions", [])
    outcome = all(condition_holds(c, evaluate) for c in conditions)
    branches[record.name] = outcome
    record.metadata = {"Condition": {"Outcome": "True" if outcome else "False"}}
    return {"Outcome": outcome}


def condition_holds(condition: dict[str, Any], evaluate: Evaluate) -> bool:
    kind = condition["Type"]
    if kind == "Not":
        return not condition_holds(condition["Condition"], evaluate)
    if kind == "Or":
        return any(condition_holds(c, evaluate) for c in condition["Conditions"])
    if kind == "In":
        return evaluate(condition["QueryValue"]) in evaluate(condition["Values"])
    left = evaluate(condition["LeftValue"])
    right = evaluate(condition["RightValue"])
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "Equals": lambda a, b: bool(a == b),
        "GreaterThan": lambda a, b: bool(a > b),
        "GreaterThanOrEqualTo": lambda a, b: bool(a >= b),
        "LessThan": lambda a, b: bool(a < b),
        "LessThanOrEqualTo": lambda a, b: bool(a <= b),
    }
    if kind not in comparisons:
        raise DefinitionError(f"condition type {kind!r} is not supported")
    return comparisons[kind](left, right)
