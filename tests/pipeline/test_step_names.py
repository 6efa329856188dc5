"""The step names (`pipeline.step_names`) fit the names the service derives from them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.pipeline import test_definition as unit


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return unit.built_definition()


def test_training_step_names_leave_room_for_the_job_name_pipelines_gives(
    definition: dict[str, Any],
) -> None:
    # Pipelines names a step's job pipelines-<12-character execution id>-<step>-<10 characters>
    # (not documented to shorten a long step name); CreateTrainingJob takes at most 63.
    names = [s["Name"] for s, _ in unit.flatten(definition["Steps"]) if s["Type"] == "Training"]
    assert len(names) == 12  # four training jobs, each with two evaluation variants
    longest = max(len(f"pipelines-{'x' * 12}-{name}-{'y' * 10}") for name in names)
    assert longest <= 63
