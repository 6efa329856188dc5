"""Scores of a Nova evaluation job, recorded in the model registry, and the quality gate.

Every function takes its boto3 clients as arguments. The package's public API, re-exported
from its modules:

- `results`: `read_evaluation_results(stream, source=, run_name=)` streams an evaluation
  output.tar.gz (the checkpoint reader's gunzip) and returns `EvaluationResults` (every metric
  of `results.all` with its stderr); `EvaluationResultsError` otherwise.
- `inputs`: the steps' evaluation inputs (`EvaluationInputs.from_event`), the `Gate`.
- `scores`: the metadata keys of the scores, `scorecard_of(metadata)` to read them back.
- `parent`: the parent's comparable scores (`find_parent_scores`), the base model's baseline.
- `gate`: `decide(...)`: the status a checkpoint is registered with, and why.
- `recording`: `assess(...)`: read, compare, judge, write the statistics report.
- `steps`: `register_evaluated` (the register step) and `record_evaluation` (the record step).

docs/decisions/0018-scores-in-the-registry.md explains where scores live and the gate.
"""

from lambdas.evaluation.gate import Verdict, decide
from lambdas.evaluation.inputs import EvaluationInputs, Gate
from lambdas.evaluation.parent import Comparison, baseline_uri, find_parent_scores
from lambdas.evaluation.recording import NOT_EVALUATED_OUTPUTS, Assessment, assess
from lambdas.evaluation.results import (
    EvaluationResults,
    EvaluationResultsError,
    read_evaluation_results,
)
from lambdas.evaluation.scores import ScoreCard, scorecard_of
from lambdas.evaluation.steps import (
    RecordRequest,
    record_evaluation,
    recorded_outputs,
    register_evaluated,
)

__all__ = [
    "NOT_EVALUATED_OUTPUTS",
    "Assessment",
    "Comparison",
    "EvaluationInputs",
    "EvaluationResults",
    "EvaluationResultsError",
    "Gate",
    "RecordRequest",
    "ScoreCard",
    "Verdict",
    "assess",
    "baseline_uri",
    "decide",
    "find_parent_scores",
    "read_evaluation_results",
    "record_evaluation",
    "recorded_outputs",
    "register_evaluated",
    "scorecard_of",
]
