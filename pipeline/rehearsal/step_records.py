"""Step records of rehearsed executions, served by the local endpoint as the API reports them.

moto 5.2.5 marks an execution Succeeded the moment it starts and does not implement
`ListPipelineExecutionSteps`. The local executor publishes each change of an execution it runs
to an `ExecutionLog`; the local endpoint's `StepRoute` (a WSGI layer in front of moto, installed
by `pipeline.rehearsal.endpoint.LocalEndpoint`) then answers, over HTTP like any other call:

- `ListPipelineExecutionSteps`, from the log: the steps that started, newest first unless
  `SortOrder=Ascending`, paged by `MaxResults` (1 to 100) and `NextToken`;
- `DescribePipelineExecution` and `ListPipelineExecutions`, moto's answers with the status and
  failure reason of the log for the executions the executor has run (others pass unchanged).

Jobs are named as the service names them (`job_name`). Every published step is checked
against botocore's `PipelineExecutionStep` shape and its `StepStatus` enum, so a record the API
could not return fails the rehearsal.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import secrets
import string
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import botocore.session
from botocore.validate import ParamValidator

if TYPE_CHECKING:
    from pipeline.rehearsal.execution_record import ExecutionRecord, StepRecord

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
_JSON = "application/x-amz-json-1.1"
MAX_RESULTS = 100  # botocore: PipelineExecutionStepList max 100
# botocore's TrainingJobName: 1 to 63 characters, this pattern.
_JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
JOB_SUFFIX_LENGTH = 10
_SUFFIX_ALPHABET = string.ascii_letters + string.digits


def job_name(execution_id: str, step_name: str) -> str:
    """A job name as SageMaker Pipelines forms it: `pipelines-<execution id>-<step name>-<10
    random letters and digits>`, a new suffix per attempt (names seen in the console and in
    public reports, e.g. `pipelines-kytlemm1lvpq-PreprocessingStep-cIpzShs3Qp`).

    How the service fits a long step name into TrainingJobName's 63 characters, or a step name
    with `_` into its pattern, is not documented: a name that would not fit is refused
    (decision 0013) rather than shortened in a way the service might not.
    """
    suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(JOB_SUFFIX_LENGTH))
    name = f"pipelines-{execution_id}-{step_name}-{suffix}"
    if len(name) > 63 or not _JOB_NAME.fullmatch(name):
        room = 63 - len(f"pipelines-{execution_id}--{suffix}")
        raise ValueError(
            f"step {step_name}: its job would be named {name!r}, which is not a valid "
            f"TrainingJobName (at most 63 letters, digits and hyphens): use a step name of at "
            f"most {room} letters, digits and hyphens"
        )
    return name


@functools.cache
def _shapes() -> tuple[Any, frozenset[str], frozenset[str]]:
    model = botocore.session.get_session().get_service_model("sagemaker")
    return (
        model.shape_for("PipelineExecutionStep"),
        frozenset(model.shape_for("StepStatus").enum),
        frozenset(model.shape_for("PipelineExecutionStatus").enum),
    )


def api_step(step: StepRecord) -> dict[str, Any]:
    """One step record in the shape of ListPipelineExecutionSteps' PipelineExecutionStep."""
    shape, statuses, _ = _shapes()
    if step.status not in statuses:
        raise ValueError(f"step {step.name}: {step.status!r} is not one of {sorted(statuses)}")
    entry: dict[str, Any] = {
        "StepName": step.name,
        "StepStatus": step.status,
        "AttemptCount": step.attempts,
        "Metadata": copy.deepcopy(step.metadata),
    }
    for key, value in (
        ("StepDisplayName", step.display_name),
        ("StepDescription", step.description),
        ("StartTime", step.start_time),
        ("EndTime", step.end_time),
        ("FailureReason", step.failure_reason[:1024]),  # botocore: FailureReason max 1024
    ):
        if value:
            entry[key] = value
    report = ParamValidator().validate(entry, shape)
    if report.has_errors():
        raise ValueError(f"step {step.name}: not an API step record:\n{report.generate_report()}")
    return entry


class ExecutionLog:
    """What the executor has published, per execution ARN (thread-safe snapshots)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executions: dict[str, dict[str, Any]] = {}

    def publish(self, record: ExecutionRecord) -> None:
        _, _, execution_statuses = _shapes()
        if record.status not in execution_statuses:
            raise ValueError(f"{record.status!r} is not a PipelineExecutionStatus")
        steps = [api_step(s) for s in record.steps]
        with self._lock:
            self._executions[record.arn] = {
                "status": record.status,
                "failure_reason": record.failure_reason[:1300],  # botocore: max 1300
                "steps": steps,
            }

    def clear(self) -> None:
        with self._lock:
            self._executions.clear()

    def get(self, arn: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._executions.get(arn)
            return copy.deepcopy(found) if found is not None else None


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()  # the JSON protocol's timestamps: epoch seconds
    raise TypeError(type(value).__name__)


def _answer(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body, default=_encode).encode()
    start_response(
        status,
        [
            ("Content-Type", _JSON),
            ("Content-Length", str(len(data))),
            ("x-amzn-RequestId", "local-steps"),
        ],
    )
    return [data]


class StepRoute:
    """The WSGI layer that serves the log in front of moto (see the module docstring)."""

    def __init__(self, app: WsgiApp, log: ExecutionLog) -> None:
        self.app = app
        self.log = log

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target == "SageMaker.ListPipelineExecutionSteps":
            return self._list_steps(environ, start_response)
        if target in ("SageMaker.DescribePipelineExecution", "SageMaker.ListPipelineExecutions"):
            return self._with_logged_status(environ, start_response)
        return self.app(environ, start_response)

    def _list_steps(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length) or b"{}")
        logged = self.log.get(str(request.get("PipelineExecutionArn", "")))
        steps = logged["steps"] if logged else []  # started, not yet run: no step has started
        if request.get("SortOrder", "Descending") == "Descending":
            steps.reverse()
        limit = int(request.get("MaxResults", MAX_RESULTS))
        if not 1 <= limit <= MAX_RESULTS:
            return _answer(
                start_response,
                "400 Bad Request",
                {"__type": "ValidationException", "message": f"MaxResults {limit}: 1 to 100"},
            )
        offset = int(request.get("NextToken") or 0)
        page: dict[str, Any] = {"PipelineExecutionSteps": steps[offset : offset + limit]}
        if offset + limit < len(steps):
            page["NextToken"] = str(offset + limit)
        return _answer(start_response, "200 OK", page)

    def _with_logged_status(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        caught: dict[str, Any] = {}

        def keep(status: str, headers: list[tuple[str, str]], *_exc: Any) -> Any:
            caught.update(status=status, headers=headers)
            return lambda _data: None

        body = b"".join(self.app(environ, keep))
        if not caught["status"].startswith("200"):
            start_response(caught["status"], caught["headers"])
            return [body]
        answer = json.loads(body)
        for execution in [answer, *answer.get("PipelineExecutionSummaries", [])]:
            logged = self.log.get(str(execution.get("PipelineExecutionArn", "")))
            if logged is None:
                continue
            execution["PipelineExecutionStatus"] = logged["status"]
            key = "FailureReason" if execution is answer else "PipelineExecutionFailureReason"
            execution[key] = logged["failure_reason"]
        return _answer(start_response, "200 OK", answer)
