"""How to rehearse: the options of `python -m pipeline.rehearsal` and their defaults."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DATA = Path(__file__).resolve().parent / "sample_data" / "train.jsonl"
SAMPLE_KEY = "datasets/sample/train.jsonl"
SAMPLE_VALIDATION_DATA = SAMPLE_DATA.parent / "validation.jsonl"
SAMPLE_VALIDATION_KEY = "datasets/sample/validation.jsonl"


@dataclass(frozen=True)
class Options:
    """How to rehearse. Rates are shares of calls (0 to 1) answered with an error."""

    cdk_out: Path = ROOT / "cdk.out"
    stage: str = "sandbox"
    dataset: Path = SAMPLE_DATA
    out_dir: Path = ROOT / "rehearsal-out"
    s3_error_rate: float = 0.0
    throttle_rate: float = 0.0
    fail_training: bool = False
    seed: int = 7
    plot: bool = True
    # Run 3 (the other technique, which must be refused); the benchmark times runs 1 and 2 only.
    other_technique_round: bool = True
    lambda_inputs: str = "json"  # or "strings": how typed parameters reach the Lambda events
    # The interpreter with `mlflow`, for the local tracking server of a stage that tracks
    # experiments (pipeline.rehearsal.tracking).
    mlflow_python: Path = ROOT / ".venv-mlflow" / "bin" / "python"
    # An MLflow server already running (its http:// URL) to use instead of starting one: the
    # tests share one per session.
    mlflow_url: str | None = None
