"""A run's evaluation: its parameters checked, and its evaluation recipe rendered.

- `check_evaluation(params)` returns the typed `EvaluationSettings` and every problem of the
  evaluation parameters (`EVALUATION_KEYS`); `validate_run` adds those problems to its own, so a
  bad evaluation knob stops the run at PrepareRecipe, before any instance starts.
- `render_evaluation_recipe(task, run_name, model_name_or_path)` renders the task's template
  (`EVALUATION_TEMPLATE_FILES`) with the same renderer and YAML writer as the training recipe.
- `EVALUATION_TASKS`, `TASK_METRICS` and `nova_evaluation_image_uri(region)` come from
  `lambdas.recipe.evaluation_spec`, re-exported here.

Pure: no AWS, no I/O but reading the two templates.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lambdas.recipe.evaluation_spec import (
    EVALUATION_INSTANCE_TYPES,
    EVALUATION_KEYS,
    EVALUATION_TASK_CHOICES,
    EVALUATION_TASKS,
    EVALUATION_TEMPLATE_FILES,
    GEN_QA,
    GEN_QA_FILE_NAME,
    NO_EVALUATION,
    NO_EVALUATION_DATA,
    NO_GATE_METRIC,
    TASK_METRICS,
    TASKS,
    nova_evaluation_image_uri,
)
from lambdas.recipe.render import set_path
from lambdas.recipe.spec import BASE_MODEL
from lambdas.recipe.validation import (
    MAX_URI_CHARS,
    SAGEMAKER_NAME,
    RecipeValidationError,
    is_s3_uri,
)
from lambdas.recipe.yaml_subset import emit_yaml_subset, parse_yaml_subset

__all__ = [
    "EVALUATION_KEYS",
    "EVALUATION_TASKS",
    "GEN_QA",
    "GEN_QA_FILE_NAME",
    "NO_EVALUATION",
    "NO_EVALUATION_DATA",
    "NO_GATE_METRIC",
    "TASK_METRICS",
    "EvaluationSettings",
    "check_evaluation",
    "evaluation_recipe_values",
    "nova_evaluation_image_uri",
    "render_evaluation_recipe",
    "validate_evaluation",
]

_DEFAULTS: dict[str, object] = {
    "EvaluationTask": NO_EVALUATION,
    "EvaluationDataS3Uri": NO_EVALUATION_DATA,
    "EvaluationInstanceType": EVALUATION_INSTANCE_TYPES[0],
    "GateMetric": NO_GATE_METRIC,
    "GateThreshold": 0.0,
    "GateRequiresImprovement": False,
}
_SHOWN_CHARS = 80


@dataclass(frozen=True)
class EvaluationSettings:
    """A run's checked evaluation parameters. `task` is NO_EVALUATION when the run skips
    evaluation; `data_s3_uri` NO_EVALUATION_DATA when the task brings its own data."""

    task: str
    data_s3_uri: str
    instance_type: str
    gate_metric: str
    gate_threshold: float
    gate_requires_improvement: bool

    @property
    def evaluates(self) -> bool:
        return self.task != NO_EVALUATION

    @property
    def has_data(self) -> bool:
        return self.data_s3_uri != NO_EVALUATION_DATA


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _float(raw: object) -> float | None:
    if isinstance(raw, bool):
        return None
    try:
        value = float(raw) if isinstance(raw, int | float | str) else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _bool(raw: object) -> bool | None:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    return None


def _data_problem(task: str | None, data: object) -> str | None:
    one_file = (
        isinstance(data, str)
        and is_s3_uri(data, object_key_required=True)
        and data.endswith(".jsonl")
    )
    if data != NO_EVALUATION_DATA and not one_file:
        return (
            f"EvaluationDataS3Uri={_shown(data)}: must be {NO_EVALUATION_DATA} or the s3:// URI "
            f"of one .jsonl object (at most {MAX_URI_CHARS} characters; the evaluation reads "
            "exactly one file)"
        )
    if task == GEN_QA and data == NO_EVALUATION_DATA:
        return (
            f"EvaluationTask={GEN_QA} needs EvaluationDataS3Uri: pass the s3:// URI of a .jsonl "
            'file of {"query", "response"} lines, or choose a benchmark task'
        )
    if task is not None and task != GEN_QA and data != NO_EVALUATION_DATA:
        what = "no evaluation" if task == NO_EVALUATION else f"the benchmark {task}"
        return (
            f"EvaluationDataS3Uri is given but EvaluationTask={task} ({what}) reads no data: "
            f"pass EvaluationTask={GEN_QA} to evaluate on it, or EvaluationDataS3Uri="
            f"{NO_EVALUATION_DATA}"
        )
    return None


def _gate_problems(
    task: str | None, metric: object, threshold: float | None, improve: bool | None
) -> list[str]:
    problems: list[str] = []
    if metric != NO_GATE_METRIC and task == NO_EVALUATION:
        problems.append(
            f"GateMetric={_shown(metric)} without evaluation: a gate needs a score; choose an "
            f"EvaluationTask or pass GateMetric={NO_GATE_METRIC}"
        )
    elif metric != NO_GATE_METRIC and task in TASK_METRICS and metric not in TASK_METRICS[task]:
        problems.append(
            f"GateMetric={_shown(metric)}: task {task} reports "
            f"{', '.join(TASK_METRICS[task])}; choose one of them or {NO_GATE_METRIC}"
        )
    if metric == NO_GATE_METRIC and improve:
        problems.append(
            "GateRequiresImprovement=true needs a GateMetric: the improvement is measured on it"
        )
    if metric == NO_GATE_METRIC and threshold not in (None, 0.0):
        problems.append(
            f"GateThreshold={threshold} without a GateMetric: name the metric it applies to"
        )
    return problems


def check_evaluation(
    params: Mapping[str, object],
) -> tuple[EvaluationSettings | None, list[str]]:
    """The evaluation parameters of `params` (absent or None ones take their default) typed,
    and every problem found; settings are None when there is a problem."""
    values = {key: params.get(key) for key in EVALUATION_KEYS}
    for key, default in _DEFAULTS.items():
        if values[key] is None:
            values[key] = default
    problems = [
        f"{key} is empty: SageMaker refuses an empty parameter value; pass {_DEFAULTS[key]} "
        "or a value"
        for key in EVALUATION_KEYS
        if values[key] == ""
    ]
    raw_task = values["EvaluationTask"]
    task = raw_task if raw_task in EVALUATION_TASK_CHOICES else None
    if task is None and raw_task != "":
        problems.append(
            f"EvaluationTask={_shown(raw_task)}: must be one of "
            f"{', '.join(EVALUATION_TASK_CHOICES)}"
        )
    data = values["EvaluationDataS3Uri"]
    if data != "":
        problem = _data_problem(str(task) if task is not None else None, data)
        if problem is not None:
            problems.append(problem)
    instance_type = values["EvaluationInstanceType"]
    if instance_type not in EVALUATION_INSTANCE_TYPES and instance_type != "":
        problems.append(
            f"EvaluationInstanceType={_shown(instance_type)}: must be one of "
            f"{', '.join(EVALUATION_INSTANCE_TYPES)} (the evaluation recipes' instance)"
        )
    threshold = _float(values["GateThreshold"])
    if threshold is None and values["GateThreshold"] != "":
        problems.append(f"GateThreshold={_shown(values['GateThreshold'])}: must be a number")
    improve = _bool(values["GateRequiresImprovement"])
    if improve is None and values["GateRequiresImprovement"] != "":
        problems.append(
            f"GateRequiresImprovement={_shown(values['GateRequiresImprovement'])}: must be "
            "true or false"
        )
    metric = values["GateMetric"]
    if not isinstance(metric, str) or not metric:
        if metric != "":
            problems.append(f"GateMetric={_shown(metric)}: must be a metric name or none")
    else:
        problems.extend(_gate_problems(task, metric, threshold, improve))
    if problems or task is None or threshold is None or improve is None:
        return None, problems
    return (
        EvaluationSettings(
            task=str(task),
            data_s3_uri=str(data),
            instance_type=str(instance_type),
            gate_metric=str(metric),
            gate_threshold=threshold,
            gate_requires_improvement=improve,
        ),
        [],
    )


def validate_evaluation(params: Mapping[str, object]) -> EvaluationSettings:
    """`check_evaluation`, raising RecipeValidationError with every problem."""
    settings, problems = check_evaluation(params)
    if settings is None:
        raise RecipeValidationError(problems)
    return settings


# -- the evaluation recipe ------------------------------------------------------------------------


def evaluation_recipe_values(task: str, run_name: str, model_name_or_path: str) -> dict[str, str]:
    """Every recipe path an evaluation sets; RecipeValidationError lists every bad value."""
    problems: list[str] = []
    if task not in TASKS:
        problems.append(f"EvaluationTask={_shown(task)}: must be one of {', '.join(TASKS)}")
    if not (isinstance(run_name, str) and SAGEMAKER_NAME.fullmatch(run_name)):
        problems.append(
            f"RunName={_shown(run_name)}: must be 1 to 63 letters, digits or inner hyphens"
        )
    if not (
        model_name_or_path == BASE_MODEL
        or (isinstance(model_name_or_path, str) and is_s3_uri(model_name_or_path))
    ):
        problems.append(
            f"ModelNameOrPath={_shown(model_name_or_path)}: must be {BASE_MODEL} or an s3:// "
            "checkpoint URI"
        )
    if problems:
        raise RecipeValidationError(problems)
    spec = TASKS[task]
    return {
        "run.name": run_name,
        "run.model_name_or_path": model_name_or_path,
        "evaluation.task": spec.name,
        "evaluation.strategy": spec.strategy,
        "evaluation.metric": spec.metric,
    }


@functools.cache
def _template(needs_data: bool) -> dict[str, Any]:
    path = EVALUATION_TEMPLATE_FILES[needs_data]
    return parse_yaml_subset(path.read_text(encoding="utf-8"), source=path.name)


def render_evaluation_recipe(task: str, run_name: str, model_name_or_path: str) -> bytes:
    """The evaluation recipe file: the task's template with the run's values set.

    Deterministic (same inputs, same bytes); RecipeValidationError for a bad value.
    """
    values = evaluation_recipe_values(task, run_name, model_name_or_path)
    needs_data = TASKS[task].needs_data
    tree = copy.deepcopy(_template(needs_data))
    source = EVALUATION_TEMPLATE_FILES[needs_data].name
    for path, value in values.items():
        set_path(tree, path, value, source)
    header = f"# Nova 2 Lite evaluation recipe, rendered from {source} by PrepareEvaluation.\n"
    return (header + emit_yaml_subset(tree)).encode("ascii")
