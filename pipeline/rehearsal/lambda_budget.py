"""Run a deployed Lambda handler in process under its deployed budget.

The rehearsal calls handlers in this process (moto's Lambda needs Docker), so without this a
handler could take any time. Here each call gets:

- the function's timeout as a wall-clock limit: the handler runs in a worker thread and the call
  fails with Lambda's own message ("Task timed out after 600.00 seconds") once the timeout has
  passed. Python cannot stop a thread, so a timed-out handler's thread is abandoned (daemon) and
  its late result is dropped, as Lambda drops the work of a frozen sandbox;
- a context object with the attributes of the Python runtime's `LambdaContext`, whose
  `get_remaining_time_in_millis()` counts down from the timeout.

The timeout and memory size are read from the deployed function (`GetFunctionConfiguration`,
which the local stack created from the synthesized template), never repeated here. Memory is
not enforced in process; `benchmarks/bench_lambda_budget.py` measures the peak resident set of
the largest inputs against it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

LambdaHandler = Callable[[dict[str, Any], Any], Any]


class FunctionTimedOut(Exception):
    """The handler ran past the function's timeout."""


@dataclass(frozen=True)
class Budget:
    """A deployed function's limits (its Timeout and MemorySize)."""

    timeout_seconds: float
    memory_mb: int


def event_as_strings(value: Any) -> Any:
    """Every scalar of an event as text, as a service that sent typed parameters as strings
    would (how it serializes them is not documented; the rehearsal can run both forms)."""
    if isinstance(value, dict):
        return {key: event_as_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [event_as_strings(item) for item in value]
    if isinstance(value, bool):
        return "true" if value else "false"  # the pipeline's JSON literals
    return value if isinstance(value, str) or value is None else str(value)


def budget_of(lambda_client: Any, function_arn: str) -> Budget:
    """The deployed function's timeout and memory, as its configuration reports them."""
    config = lambda_client.get_function_configuration(FunctionName=function_arn)
    return Budget(timeout_seconds=float(config["Timeout"]), memory_mb=int(config["MemorySize"]))


class LambdaContext:
    """The context a Python handler gets in Lambda (the runtime's attribute names and types:
    `memory_limit_in_mb` is text there too, read from AWS_LAMBDA_FUNCTION_MEMORY_SIZE)."""

    def __init__(
        self,
        function_arn: str,
        budget: Budget,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        name = function_arn.rsplit(":", 1)[-1]
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn
        self.memory_limit_in_mb = str(budget.memory_mb)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = f"local/[$LATEST]{uuid.uuid4().hex}"
        self.identity = None
        self.client_context = None
        self._clock = clock
        self._deadline = clock() + budget.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._clock()) * 1000))


def call_within(
    handler: LambdaHandler, event: dict[str, Any], context: LambdaContext, timeout: float
) -> Any:
    """The handler's result, or FunctionTimedOut once `timeout` seconds have passed; whatever
    the handler raises is raised here."""
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["result"] = handler(event, context)
        except BaseException as err:  # noqa: BLE001 - handed to the caller as it was raised
            outcome["error"] = err

    worker = threading.Thread(target=work, name=f"lambda-{context.function_name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise FunctionTimedOut(f"Task timed out after {timeout:.2f} seconds")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


def budgeted(handler: LambdaHandler, function_arn: str, budget: Budget) -> LambdaHandler:
    """`handler` as the deployed function runs it: a fresh context per call, the timeout as a
    wall-clock limit. The context the caller passes (the executor passes None) is replaced."""

    def call(event: dict[str, Any], _context: Any) -> Any:
        context = LambdaContext(function_arn, budget)
        return call_within(handler, event, context, budget.timeout_seconds)

    return call


def budgeted_handlers(
    handlers: Mapping[str, LambdaHandler], budgets: Mapping[str, Budget]
) -> dict[str, LambdaHandler]:
    """Every handler wrapped with its function's budget (a handler without one is refused)."""
    missing = sorted(set(handlers) - set(budgets))
    if missing:
        raise ValueError(f"no deployed budget for function(s) {missing}")
    return {arn: budgeted(h, arn, budgets[arn]) for arn, h in handlers.items()}
