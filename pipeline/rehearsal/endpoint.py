"""moto's server on 127.0.0.1, with optional fault injection, for the local rehearsal.

Faults are answered over HTTP the way AWS answers them (S3 `503 SlowDown`, SageMaker
`400 ThrottlingException`), so the clients' own retry logic handles them exactly as it would
against AWS. A seeded generator picks which requests fail, so a run is repeatable.

Behind the faults, `pipeline.rehearsal.step_records.StepRoute` serves what moto lacks for a
rehearsed execution: its step records (`ListPipelineExecutionSteps`) and its real status, from the
`executions` log that the local executor publishes to. In front of it,
`pipeline.rehearsal.stand_in_bedrock.StandInBedrock` answers the Bedrock calls moto lacks, and
`pipeline.rehearsal.registry_updates.KeepUnnamedFields` (when enabled) makes UpdateModelPackage
keep the fields it does not name.
"""

from __future__ import annotations

import json
import random
import re
import threading
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from pipeline.rehearsal.registry_updates import KeepUnnamedFields
from pipeline.rehearsal.stand_in_bedrock import StandInBedrock
from pipeline.rehearsal.step_records import ExecutionLog, StepRoute

_SERVICE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")
_S3_SLOWDOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message>"
    b"<RequestId>LOCALFAULT</RequestId></Error>"
)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass
class Faults:
    """Share of requests (0 to 1) to fail, per kind, and what was injected so far."""

    s3_error_rate: float = 0.0
    throttle_rate: float = 0.0
    seed: int = 7
    injected: dict[str, int] = field(default_factory=lambda: {"s3": 0, "sagemaker": 0})
    seen: dict[str, int] = field(default_factory=lambda: {"s3": 0, "sagemaker": 0})

    def __post_init__(self) -> None:
        for rate in (self.s3_error_rate, self.throttle_rate):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"a fault rate must be at least 0 and below 1, got {rate}")
        self._random = random.Random(self.seed)  # noqa: S311 - repeatable faults, not secrets
        self._lock = threading.Lock()

    def pick(self, service: str) -> bool:
        rate = {"s3": self.s3_error_rate, "sagemaker": self.throttle_rate}.get(service, 0.0)
        with self._lock:
            if service in self.seen:
                self.seen[service] += 1
            if rate and self._random.random() < rate:
                self.injected[service] += 1
                return True
        return False


class _FaultInjector:
    def __init__(self, app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]]) -> None:
        self.app = app
        self.faults = Faults()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        match = _SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
        service = match.group(1) if match else ""
        if service in {"s3", "sagemaker"} and self.faults.pick(service):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            if length:
                environ["wsgi.input"].read(length)  # drain, so the connection stays usable
            if service == "s3":
                start_response("503 Slow Down", [("Content-Type", "application/xml")])
                return [_S3_SLOWDOWN]
            body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"})
            start_response(
                "400 Bad Request",
                [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", "fault")],
            )
            return [body.encode()]
        return self.app(environ, start_response)


class LocalEndpoint:
    """moto's server on a free loopback port. Use as a context manager."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )

        class QuietHandler(MotoRequestHandler):
            """Errors still reach the log; one line per request does not."""

            def log_request(self, *_args: object, **_kwargs: object) -> None:
                return None

        self.executions = ExecutionLog()
        # Bedrock's custom-model calls, which moto lacks (pipeline/rehearsal/stand_in_bedrock.py).
        routes = StepRoute(DomainDispatcherApplication(create_backend_app), self.executions)
        self.registry_updates = KeepUnnamedFields(routes)
        self.bedrock = StandInBedrock(self.registry_updates, url="")
        self._injector = _FaultInjector(self.bedrock)
        # Port 0: the system picks a free port while binding, so no other process can take it.
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, self._injector, threaded=True, request_handler=QuietHandler
        )
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self.bedrock.url = self.url
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> LocalEndpoint:
        self._thread.start()
        self.reset()
        return self

    def reset(self) -> None:
        """Empty every service: moto keeps its state per process, not per server."""
        self.executions.clear()
        self.bedrock.reset()
        self.registry_updates.enabled = False
        reset = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(reset, timeout=10) as response:  # noqa: S310 - loopback only
            if response.status != 200:
                raise RuntimeError(f"moto's reset answered {response.status}")

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @contextmanager
    def faults(self, faults: Faults) -> Iterator[Faults]:
        """Inject `faults` into requests made inside the block."""
        self._injector.faults = faults
        try:
            yield faults
        finally:
            self._injector.faults = Faults()
