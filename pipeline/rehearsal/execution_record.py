"""What the local executor records of an execution and its steps, and how a run fails.

The records carry the API's words (`StepStatus`, `Metadata`), so that the local endpoint can serve
them as ListPipelineExecutionSteps does (`pipeline.rehearsal.step_records`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class DefinitionError(Exception):
    """The definition uses something the rehearsal cannot run or the real API does not have."""


class StepFailure(Exception):
    """A step failed; the message is the step's failure reason."""

    def __init__(self, reason: str, *, exception_type: str | None = None) -> None:
        super().__init__(reason)
        self.exception_type = exception_type


class Trainer(Protocol):
    """Runs a CreateTrainingJob request and returns the job's DescribeTrainingJob response."""

    def train(self, request: dict[str, Any]) -> dict[str, Any]: ...


@dataclass
class StepRecord:
    """What happened to one step that started; statuses are the API's `StepStatus` values, and
    `metadata` is the API's `Metadata` of the step (TrainingJob, Lambda or Condition)."""

    name: str
    step_type: str
    status: str = "Starting"
    failure_reason: str = ""
    attempts: int = 0
    arguments: Any = None
    outputs: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    display_name: str = ""
    description: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None


@dataclass
class ExecutionRecord:
    """What happened to one pipeline execution."""

    arn: str
    parameters: dict[str, Any]
    status: str = "Executing"
    failure_reason: str = ""
    steps: list[StepRecord] = field(default_factory=list)

    def step(self, name: str) -> StepRecord:
        for record in self.steps:
            if record.name == name:
                return record
        raise KeyError(f"no step named {name!r} ran in {self.arn}")

    def started(self) -> list[str]:
        """The names of the steps that started, in order (the API lists no other step)."""
        return [record.name for record in self.steps]

    def output(self, name: str) -> Any:
        """An output of whichever executed step declares it (branches may declare it twice)."""
        values = [
            r.outputs[name] for r in self.steps if r.status == "Succeeded" and name in r.outputs
        ]
        if len(values) != 1:
            raise KeyError(f"{len(values)} executed steps produced output {name!r} in {self.arn}")
        return values[0]
