"""Run a deployed Step Functions definition locally: a small interpreter for the subset of the
Amazon States Language (JSONPath) that the serving state machine uses.

moto 5.2.5 can execute state machines, but its AWS SDK integrations cannot serialize a response
holding a timestamp (DescribeModelPackage's CreationTime ends the state in States.Runtime) and
name errors after the lowercase service (`bedrock.ResourceNotFoundException`, where Step Functions
documents `Bedrock.ResourceNotFoundException`). So the rehearsal interprets the definition read
from cdk.out itself, and refuses anything outside the subset with the state's name:

- states: Task (`arn:aws:states:::aws-sdk:<service>:<action>` and `arn:aws:states:::sns:publish`),
  Pass, Choice, Wait, Succeed, Fail, an inline Map (one item at a time); fields Parameters,
  ResultSelector, ResultPath, Retry, Catch, ItemsPath, ItemSelector, ItemProcessor;
- paths `$`, `$.a.b`, `$.List[?(@.Key == 'text')].Field`, `$$.State.EnteredTime`,
  `$$.Map.Item.Value`; intrinsics States.Format, States.Hash, States.JsonMerge (shallow),
  States.JsonToString, States.ArrayLength, States.ArrayGetItem (pipeline/rehearsal/state_data.py);
- Choice rules StringEquals, StringEqualsPath, NumericEquals, IsPresent, Not, And, Or.

AWS SDK parameters are the API's members with the first letter capitalised, and so are the
answers (timestamps as ISO 8601 text); the calls go through botocore to the local endpoint. Wait
states and Retry intervals do not sleep: they advance `clock` (the stand-in Bedrock's), so a wait
of minutes passes at once while the stand-in's statuses move as if it had.
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from botocore.model import Shape

from pipeline.rehearsal.execution_record import DefinitionError
from pipeline.rehearsal.state_data import StatesError, fill, matches, put, required

SDK = "arn:aws:states:::aws-sdk:"
SNS_PUBLISH = "arn:aws:states:::sns:publish"
MAX_TRANSITIONS = 10_000


@dataclass
class Execution:
    """How a run ended and the states it went through (in order)."""

    status: str  # SUCCEEDED or FAILED
    output: Any = None
    error: str | None = None
    cause: str | None = None
    states: list[str] = field(default_factory=list)


class Interpreter:
    """Runs a definition with `session`'s clients. `clock.advance(seconds)` stands for every wait;
    `on_wait(state_name)`, when given, runs at each Wait state (tests change the world there)."""

    def __init__(
        self,
        definition: dict[str, Any],
        session: Any,
        clock: Any,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.definition = definition
        self.session = session
        self.clock = clock
        self.on_wait = on_wait or (lambda _name: None)
        self._clients: dict[str, Any] = {}

    def run(self, payload: Any) -> Execution:
        """Run the definition from StartAt with `payload` as the input."""
        execution = Execution(status="RUNNING")
        context = {"Execution": {"Id": f"local:{uuid.uuid4()}", "Input": payload}, "State": {}}
        data, name = payload, self.definition["StartAt"]
        for _ in range(MAX_TRANSITIONS):
            state = self.definition["States"][name]
            execution.states.append(name)
            started = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(
                seconds=self.clock.now()
            )
            context["State"] = {"Name": name, "EnteredTime": started.isoformat()}
            try:
                data, following = self._step(name, state, data, context)
            except StatesError as error:
                data, following = self._catch(state, data, error)
                if following is None:
                    execution.status, execution.error, execution.cause = (
                        "FAILED",
                        error.error,
                        error.cause,
                    )
                    return execution
            if following is None:
                if state["Type"] == "Fail":
                    execution.status = "FAILED"
                    execution.error = state.get("Error")
                    execution.cause = state.get("Cause") or (
                        required(state["CausePath"], data, context)
                        if "CausePath" in state
                        else None
                    )
                else:
                    execution.status, execution.output = "SUCCEEDED", data
                return execution
            name = following
        raise DefinitionError(f"more than {MAX_TRANSITIONS} transitions: a loop that never ends?")

    def _step(
        self, name: str, state: dict[str, Any], data: Any, context: dict[str, Any]
    ) -> tuple[Any, str | None]:
        kind = state["Type"]
        unsupported = set(state) - {
            "Type", "Next", "End", "Comment", "Parameters", "ResultSelector", "ResultPath",
            "Resource", "Retry", "Catch", "Choices", "Default", "Seconds", "Error", "Cause",
            "CausePath", "ItemsPath", "ItemSelector", "ItemProcessor", "MaxConcurrency",
        }  # fmt: skip
        if unsupported:
            raise DefinitionError(f"state {name}: {sorted(unsupported)} outside the subset")
        if kind == "Pass":
            result = fill(state["Parameters"], data, context) if "Parameters" in state else data
            return put(data, state.get("ResultPath", "$"), result), state.get("Next")
        if kind == "Choice":
            for rule in state["Choices"]:
                if matches(rule, data, context):
                    return data, rule["Next"]
            if "Default" not in state:
                raise StatesError("States.NoChoiceMatched", f"no choice of {name} matched")
            return data, state["Default"]
        if kind == "Wait":
            self.on_wait(name)
            self.clock.advance(float(state["Seconds"]))
            return data, state["Next"]
        if kind in ("Succeed", "Fail"):
            return data, None
        if kind in ("Task", "Map"):
            if kind == "Map":
                result = self._map(name, state, data, context)
            else:
                result = self._task_with_retries(name, state, data, context)
            if "ResultSelector" in state:
                result = fill(state["ResultSelector"], result, context)
            return put(data, state.get("ResultPath", "$"), result), state.get("Next")
        raise DefinitionError(f"state {name}: type {kind} is outside the supported subset")

    def _map(self, name: str, state: dict[str, Any], data: Any, context: dict[str, Any]) -> Any:
        """An inline Map, one item after another (as MaxConcurrency 1 runs it)."""
        processor = state["ItemProcessor"]
        if processor.get("ProcessorConfig", {}).get("Mode", "INLINE") != "INLINE":
            raise DefinitionError(f"state {name}: only an INLINE Map is in the subset")
        items = required(state["ItemsPath"], data, context)
        results = []
        for index, item in enumerate(items):
            item_context = {**context, "Map": {"Item": {"Index": index, "Value": item}}}
            payload = (
                fill(state["ItemSelector"], data, item_context) if "ItemSelector" in state else item
            )
            inner = Interpreter(processor, self.session, self.clock, self.on_wait)
            inner._clients = self._clients
            execution = inner.run(payload)
            if execution.status != "SUCCEEDED":
                raise StatesError(execution.error or "States.TaskFailed", execution.cause or "")
            results.append(execution.output)
        return results

    def _task_with_retries(
        self, name: str, state: dict[str, Any], data: Any, context: dict[str, Any]
    ) -> Any:
        parameters = fill(state.get("Parameters", {}), data, context)
        attempts: dict[int, int] = {}
        while True:
            try:
                return self._call(name, state["Resource"], parameters)
            except StatesError as error:
                retry = next(
                    (
                        (i, r)
                        for i, r in enumerate(state.get("Retry", []))
                        if _error_matches(r["ErrorEquals"], error.error)
                    ),
                    None,
                )
                if retry is None:
                    raise
                index, rule = retry
                attempts[index] = attempts.get(index, 0) + 1
                if attempts[index] > rule.get("MaxAttempts", 3):
                    raise
                interval = rule.get("IntervalSeconds", 1) * rule.get("BackoffRate", 2.0) ** (
                    attempts[index] - 1
                )
                self.clock.advance(interval)

    def _catch(
        self, state: dict[str, Any], data: Any, error: StatesError
    ) -> tuple[Any, str | None]:
        for catcher in state.get("Catch", []):
            if _error_matches(catcher["ErrorEquals"], error.error):
                failure = {"Error": error.error, "Cause": error.cause}
                return put(data, catcher.get("ResultPath", "$"), failure), catcher["Next"]
        return data, None

    def _call(self, name: str, resource: str, parameters: dict[str, Any]) -> Any:
        if resource == SNS_PUBLISH:
            service, action = "sns", "publish"
        elif resource.startswith(SDK):
            service, action = resource.removeprefix(SDK).split(":")
        else:
            raise DefinitionError(f"state {name}: resource {resource} is outside the subset")
        client = self._clients.get(service) or self.session.client(service)
        self._clients[service] = client
        operation = client.meta.service_model.operation_model(action[0].upper() + action[1:])
        request = to_api(operation.input_shape, parameters)
        try:
            response = getattr(client, _snake(action))(**request)
        except ClientError as error:
            service_id = client.meta.service_model.service_id.replace(" ", "")
            code = error.response["Error"]["Code"]
            raise StatesError(f"{service_id}.{code}", str(error)) from None
        response.pop("ResponseMetadata", None)
        return to_states(operation.output_shape, response) if operation.output_shape else {}


def _error_matches(names: list[str], error: str) -> bool:
    if error in names:
        return True
    if "States.ALL" in names and error != "States.Runtime":
        return True
    return "States.TaskFailed" in names and not error.startswith("States.")


def _pascal(name: str) -> str:
    return name[0].upper() + name[1:]


def to_api(shape: Shape | None, value: Any) -> Any:
    """Step Functions' capitalised parameters as botocore's members (map keys are data)."""
    if shape is None:
        return value
    if shape.type_name == "structure":
        members = {_pascal(n): (n, s) for n, s in shape.members.items()}
        unknown = set(value) - set(members)
        if unknown:
            raise StatesError("States.Runtime", f"{shape.name} has no member(s) {sorted(unknown)}")
        return {members[k][0]: to_api(members[k][1], v) for k, v in value.items()}
    if shape.type_name == "list":
        return [to_api(shape.member, item) for item in value]
    if shape.type_name == "map":
        return {k: to_api(shape.value, v) for k, v in value.items()}
    return value


def to_states(shape: Shape | None, value: Any) -> Any:
    """A botocore answer as Step Functions gives it: capitalised members, timestamps as text."""
    if shape is None:
        return value
    if shape.type_name == "structure":
        members = shape.members
        return {_pascal(k): to_states(members.get(k), v) for k, v in value.items()}
    if shape.type_name == "list":
        return [to_states(shape.member, item) for item in value]
    if shape.type_name == "map":
        return {k: to_states(shape.value, v) for k, v in value.items()}
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return value


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
