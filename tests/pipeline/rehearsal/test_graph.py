"""The step graph (`pipeline.rehearsal.graph`): a repeatable dependency order, cycles refused."""

from __future__ import annotations

import boto3
import pytest

from pipeline.rehearsal.execution_record import DefinitionError
from pipeline.rehearsal.executor import LocalExecutor
from pipeline.rehearsal.graph import dependency_order
from tests.pipeline.rehearsal.test_executor import (
    FN_A,
    RecordingTrainer,
    definition,
    lambda_step,
    start,
)


def test_dependency_order_puts_each_name_after_its_needs_and_keeps_ties_in_order() -> None:
    needs = {"c": ["a"], "a": [], "d": ["c", "outside"], "b": []}
    # c waits for a; ties (a before b) keep the given order; names that are not keys are ignored.
    assert dependency_order(needs, "steps") == ["a", "c", "d", "b"]
    assert dependency_order({"b": [], "a": []}, "steps") == ["b", "a"]


def test_a_dependency_cycle_is_refused_with_the_names_left() -> None:
    with pytest.raises(DefinitionError, match=r"dependency cycle among steps \['b', 'c'\]"):
        dependency_order({"a": [], "b": ["c"], "c": ["b"]}, "steps")


def test_a_step_cycle_in_a_definition_is_refused(aws: boto3.Session) -> None:
    one = lambda_step("One", FN_A, {"X": {"Get": "Steps.Two.OutputParameters['Out']"}}, ["Out"])
    two = lambda_step("Two", FN_A, {"X": {"Get": "Steps.One.OutputParameters['Out']"}}, ["Out"])
    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"),
        lambda_handlers={FN_A: lambda _e, _c: {"Out": "x"}},
        trainer=RecordingTrainer(aws),
    )
    with pytest.raises(DefinitionError, match=r"dependency cycle among steps \['One', 'Two'\]"):
        executor.run(start(aws, definition(one, two)))
