"""Shared fixtures: a real moto server over HTTP on 127.0.0.1, and boto3 pointed at it.

No test talks to AWS: the session sets fake credentials and AWS_ENDPOINT_URL before any client
is built, and every test that uses AWS gets a freshly reset server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import boto3
import pytest

from pipeline.rehearsal.endpoint import LocalEndpoint

if TYPE_CHECKING:
    from pipeline.rehearsal.mlflow_server import LocalMlflowServer
    from tests.cloud_assembly import Assembly

REGION = "us-east-1"

# Set before anything builds a client: fake credentials, a region, and no metadata probing.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "SAGEMAKER_DISABLE_TELEMETRY": "true",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        # MLflow calls never leave this machine: a closed loopback port unless a test points
        # them at its local server (lambdas/tracking/address.py).
        "SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT": "http://127.0.0.1:9",
    }
)
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def local_endpoint() -> Iterator[LocalEndpoint]:
    """moto's server on a free loopback port for the whole test session (the rehearsal's own
    server, without faults); AWS_ENDPOINT_URL points every client at it."""
    with LocalEndpoint() as endpoint:
        previous = os.environ.get("AWS_ENDPOINT_URL")
        os.environ["AWS_ENDPOINT_URL"] = endpoint.url
        try:
            yield endpoint
        finally:
            if previous is None:
                os.environ.pop("AWS_ENDPOINT_URL", None)
            else:
                os.environ["AWS_ENDPOINT_URL"] = previous


@pytest.fixture(scope="session")
def _boto_session(local_endpoint: LocalEndpoint) -> boto3.Session:
    # One session for the run: it caches the service models, which take ~0.3 s each to load.
    return boto3.Session(region_name=REGION)


@pytest.fixture
def aws(local_endpoint: LocalEndpoint, _boto_session: boto3.Session) -> boto3.Session:
    """A boto3 session against a freshly reset moto server."""
    local_endpoint.reset()
    return _boto_session


@pytest.fixture(scope="session")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Assembly:
    """The whole app synthesized once per session (cdk-nag included); see tests/cloud_assembly."""
    from tests.cloud_assembly import synthesize  # CDK loads only for the tests that need it

    return synthesize(tmp_path_factory.mktemp("cdk.out"))


# -- a real MLflow tracking server (experiment tracking tests) -----------------------------------
# One server per session. It is started as soon as collection finds a test that needs it, so its
# start (MLflow's imports, tens of seconds on a busy machine) overlaps the tests that run first.
_MLFLOW: dict[str, Any] = {}


def pytest_collection_finish(session: pytest.Session) -> None:
    if any("mlflow_server" in getattr(item, "fixturenames", ()) for item in session.items):
        from pipeline.rehearsal.mlflow_server import LocalMlflowServer

        _MLFLOW["server"] = LocalMlflowServer().start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    server = _MLFLOW.pop("server", None)
    if server is not None:
        server.stop()


@pytest.fixture(scope="session")
def mlflow_server() -> LocalMlflowServer:
    """`mlflow server` on 127.0.0.1 (pipeline.rehearsal.mlflow_server), ready; stopped at the
    end of the session. Tests keep apart by experiment names of their own."""
    from pipeline.rehearsal.mlflow_server import LocalMlflowServer

    server = _MLFLOW.get("server")
    if server is None:  # collected without the hook (e.g. a plugin reordered items)
        server = _MLFLOW["server"] = LocalMlflowServer().start()
    return cast(LocalMlflowServer, server.wait_ready())
