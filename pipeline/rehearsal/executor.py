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

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pipeline.overrides import OverrideError
from pipeline.overrides import effective as effective_parameters
from pipeline.rehearsal.execution_record import (
    DefinitionError,
    ExecutionRecord,
    StepFailure,
    StepRecord,
    Trainer,
)
from pipeline.rehearsal.graph import STEP_REF, Node, dependencies, flatten, step_order
from pipeline.rehearsal.properties import as_text, property_value, sagemaker_model
from pipeline.rehearsal.step_types import (
    LAMBDA_INPUT_FORMS,
    LambdaHandler,
    run_condition,
    run_lambda,
    run_training,
)

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
_OUTPUT_REF = re.compile(r"^OutputParameters\['([^']+)'\]$")


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
        model = sagemaker_model()
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
        nodes = flatten(definition.get("Steps", []))
        self._publish(record)
        try:
            for name in step_order(nodes):
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

    # -- steps ------------------------------------------------------------------------------------

    def _run_node(self, node: Node) -> None:
        """Run one step (with its retry policies); a failure fails the execution."""
        step = node.step
        taken = all(self._branches.get(gate) is branch for gate, branch in node.gates)
        upstream_ok = all(
            self._succeeded(dep)
            for dep in dependencies(node)
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
        runner = self._runner(step["Type"])
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

    def _runner(
        self, step_type: str
    ) -> Callable[[dict[str, Any], StepRecord], dict[str, Any]] | None:
        """The function that runs a step of this type, bound to this execution's state."""
        if step_type == "Lambda":
            return lambda step, record: run_lambda(
                step,
                record,
                evaluate=self.evaluate,
                handlers=self._handlers,
                lambda_inputs=self._lambda_inputs,
            )
        if step_type == "Training":
            return lambda step, record: run_training(
                step,
                record,
                evaluate=self.evaluate,
                execution_id=self._variables["PipelineExecutionId"],
                request_shape=self._create_training_job,
                trainer=self._trainer,
                properties=self._properties,
            )
        if step_type == "Condition":
            return lambda step, record: run_condition(
                step, record, evaluate=self.evaluate, branches=self._branches
            )
        return None

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
            return str(join["On"]).join(as_text(self.evaluate(v)) for v in join["Values"])
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
        match = STEP_REF.match(path)
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
            return property_value(
                path, self._describe_training_job, self._properties[step_name], prop
            )
        raise DefinitionError(f"Get {path}: {record.step_type} steps have no properties")
