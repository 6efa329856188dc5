"""Shared fixtures: a real moto server over HTTP on 127.0.0.1, and boto3 pointed at it.

No test talks to AWS: the session sets fake credentials and AWS_ENDPOINT_URL before any client
is built, and every test that uses AWS gets a freshly reset server.
"""

from __future__ import annotations

import os
import socket
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING

import boto3
import pytest

if TYPE_CHECKING:
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
    }
)
os.environ.pop("AWS_PROFILE", None)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's server on a free loopback port for the whole test session; yields its URL."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    previous = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = url
    try:
        yield url
    finally:
        if previous is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = previous
        server.stop()


@pytest.fixture(scope="session")
def _boto_session(moto_server: str) -> boto3.Session:
    # One session for the run: it caches the service models, which take ~0.3 s each to load.
    return boto3.Session(region_name=REGION)


@pytest.fixture
def aws(moto_server: str, _boto_session: boto3.Session) -> boto3.Session:
    """A boto3 session against a freshly reset moto server."""
    reset = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")  # noqa: S310
    with urllib.request.urlopen(reset, timeout=10) as response:  # noqa: S310 (loopback only)
        assert response.status == 200
    return _boto_session


@pytest.fixture(scope="session")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Assembly:
    """The whole app synthesized once per session (cdk-nag included); see tests/cloud_assembly."""
    from tests.cloud_assembly import synthesize  # CDK loads only for the tests that need it

    return synthesize(tmp_path_factory.mktemp("cdk.out"))
