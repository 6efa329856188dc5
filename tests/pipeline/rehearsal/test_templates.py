"""Reading the stage from cdk.out (`pipeline.rehearsal.templates`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.rehearsal.execution_record import DefinitionError
from pipeline.rehearsal.templates import stage_stacks
from tests.pipeline.rehearsal.test_stack import assembly, training_template


def test_stacks_come_in_dependency_order(tmp_path: Path) -> None:
    stacks = stage_stacks(assembly(tmp_path, training_template()), "sandbox")
    assert [s.name for s in stacks] == ["sandbox-Data", "sandbox-Training"]


def test_missing_assembly_says_to_synthesize(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="run `make synth` first"):
        stage_stacks(tmp_path, "sandbox")
