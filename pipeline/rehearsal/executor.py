"""Run a stored SageMaker pipeline execution on this machine, step by step.

moto records pipelines and executions but runs no step, so the local rehearsal interprets the
definition that the SageMaker API stored for an execution: its parameters and their overrides,
`Get` and `Std:Join` expressions, execution variables, step properties, conditions, dependencies
and retry policies. Lambda steps call the deployed handler in process; training steps go to a
stand-in trainer. Overrides are held to the service's rules (`pipeline.overrides`); steps are
recorded as ListPipelineExecutionSteps reports them (`pipeline.rehearsal.step_records`) and
published as they change; jobs are named as the service names them. Anything the interpreter does
not know (a step type, an expression, a property path that the real API response does not have)
fails the run loudly: nothing is skipped silently.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import botocore.session
from botocore.exceptions import ClientError
from botocore.model import ListShape, MapShape, Shape, StructureShape
from botocore.validate import ParamValidator

from lambdas.aws_errors import THROTTLED, error_code
from pipeline.overrides import OverrideError
from pipeline.overrides import effective as effective_parameters
from pipeline.rehearsal.lambda_budget import event_as_strings
from pipeline.rehearsal.step_records import job_name

LambdaHandler = Callable[[dict[str, Any], Any], Any]

EXECUTION_VARIABLES = (
    "PipelineExecutionId",
    "PipelineExecutionArn",
    "PipelineName",
    "PipelineArn",
    "StartDateTime",
    "CurrentDateTime",
)
# Step types that take RetryPolicies (the SageMaker guide "Retry Policy for Pipeline Steps" lists
# job steps only: processing, training, tuning, ...); of those the rehearsal runs training.
RETRYABLE_STEP_TYPES = frozenset({"Training"})
# A failed training job's FailureReason starts with its error name; the retry exception type
# each one maps to (the same guide: "SageMaker.CAPACITY_ERROR", "SageMaker.JOB_INTERNAL_ERROR").
JOB_FAILURE_TYPES = {
    "CapacityError": "SageMaker.CAPACITY_ERROR",
    "InternalServerError": "SageMaker.JOB_INTERNAL_ERROR",
}
_STEP_REF = re.compile(r"^Steps\.([A-Za-z0-9_-]+)\.(.+)$")
_OUTPUT_REF = re.compile(r"^OutputParameters\['([^']+)'\]$")
_PATH_TOKEN = re.compile(r"\.?([A-Za-z0-9_]+)|\[(\d+)\]|\['([^']*)'\]")
LAMBDA_INPUT_FORMS = ("json", "strings")


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


class DefinitionError(Exception):
    """The definition uses something the rehearsal cannot run or the real API does not have."""


def dependency_order(needs: Mapping[str, Collection[str]], what: str) -> list[str]:
    """The keys of `needs`, each after every name it needs (names that are not keys are ignored).

    Ties keep the order of `needs`, so the order is repeatable. A cycle is a DefinitionError
    that names `what` (e.g. "steps") and the names left over.
    """
    ordered: list[str] = []
    done: set[str] = set()
    remaining = list(needs)
    while remaining:
        ready = next(
            (n for n in remaining if all(d in done or d not in needs for d in needs[n])), None
        )
        if ready is None:
            raise DefinitionError(f"dependency cycle among {what} {sorted(remaining)}")
        ordered.append(ready)
        done.add(ready)
        remaining.remove(ready)
    return ordered


class StepFailure(Exception):
    """A step failed; the message is the step's failure reason."""

    def __init__(self, reason: str, *, exception_type: str | None = None) -> None:
        super().__init__(reason)
        self.exception_type = exception_type


class Trainer(Protocol):
    """Runs a CreateTrainingJob request and returns the job's DescribeTrainingJob response."""

    def train(self, request: dict[str, Any]) -> dict[str, Any]: ...


@dataclass
class StepRecord:
    """What happened to one step that started; statuses are the API's `StepStatus` values, and
    `metadata` is the API's `Metadata` of the step (TrainingJob, Lambda or Condition)."""

    name: str
    step_type: str
    status: str = "Starting"
    failure_reason: str = ""
    attempts: int = 0
    arguments: Any = None
    outputs: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    display_name: str = ""
    description: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None


@dataclass
class ExecutionRecord:
    """What happened to one pipeline execution."""

    arn: str
    parameters: dict[str, Any]
    status: str = "Executing"
    failure_reason: str = ""
    steps: list[StepRecord] = field(default_factory=list)

    def step(self, name: str) -> StepRecord:
        for record in self.steps:
            if record.name == name:
                return record
        raise KeyError(f"no step named {name!r} ran in {self.arn}")

    def started(self) -> list[str]:
        """The names of the steps that started, in order (the API lists no other step)."""
        return [record.name for record in self.steps]

    def output(self, name: str) -> Any:
        """An output of whichever executed step declares it (branches may declare it twice)."""
        values = [
            r.outputs[name] for r in self.steps if r.status == "Succeeded" and name in r.outputs
        ]
        if len(values) != 1:
            raise KeyError(f"{len(values)} executed steps produced output {name!r} in {self.arn}")
        return values[0]


@dataclass
class _Node:
    step: dict[str, Any]
    gates: tuple[tuple[str, bool], ...]  # (condition step name, branch it must have taken)


@functools.cache
def _sagemaker_model() -> Any:
    """botocore's SageMaker service model: the real API shapes (loaded once, about 0.5 s)."""
    return botocore.session.get_session().get_service_model("sagemaker")


def _shape_child(shape: Shape, token: tuple[str, str, str]) -> Shape:
    member, index, key = token
    if isinstance(shape, StructureShape) and member:
        if member not in shape.members:
            raise DefinitionError(f"{shape.name} has no member {member!r}")
        return shape.members[member]
    if isinstance(shape, ListShape) and index:
        return shape.member
    if isinstance(shape, MapShape) and key:
        return shape.value
    raise DefinitionError(f"cannot index {shape.name} ({shape.type_name}) with {token}")


def _parse_path(path: str) -> list[tuple[str, str, str]]:
    tokens = []
    position = 0
    while position < len(path):
        match = _PATH_TOKEN.match(path, position)
        if match is None:
            raise DefinitionError(f"cannot parse property path {path!r} at {path[position:]!r}")
        tokens.append((match.group(1) or "", match.group(2) or "", match.group(3) or ""))
        position = match.end()
    return tokens


class LocalExecutor:
    """Interprets pipeline definitions stored in a SageMaker endpoint (moto's, here)."""

    def __init__(
        self,
        *,
        sagemaker_client: Any,
        lambda_handlers: Mapping[str, LambdaHandler],
        trainer: Trainer,
        sleep: Callable[[float], None] = lambda _seconds: None,
        publish: Callable[[ExecutionRecord], None] = lambda _record: None,
        lambda_inputs: str = "json",
    ) -> None:
        """`publish` is called with the execution's record at each change (the local endpoint's
        `executions.publish` serves it); `lambda_inputs` is how typed values reach a Lambda
        event: "json" (numbers and booleans as JSON) or "strings" (every value as text), since
        how the service serializes them is not documented."""
        if lambda_inputs not in LAMBDA_INPUT_FORMS:
            raise ValueError(f"lambda_inputs must be one of {LAMBDA_INPUT_FORMS}")
        self._sm = sagemaker_client
        self._handlers = dict(lambda_handlers)
        self._trainer = trainer
        self._sleep = sleep
        self._publish = publish
        self._lambda_inputs = lambda_inputs
        model = _sagemaker_model()
        self._describe_training_job = model.operation_model("DescribeTrainingJob").output_shape
        self._create_training_job = model.operation_model("CreateTrainingJob").input_shape

    # -- entry point -------------------------------------------------------------------------

    def run(self, execution_arn: str) -> ExecutionRecord:
        """Run every step of the execution in dependency order; returns what happened."""
        stored = self._sm.describe_pipeline_definition_for_execution(
            PipelineExecutionArn=execution_arn
        )
        definition = json.loads(stored["PipelineDefinition"])
        overrides = self._sm.list_pipeline_parameters_for_execution(
            PipelineExecutionArn=execution_arn
        ).get("PipelineParameters", [])
        try:
            parameters = self._parameters(definition, overrides)
        except DefinitionError as err:
            # The service refuses such an execution at StartPipelineExecution; moto started it,
            # so it is reported Failed with the reason and no step runs.
            self._publish(ExecutionRecord(execution_arn, {}, "Failed", str(err)))
            raise
        record = ExecutionRecord(arn=execution_arn, parameters=parameters)
        self._variables = self._execution_variables(execution_arn)
        self._record = record
        self._properties: dict[str, dict[str, Any]] = {}
        self._branches: dict[str, bool] = {}
        nodes = self._flatten(definition.get("Steps", []), ())
        self._publish(record)
        try:
            for name in self._order(nodes):
                if record.status == "Failed":
                    break  # nothing starts after a failure; the API lists no step that did not
                self._run_node(nodes[name])
        except DefinitionError as err:
            record.status, record.failure_reason = "Failed", str(err)
            for step in record.steps:
                if step.status in ("Starting", "Executing"):
                    step.status, step.failure_reason = "Failed", str(err)
            self._publish(record)  # watched from the endpoint, the run ends as well
            raise
        if record.status == "Executing":
            record.status = "Succeeded"
        self._publish(record)
        return record

    # -- parameters and variables ---------------------------------------------------------------

    @staticmethod
    def _parameters(definition: dict[str, Any], overrides: list[dict[str, str]]) -> dict[str, Any]:
        """Every parameter's value; DefinitionError where the service would refuse the
        overrides (`pipeline.overrides`: the same rules as the operator commands)."""
        declared = {p["Name"]: p for p in definition.get("Parameters", [])}
        try:
            return effective_parameters(declared, [(o["Name"], o["Value"]) for o in overrides])
        except OverrideError as err:
            raise DefinitionError(
                f"the service would refuse this execution's overrides: {err}"
            ) from None

    def _execution_variables(self, execution_arn: str) -> dict[str, Any]:
        described = self._sm.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
        pipeline_arn = described["PipelineArn"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "PipelineExecutionId": execution_arn.rsplit("/", 1)[-1],
            "PipelineExecutionArn": execution_arn,
            "PipelineName": pipeline_arn.rsplit("/", 1)[-1],
            "PipelineArn": pipeline_arn,
            "StartDateTime": now,
            "CurrentDateTime": now,
        }

    # -- graph ------------------------------------------------------------------------------------

    def _flatten(
        self, steps: list[dict[str, Any]], gates: tuple[tuple[str, bool], ...]
    ) -> dict[str, _Node]:
        nodes: dict[str, _Node] = {}
        for step in steps:
            name = step["Name"]
            nodes[name] = _Node(step, gates)
            if step["Type"] == "Condition":
                arguments = step.get("Arguments", {})
                nodes.update(self._flatten(arguments.get("IfSteps", []), (*gates, (name, True))))
                nodes.update(self._flatten(arguments.get("ElseSteps", []), (*gates, (name, False))))
        return nodes

    @staticmethod
    def _dependencies(node: _Node) -> set[str]:
        found = set(node.step.get("DependsOn", []))
        found.update(gate for gate, _branch in node.gates)

        def visit(value: Any) -> None:
            if isinstance(value, dict):
                get = value.get("Get")
                if isinstance(get, str) and (match := _STEP_REF.match(get)):
                    found.add(match.group(1))
                for item in value.values():
                    visit(item)
            elif isinstance(value, list):
                for item in value:
                    visit(item)

        step = node.step
        if step["Type"] == "Condition":
            visit(step.get("Arguments", {}).get("Conditions", []))
        else:
            visit(step.get("Arguments", {}))
        return found

    def _order(self, nodes: dict[str, _Node]) -> list[str]:
        """Topological order; ties keep the definition's order so runs are repeatable."""
        dependencies = {name: self._dependencies(node) for name, node in nodes.items()}
        for name, needs in dependencies.items():
            missing = sorted(needs - set(nodes))
            if missing:
                raise DefinitionError(f"step {name} depends on undefined step(s) {missing}")
        return dependency_order(dependencies, "steps")

    # -- steps ------------------------------------------------------------------------------------

    def _run_node(self, node: _Node) -> None:
        """Run one step (with its retry policies); a failure fails the execution."""
        step = node.step
        taken = all(self._branches.get(gate) is branch for gate, branch in node.gates)
        upstream_ok = all(
            self._succeeded(dep)
            for dep in self._dependencies(node)
            if dep not in {gate for gate, _ in node.gates}
        )
        if not (taken and upstream_ok):
            return  # not started: the API does not list it
        record = StepRecord(
            name=step["Name"],
            step_type=step["Type"],
            display_name=str(step.get("DisplayName", "")),
            description=str(step.get("Description", "")),
            start_time=datetime.now(UTC),
        )
        self._record.steps.append(record)
        runner = {
            "Lambda": self._run_lambda,
            "Training": self._run_training,
            "Condition": self._run_condition,
        }.get(step["Type"])
        if runner is None:
            raise DefinitionError(
                f"step {record.name}: step type {step['Type']!r} is not supported"
            )
        policies = step.get("RetryPolicies", [])
        if policies and step["Type"] not in RETRYABLE_STEP_TYPES:
            raise DefinitionError(
                f"step {record.name}: RetryPolicies are supported on job steps only "
                f"(here: {', '.join(sorted(RETRYABLE_STEP_TYPES))}), not on a {step['Type']} step"
            )
        while True:
            record.attempts += 1
            record.status = "Executing"
            self._publish(self._record)
            try:
                record.outputs = runner(step, record)
            except StepFailure as failure:
                policy = next(
                    (p for p in policies if failure.exception_type in p.get("ExceptionType", [])),
                    None,
                )
                # MaxAttempts counts retries, after the first attempt (the SageMaker guide:
                # "the maximum number of retry attempts").
                if policy is not None and record.attempts <= policy.get("MaxAttempts", 0):
                    self._sleep(
                        policy.get("IntervalSeconds", 1)
                        * policy.get("BackoffRate", 1.0) ** (record.attempts - 1)
                    )
                    continue
                record.status = "Failed"
                record.failure_reason = str(failure)
                record.end_time = datetime.now(UTC)
                self._record.status = "Failed"
                self._record.failure_reason = f"Step {record.name} failed: {failure}"
                self._publish(self._record)
                return
            record.status = "Succeeded"
            record.end_time = datetime.now(UTC)
            self._publish(self._record)
            return

    def _succeeded(self, name: str) -> bool:
        return any(r.name == name and r.status == "Succeeded" for r in self._record.steps)

    def _record_of(self, name: str) -> StepRecord:
        try:
            return self._record.step(name)
        except KeyError:
            raise DefinitionError(f"step {name} did not run in {self._record.arn}") from None

    def _run_lambda(self, step: dict[str, Any], record: StepRecord) -> dict[str, Any]:
        arn = self.evaluate(step["FunctionArn"])
        handler = self._handlers.get(arn)
        if handler is None:
            raise DefinitionError(f"step {record.name}: no deployed function with ARN {arn}")
        event = self.evaluate(step.get("Arguments", {}))
        if self._lambda_inputs == "strings":
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
            outputs[name] = _convert(name, declared.get("OutputType", "String"), result[name])
        record.metadata["Lambda"]["OutputParameters"] = [
            {"Name": name, "Value": _text(value)} for name, value in outputs.items()
        ]
        return outputs

    def _run_training(self, step: dict[str, Any], record: StepRecord) -> dict[str, Any]:
        request = self.evaluate(step.get("Arguments", {}))
        # Each attempt is a new job with a new random suffix.
        try:
            name = job_name(self._variables["PipelineExecutionId"], record.name)
        except ValueError as err:
            raise DefinitionError(str(err)) from None
        request = {"TrainingJobName": name, **request}
        report = ParamValidator().validate(request, self._create_training_job)
        if report.has_errors():
            raise DefinitionError(
                f"step {record.name}: not a valid CreateTrainingJob request:\n"
                f"{report.generate_report()}"
            )
        record.arguments = request
        try:
            described = self._trainer.train(request)
        except ClientError as err:  # CreateTrainingJob itself failed
            raise StepFailure(
                f"{type(err).__name__}: {err}", exception_type=_call_failure_type(err)
            ) from err
        self._properties[record.name] = described
        if described.get("TrainingJobArn"):
            record.metadata = {"TrainingJob": {"Arn": described["TrainingJobArn"]}}
        if described.get("TrainingJobStatus") != "Completed":
            reason = str(described.get("FailureReason", "training job did not complete"))
            error_name = reason.partition(":")[0]
            raise StepFailure(reason, exception_type=JOB_FAILURE_TYPES.get(error_name))
        return {}

    def _run_condition(self, step: dict[str, Any], record: StepRecord) -> dict[str, Any]:
        conditions = step.get("Arguments", {}).get("Conditions", [])
        outcome = all(self._condition(c) for c in conditions)
        self._branches[record.name] = outcome
        record.metadata = {"Condition": {"Outcome": "True" if outcome else "False"}}
        return {"Outcome": outcome}

    def _condition(self, condition: dict[str, Any]) -> bool:
        kind = condition["Type"]
        if kind == "Not":
            return not self._condition(condition["Condition"])
        if kind == "Or":
            return any(self._condition(c) for c in condition["Conditions"])
        if kind == "In":
            return self.evaluate(condition["QueryValue"]) in self.evaluate(condition["Values"])
        left = self.evaluate(condition["LeftValue"])
        right = self.evaluate(condition["RightValue"])
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

    # -- expressions ------------------------------------------------------------------------------

    def evaluate(self, value: Any) -> Any:
        """Resolve every expression inside a value of the definition."""
        if isinstance(value, list):
            return [self.evaluate(item) for item in value]
        if not isinstance(value, dict):
            return value
        if "Get" in value and len(value) == 1:
            return self._get(value["Get"])
        if "Std:Join" in value and len(value) == 1:
            join = value["Std:Join"]
            return str(join["On"]).join(_text(self.evaluate(v)) for v in join["Values"])
        functions = [key for key in value if key.startswith("Std:")]
        if functions:
            raise DefinitionError(f"expression function {functions[0]} is not supported")
        return {key: self.evaluate(item) for key, item in value.items()}

    def _get(self, path: str) -> Any:
        head, _, rest = path.partition(".")
        if head == "Parameters":
            if rest not in self._record.parameters:
                raise DefinitionError(f"Get {path}: no parameter {rest!r} is declared")
            return self._record.parameters[rest]
        if head == "Execution":
            if rest not in EXECUTION_VARIABLES:
                raise DefinitionError(f"Get {path}: unknown execution variable {rest!r}")
            return self._variables[rest]
        match = _STEP_REF.match(path)
        if head != "Steps" or match is None:
            raise DefinitionError(f"Get {path}: not a parameter, execution variable or step")
        step_name, prop = match.groups()
        record = self._record_of(step_name)
        if record.status != "Succeeded":
            raise DefinitionError(f"Get {path}: step {step_name} has not succeeded")
        if record.step_type == "Lambda":
            output = _OUTPUT_REF.match(prop)
            if output is None or output.group(1) not in record.outputs:
                raise DefinitionError(f"Get {path}: step {step_name} declares no such output")
            return record.outputs[output.group(1)]
        if record.step_type == "Training":
            return self._property(
                path, self._describe_training_job, self._properties[step_name], prop
            )
        raise DefinitionError(f"Get {path}: {record.step_type} steps have no properties")

    @staticmethod
    def _property(path: str, shape: Shape, response: Any, prop: str) -> Any:
        value = response
        for token in _parse_path(prop):
            try:
                shape = _shape_child(shape, token)
            except DefinitionError as err:
                raise DefinitionError(f"Get {path}: {err} in the real API response") from None
            member, index, key = token
            try:
                value = value[member or key] if (member or key) else value[int(index)]
            except (KeyError, IndexError, TypeError):
                raise DefinitionError(f"Get {path}: the job's response has no {prop}") from None
        return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _convert(name: str, kind: str, value: Any) -> Any:
    """Convert a Lambda step's output to its declared OutputType."""
    text = _text(value) if not isinstance(value, str) else value
    try:
        if kind == "String":
            return text
        if kind == "Integer":
            return int(text)
        if kind == "Float":
            return float(text)
        if kind == "Boolean":
            if text.lower() not in {"true", "false"}:
                raise ValueError(text)
            return text.lower() == "true"
    except ValueError:
        raise DefinitionError(f"{name}: {value!r} is not a valid {kind}") from None
    raise DefinitionError(f"{name}: type {kind!r} is not supported")
