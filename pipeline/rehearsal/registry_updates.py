"""SageMaker's UpdateModelPackage on the local endpoint, as AWS does it (a WSGI layer).

SageMaker keeps the fields an update does not name (the approval status, its description, the
metadata); moto clears them. The serving state machine records on a package without resending
its approval status (its role may not set Approved), so this layer fills the unnamed fields in
from the package, read from moto with the caller's own headers (the same account).

It is off until `enabled` is set: the rehearsal's serving turns it on (the state machine needs
it), while tests of code that must resend fields itself (`approve`) keep moto's stricter clearing.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from typing import Any

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
KEPT = ("ModelApprovalStatus", "ApprovalDescription", "CustomerMetadataProperties")


class KeepUnnamedFields:
    """Fill an UpdateModelPackage request's missing `KEPT` fields from the current package."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.enabled = False

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET")
        if not self.enabled or target != "SageMaker.UpdateModelPackage":
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length) or b"{}")
        current = self._describe(environ, str(request.get("ModelPackageArn", "")))
        for key in KEPT:
            if key not in request and key in current:
                request[key] = current[key]
        return self.app(_with_body(environ, request), start_response)

    def _describe(self, environ: dict[str, Any], arn: str) -> dict[str, Any]:
        caught: dict[str, str] = {}

        def keep(status: str, _headers: list[tuple[str, str]], *_exc: Any) -> Any:
            caught["status"] = status
            return lambda _data: None

        describe = _with_body(
            {**environ, "HTTP_X_AMZ_TARGET": "SageMaker.DescribeModelPackage"},
            {"ModelPackageName": arn},
        )
        body = b"".join(self.app(describe, keep))
        # An unknown package: moto's update answers for itself.
        return dict(json.loads(body)) if caught.get("status", "").startswith("200") else {}


def _with_body(environ: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    raw = json.dumps(document).encode()
    return {**environ, "wsgi.input": io.BytesIO(raw), "CONTENT_LENGTH": str(len(raw))}
