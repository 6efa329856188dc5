"""The registry tests' chain of runs, registered as iterative training makes them: each run
from the previous run's checkpoint."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.recipe.spec import BASE_MODEL, FULL_RANK
from lambdas.registry import CheckpointRecord
from tests.lambdas.registry.helpers import run


@pytest.fixture
def chain(clients: tuple[Any, Any]) -> list[CheckpointRecord]:
    """Three runs: job-1 from the base model, job-2 from job-1, job-3 from job-2."""
    sm, s3 = clients
    first = run(sm, s3, "job-1", BASE_MODEL)
    second = run(sm, s3, "job-2", first.checkpoint_uri, FULL_RANK)
    third = run(sm, s3, "job-3", second.checkpoint_uri)
    return [first, second, third]
