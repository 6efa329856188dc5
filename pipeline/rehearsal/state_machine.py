"""Run a deployed Step Functions definition locally: a small interpreter for the subset of the
Amazon States Language (JSONPath) that the serving state machine uses.

moto 5.2.5 can execute state machines, but its AWS SDK integrations cannot serialize a response
holding a timestamp (DescribeModelPackage's CreationTime ends the state in States.Runtime) and
name errors after the lowercase service (`bedrock.ResourceNotFoundException`, where Step Functions
documents `Bedrock.ResourceNotFoundException`). So the rehearsal interprets the definition read
from cdk.out itself, and refuses anything outside the subset with the state's name:

- states: Task (`arn:aws:states:::aws-sdk:<service>:<action>` and `arn:aws:states:::sns:publish`),
  Pass, Choice, Wait, Succeed, Fail; fields Parameters, ResultSelector, ResultPath, Retry, Catch;
- paths `$`, `$.a.b`, `$$.State.EnteredTime`, `$$.Execution.Id`; intrinsics States.Format,
  States.Hash, States.JsonMerge (shallow), States.JsonToString;
- Choice rules StringEquals, IsPresent, Not, And, Or.

AWS SDK parameters are the API's members with the first letter capitalised, and so are the
answers (timestamps as ISO 8601 text); the calls go through botocore to the local endpoint. Wait
states and Retry intervals do not sleep: they advance `clock` (the stand-in Bedrock's), so a wait
of minutes passes at once while the stand-in's statuses move as if it had.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from botocore.model import Shape

from pipeline.rehearsal.execution_record import DefinitionError

SDK = "arn:aws:states:::aws-sdk:"
SNS_PUBLISH = "arn:aws:states:::sns:publish"
MAX_TRANSITIONS = 10_000


class StatesError(Exception):
    """An error raised by a state, as Step Functions names it (`Error`, `Cause`)."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error, self.cause = error, cause


@dataclass
class Execution:
    """How a run ended and the states it went through (in order)."""

    status: str  # SUCCEEDED or FAILED
    output: Any = None
    error: str | None = None
    cause: str | None = None
    states: list[str] = field(default_factory=list)


class _Missing:
    pass


MISSING = _Missing()


def read_path(path: str, data: Any, context: dict[str, Any]) -> Any:
    """The value at a JSONPath of the subset; MISSING when a field is absent."""
    if path.startswith("$$"):
        data, path = context, path[1:]
    if path == "$":
        return data
    if not path.startswith("$."):
        raise DefinitionError(f"path {path!r} is outside the supported subset")
    for part in path[2:].split("."):
        if not isinstance(data, dict) or part not in data:
            return MISSING
        data = data[part]
    return data


def _required(path: str, data: Any, context: dict[str, Any]) -> Any:
    value = read_path(path, data, context)
    if value is MISSING:
        raise StatesError("States.Runtime", f"the JSONPath {path} could not be found in the input")
    return value


_TOKEN = re.compile(
    r"\s*('(?:\\.|[^'\\])*'|States\.[A-Za-z]+\(|\$\$?[\w.]*|-?\d+(?:\.\d+)?|true|false|\)|,)"
)


def intrinsic(text: str, data: Any, context: dict[str, Any]) -> Any:
    """Evaluate an intrinsic function call such as `States.Format('v{}', $.a)`."""
    tokens = list(_TOKEN.findall(text))
    if "".join(tokens).replace(" ", "") != text.replace(" ", ""):
        raise DefinitionError(f"cannot read the intrinsic {text!r}")
    value, end = _call(tokens, 0, data, context)
    if end != len(tokens):
        raise DefinitionError(f"trailing text in the intrinsic {text!r}")
    return value


def _call(tokens: list[str], at: int, data: Any, context: dict[str, Any]) -> tuple[Any, int]:
    token = tokens[at].strip()
    if token.startswith("States."):
        name, args, at = token[:-1], [], at + 1
        while tokens[at].strip() != ")":
            value, at = _call(tokens, at, data, context)
            args.append(value)
            if tokens[at].strip() == ",":
                at += 1
        return _apply(name, args), at + 1
    if token.startswith("'"):
        return re.sub(r"\\(.)", r"\1", token[1:-1]), at + 1
    if token.startswith("$"):
        return _required(token, data, context), at + 1
    if token in ("true", "false"):
        return token == "true", at + 1  # noqa: S105 - a JSON boolean, not a secret
    return json.loads(token), at + 1


def _apply(name: str, args: list[Any]) -> Any:
    if name == "States.Format":
        template, values = args[0], [v if isinstance(v, str) else json.dumps(v) for v in args[1:]]
        parts = template.split("{}")
        if len(parts) != len(values) + 1:
            raise StatesError("States.Runtime", f"{template!r} takes {len(parts) - 1} values")
        return "".join(p + (values[i] if i < len(values) else "") for i, p in enumerate(parts))
    if name == "States.Hash":
        text, algorithm = args
        if algorithm != "SHA-256":
            raise DefinitionError(f"States.Hash with {algorithm} is outside the subset")
        return hashlib.sha256(str(text).encode()).hexdigest()
    if name == "States.JsonMerge":
        first, second, deep = args
        if deep:
            raise DefinitionError("States.JsonMerge deep merge is outside the subset")
        return {**first, **second}
    if name == "States.JsonToString":
        return json.dumps(args[0], separators=(",", ":"))
    raise DefinitionError(f"intrinsic {name} is outside the supported subset")


def fill(template: Any, data: Any, context: dict[str, Any]) -> Any:
    """A Parameters or ResultSelector template with its `.$` fields evaluated."""
    if isinstance(template, list):
        return [fill(item, data, context) for item in template]
    if not isinstance(template, dict):
        return template
    result: dict[str, Any] = {}
    for key, value in template.items():
        if key.endswith(".$"):
            result[key[:-2]] = (
                intrinsic(value, data, context)
                if value.startswith("States.")
                else _required(value, data, context)
            )
        else:
            result[key] = fill(value, data, context)
    return result


def _put(data: Any, path: str | None, result: Any) -> Any:
    if path is None:
        return data
    if path == "$":
        return result
    if not path.startswith("$."):
        raise DefinitionError(f"ResultPath {path!r} is outside the supported subset")
    merged = json.loads(json.dumps(data))
    target = merged
    parts = path[2:].split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = result
    return merged


def matches(rule: dict[str, Any], data: Any, context: dict[str, Any]) -> bool:
    """Whether a Choice rule of the subset matches."""
    if "Not" in rule:
        return not matches(rule["Not"], data, context)
    if "And" in rule:
        return all(matches(r, data, context) for r in rule["And"])
    if "Or" in rule:
        return any(matches(r, data, context) for r in rule["Or"])
    value = read_path(rule["Variable"], data, context)
    if "IsPresent" in rule:
        return (value is not MISSING) == bool(rule["IsPresent"])
    if value is MISSING:
        raise StatesError("States.Runtime", f"Invalid path {rule['Variable']}: not in the input")
    if "StringEquals" in rule:
        return isinstance(value, str) and value == rule["StringEquals"]
    raise DefinitionError(f"Choice rule {sorted(rule)} is outside the supported subset")


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
                        _required(state["CausePath"], data, context)
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
            "CausePath",
        }  # fmt: skip
        if unsupported:
            raise DefinitionError(f"state {name}: {sorted(unsupported)} outside the subset")
        if kind == "Pass":
            result = fill(state["Parameters"], data, context) if "Parameters" in state else data
            return _put(data, state.get("ResultPath", "$"), result), state.get("Next")
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
        if kind == "Task":
            result = self._task_with_retries(name, state, data, context)
            if "ResultSelector" in state:
                result = fill(state["ResultSelector"], result, context)
            return _put(data, state.get("ResultPath", "$"), result), state.get("Next")
        raise DefinitionError(f"state {name}: type {kind} is outside the supported subset")

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
                return _put(data, catcher.get("ResultPath", "$"), failure), catcher["Next"]
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
