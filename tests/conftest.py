"""Shared fixtures: a real moto server over HTTP on 127.0.0.1, and boto3 pointed at it.

No test talks to AWS: the session sets fake credentials and AWS_ENDPOINT_URL before any client
is built, and every test that uses AWS gets a freshly reset server.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import boto3
import pytest

from pipeline.rehearsal.endpoint import LocalEndpoint
from pipeline.rehearsal.in_process import cold_start

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
    """A boto3 session against a freshly reset moto server, and the Lambda modules cold: a
    rehearsal earlier in this process may have left their cached clients pointing at its own
    endpoint, which is gone."""
    local_endpoint.reset()
    cold_start()
    return _boto_session


@pytest.fixture(scope="session")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Assembly:
    """The whole app synthesized once per session (cdk-nag included); see tests/cloud_assembly."""
    from tests.cloud_assembly import synthesize  # CDK loads only for the tests that need it

    return synthesize(tmp_path_factory.mktemp("cdk.out"))


# -- a real MLflow tracking server (experiment tracking tests) -----------------------------------
# One server for the whole run, shared by pytest-xdist's workers. The first process whose
# collection finds a test that needs it starts it at once (an exclusive file create decides
# which), so its start (MLflow's imports: tens of seconds on a busy machine) overlaps the tests
# that run first; the others read its address from a file in a folder that the process owning
# the run (the xdist controller, or pytest without workers) made before any worker started, and
# which that process ends, with the server, when the run is over.
_SHARED_DIR = "NOVA_SFT_TEST_MLFLOW_DIR"
_MLFLOW: dict[str, Any] = {}


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the run's owner; workers inherit the variable
        os.environ[_SHARED_DIR] = tempfile.mkdtemp(prefix="nova-sft-test-mlflow-")


def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    from pipeline.rehearsal.mlflow_server import end_process_group

    shared = Path(os.environ.pop(_SHARED_DIR, "") or "/nonexistent")
    address = shared / "server.json"
    own = _MLFLOW.pop("server", None)
    if own is not None:  # started by this very process (no workers): it reaps its child
        own.stop()
    elif address.is_file():
        started = json.loads(address.read_text(encoding="utf-8"))
        end_process_group(int(started["pid"]))
        shutil.rmtree(started["workdir"], ignore_errors=True)
    shutil.rmtree(shared, ignore_errors=True)


def pytest_collection_finish(session: pytest.Session) -> None:
    if not any("mlflow_server" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    shared = Path(os.environ[_SHARED_DIR])
    try:
        os.close(os.open(shared / "claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return  # another worker starts it
    from pipeline.rehearsal.mlflow_server import LocalMlflowServer

    server = _MLFLOW["server"] = LocalMlflowServer().start()
    staged = shared / "server.json.tmp"
    staged.write_text(
        json.dumps({"url": server.url, "pid": server.pid, "workdir": str(server.workdir)}),
        encoding="utf-8",
    )
    staged.replace(shared / "server.json")


@pytest.fixture(scope="session")
def mlflow_server() -> LocalMlflowServer:
    """`mlflow server` on 127.0.0.1 (pipeline.rehearsal.mlflow_server), ready; one for the whole
    run, ended when it is over. Tests keep apart by experiment names of their own."""
    from pipeline.rehearsal.mlflow_server import LocalMlflowServer

    server = _MLFLOW.get("server")
    if server is None:
        address = Path(os.environ[_SHARED_DIR]) / "server.json"
        deadline = time.monotonic() + 60
        while not address.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        if not address.is_file():
            pytest.fail(f"no MLflow server was started for this run ({address} is missing)")
        started = json.loads(address.read_text(encoding="utf-8"))
        server = LocalMlflowServer.attach(started["url"], started["pid"])
    return cast(LocalMlflowServer, server.wait_ready())
