"""What an evaluation may be given: its tasks, their metrics, templates, instances and image.

The single place for the documented facts of Nova 2 Lite evaluation on SageMaker training jobs
(shared NOVA_FACTS section 7; the upstream recipes in aws/sagemaker-hyperpod-recipes
`recipes_collection/recipes/evaluation/nova/nova_2_0/nova_lite/`; the SageMaker guide's table of
benchmarks). `lambdas.recipe.evaluation` checks and renders against it; the pipeline's parameters
take their choices from it. Standard library only; nothing here imports the rest of the package,
so `lambdas.recipe.validation` may import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lambdas.recipe.spec import NOVA_SFT_IMAGE_ACCOUNTS, RECIPES_DIR

# "No evaluation", "no evaluation data" and "no gate": parameter values, never "" (SageMaker
# refuses an empty parameter value; decision 0012).
NO_EVALUATION = "none"
NO_EVALUATION_DATA = "none"
NO_GATE_METRIC = "none"

GEN_QA = "gen_qa"
# The file name the evaluation container reads in its `train` channel (NOVA_FACTS 7).
GEN_QA_FILE_NAME = "gen_qa.jsonl"


@dataclass(frozen=True)
class EvaluationTask:
    """One evaluation task: the recipe's `evaluation.task`, `.strategy` and `.metric`, the metric
    names its results file reports under `results.all`, and whether it reads the run's data."""

    name: str
    strategy: str
    metric: str
    metrics: tuple[str, ...]
    needs_data: bool


# gen_qa: the bring-your-own-dataset recipe (task and strategy fixed, metric "all"). The benchmarks:
# the general text benchmark recipe with the SageMaker guide's strategy and metric per benchmark.
# Benchmark metric names in results.all are as the guide names them; unverified against a real run.
_TASKS: tuple[EvaluationTask, ...] = (
    EvaluationTask(
        GEN_QA,
        GEN_QA,
        "all",
        ("rouge1", "rouge2", "rougeL", "em", "qem", "f1", "f1_score_quasi", "bleu"),
        needs_data=True,
    ),
    EvaluationTask("mmlu", "zs_cot", "accuracy", ("accuracy",), needs_data=False),
    EvaluationTask("mmlu_pro", "zs_cot", "accuracy", ("accuracy",), needs_data=False),
    EvaluationTask("bbh", "zs_cot", "accuracy", ("accuracy",), needs_data=False),
    EvaluationTask("gpqa", "zs_cot", "accuracy", ("accuracy",), needs_data=False),
    EvaluationTask("math", "zs_cot", "exact_match", ("exact_match",), needs_data=False),
    EvaluationTask("strong_reject", "zs", "deflection", ("deflection",), needs_data=False),
    EvaluationTask("ifeval", "zs", "accuracy", ("accuracy",), needs_data=False),
)
TASKS: dict[str, EvaluationTask] = {task.name: task for task in _TASKS}
# Every task a run may evaluate on (NO_EVALUATION is the parameter's "skip").
EVALUATION_TASKS: tuple[str, ...] = tuple(TASKS)
EVALUATION_TASK_CHOICES: tuple[str, ...] = (NO_EVALUATION, *EVALUATION_TASKS)
# Task -> the metric names its results report (what a gate may be set on).
TASK_METRICS: dict[str, tuple[str, ...]] = {task.name: task.metrics for task in _TASKS}
GATE_METRIC_CHOICES: tuple[str, ...] = (
    NO_GATE_METRIC,
    *sorted({metric for task in _TASKS for metric in task.metrics}),
)

# One template per kind of task (project-authored; docs/decisions/0017).
EVALUATION_TEMPLATE_FILES: dict[bool, Path] = {
    True: RECIPES_DIR / "nova_lite_2_0_eval_gen_qa.yaml",
    False: RECIPES_DIR / "nova_lite_2_0_eval_benchmark.yaml",
}

# The evaluation recipes are written for one p5.48xlarge (their names say p5_48xl, replicas 1).
EVALUATION_INSTANCE_TYPES: tuple[str, ...] = ("ml.p5.48xlarge",)
EVALUATION_INSTANCE_COUNT = 1

# The evaluation image: same publishing accounts as the training image, its own repository.
# The tag is the one the regional parameter file names; a sample notebook uses
# SM-TJ-Eval-Beta-latest (which one is current is unverified).
NOVA_EVALUATION_IMAGE_REPOSITORY = "nova-evaluation-repo"
NOVA_EVALUATION_IMAGE_TAG = "SM-TJ-Eval-V2-latest"

# Documented limits of the bring-your-own-dataset file (SageMaker and Nova user guides, "Evaluation
# recipe examples"): one JSONL file; each sample's context (system + query) under 3.5k tokens.
GEN_QA_MAX_CONTEXT_TOKENS = 3500

# The run parameters an evaluation adds (PrepareRecipe checks them before training starts).
EVALUATION_KEYS: tuple[str, ...] = (
    "EvaluationTask",
    "EvaluationDataS3Uri",
    "EvaluationInstanceType",
    "GateMetric",
    "GateThreshold",
    "GateRequiresImprovement",
)


def nova_evaluation_image_uri(region: str) -> str:
    """The Nova evaluation image for a region; ValueError names the supported regions."""
    account = NOVA_SFT_IMAGE_ACCOUNTS.get(region)
    if account is None:
        supported = ", ".join(sorted(NOVA_SFT_IMAGE_ACCOUNTS))
        raise ValueError(
            f"no Nova evaluation image is published for region {region!r}; use one of: {supported}"
        )
    return (
        f"{account}.dkr.ecr.{region}.amazonaws.com/"
        f"{NOVA_EVALUATION_IMAGE_REPOSITORY}:{NOVA_EVALUATION_IMAGE_TAG}"
    )
