"""Registration's pieces (lambdas/registry/registration.py); the whole step, against moto
over HTTP, is in tests/lambdas/test_register_checkpoint.py."""

from __future__ import annotations

from lambdas.registry import client_token
from tests.lambdas.test_register_checkpoint import GROUP


def test_the_client_token_is_stable_per_job() -> None:
    token = client_token(GROUP, "job-1")
    assert token == client_token(GROUP, "job-1")
    assert token != client_token(GROUP, "job-2")
    assert len(token) == 32
