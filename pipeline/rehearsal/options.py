"""How to rehearse: the options of `python -m pipeline.rehearsal` and their defaults."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DATA = Path(__file__).resolve().parent / "sample_data" / "train.jsonl"
SAMPLE_KEY = "datasets/sample/train.jsonl"
SAMPLE_VALIDATION_DATA = SAMPLE_DATA.parent / "validation.jsonl"
SAMPLE_VALIDATION_KEY = "datasets/sample/validation.jsonl"
SAMPLE_EVALUATION_DATA = SAMPLE_DATA.parent / "gen_qa.jsonl"
SAMPLE_EVALUATION_KEY = "datasets/sample/gen_qa.jsonl"
# Every round evaluates on the sample questions and gates on rougeL: the stand-in evaluator's
# scores pass this threshold unless --low-score (pipeline/rehearsal/stand_in_evaluator.py).
DEMO_GATE_METRIC = "rougeL"
DEMO_GATE_THRESHOLD = "0.4"


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
    fail_evaluation: bool = False
    low_score: bool = False  # scores below DEMO_GATE_THRESHOLD
    seed: int = 7
    plot: bool = True
    # Run 3 (the other technique, which must be refused); the benchmark times runs 1 and 2 only.
    other_technique_round: bool = True
    # Approve round 2's checkpoint, serve it on the stand-in Bedrock, reject it (issue 15).
    serving: bool = True
    lambda_inputs: str = "json"  # or "strings": how typed parameters reach the Lambda events
    # The interpreter with `mlflow`, for the local tracking server of a stage that tracks
    # experiments (pipeline.rehearsal.tracking).
    mlflow_python: Path = ROOT / ".venv-mlflow" / "bin" / "python"
    # An MLflow server already running (its http:// URL) to use instead of starting one: the
    # tests share one per session.
    mlflow_url: str | None = None
