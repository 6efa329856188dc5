"""A small client of MLflow's REST API (`/api/2.0/mlflow/...`), SigV4-signed for SageMaker.

It needs the standard library and botocore only (both in the Lambda runtime): the `mlflow`
package, a few hundred megabytes with its dependencies, stays out of the Lambda asset. Requests
are JSON; GET parameters go in the query string. Each call is signed for `sagemaker-mlflow` in the
server's region and names the server in `x-mlflow-sm-tracking-server-arn` (`address`). A local
`mlflow server` ignores both, so the rehearsal talks to one through the same code.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from lambdas.tracking.address import ARN_HEADER, SIGNING_SERVICE, TrackingAddress

API = "/api/2.0/mlflow/"
# A transient answer (throttling, a server error, no connection) is tried again this many times.
ATTEMPTS = 3
_RETRY_STATUSES = {429, 500, 502, 503, 504}


class TrackingError(RuntimeError):
    """A call to the tracking server failed; `error_code` is MLflow's code ("" when none)."""

    def __init__(self, message: str, *, error_code: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.status = status


Signer = Callable[[str, str, dict[str, str], bytes], dict[str, str]]


def sigv4_signer(address: TrackingAddress, credentials: Any = None) -> Signer:
    """Sign requests with SigV4 for `sagemaker-mlflow` in the server's region, with
    `credentials` (botocore credentials; default: botocore's own chain, as in Lambda)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.session import get_session

    found = credentials if credentials is not None else get_session().get_credentials()
    if found is None:
        raise TrackingError(
            f"no AWS credentials to sign the calls to {address.arn} with: run with a role "
            "or a profile"
        )
    signer = SigV4Auth(found, SIGNING_SERVICE, address.region)

    def sign(method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        signer.add_auth(request)
        return dict(request.headers.items())

    return sign


class TrackingClient:
    """Calls one tracking server's REST API. `signer` defaults to SigV4 (`sigv4_signer`)."""

    def __init__(
        self,
        address: TrackingAddress,
        *,
        signer: Signer | None = None,
        timeout: float = 10.0,
        backoff: float = 0.5,
    ) -> None:
        self.address = address
        self._sign = signer if signer is not None else sigv4_signer(address)
        self._timeout = timeout
        self._backoff = backoff

    def get(self, path: str, query: Mapping[str, str]) -> dict[str, Any]:
        """GET `/api/2.0/mlflow/<path>?<query>`; the answer's JSON object."""
        return self._call("GET", path + "?" + urllib.parse.urlencode(query), b"")

    def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a JSON `body` to `/api/2.0/mlflow/<path>`; the answer's JSON object."""
        return self._call("POST", path, json.dumps(body, sort_keys=True).encode("utf-8"))

    def _call(self, method: str, path: str, body: bytes) -> dict[str, Any]:
        url = self.address.endpoint + API + path
        for attempt in range(1, ATTEMPTS + 1):
            headers = {"Content-Type": "application/json", ARN_HEADER: self.address.arn}
            signed = self._sign(method, url, headers, body)
            # The endpoint is https:// or an http(s):// override, checked in `tracking_address`.
            request = urllib.request.Request(  # noqa: S310
                url, data=body if method != "GET" else None, headers=signed, method=method
            )
            try:
                with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                    return _json(response.read())
            except urllib.error.HTTPError as error:
                answer = _json_or_empty(error.read())
                if error.code in _RETRY_STATUSES and attempt < ATTEMPTS:
                    time.sleep(self._backoff * attempt)
                    continue
                operation = f"{method} {path.partition('?')[0]}"
                raise TrackingError(
                    f"{operation} on {self.address.arn} answered {error.code}: "
                    f"{answer.get('message') or error.reason}",
                    error_code=str(answer.get("error_code", "")),
                    status=error.code,
                ) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                if attempt < ATTEMPTS:
                    time.sleep(self._backoff * attempt)
                    continue
                reason = getattr(error, "reason", error)
                raise TrackingError(
                    f"cannot reach {self.address.endpoint} for {self.address.arn}: {reason}"
                ) from None
        raise AssertionError("unreachable")  # the loop returns or raises


def _json(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw or b"{}")
    if not isinstance(value, dict):
        raise TrackingError(f"the tracking server answered {str(value)[:80]!r}, not an object")
    return value


def _json_or_empty(raw: bytes) -> dict[str, Any]:
    try:
        return _json(raw)
    except (ValueError, TrackingError):
        return {}
