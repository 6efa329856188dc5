"""Registering a run through the real register path, for the registry tests."""

from __future__ import annotations

from typing import Any

from lambdas.recipe.spec import LORA
from lambdas.registry import CheckpointRecord, RegistrationRequest, register_checkpoint
from tests.lambdas.test_register_checkpoint import stage_run


def run(sm: Any, s3: Any, job: str, parent: str, technique: str = LORA) -> CheckpointRecord:
    event = stage_run(s3, job, parent=parent, technique=technique)
    return register_checkpoint(sm, s3, RegistrationRequest.from_event(event)).record
