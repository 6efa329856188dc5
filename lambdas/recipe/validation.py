"""A run's parameters, checked against the documented ranges of `lambdas.recipe.spec`.

`validate_run(params)` returns a frozen `RunSettings`, or raises `RecipeValidationError` listing
every bad value with its allowed range. The prepare_recipe step and the operator commands both
call it. The name and URI rules (`SAGEMAKER_NAME`, `S3_URI`, `is_s3_uri`) are shared with the
registration and the checkpoint reader. Pure: no AWS, no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdas.recipe.evaluation_spec import EVALUATION_KEYS
from lambdas.recipe.spec import (
    ALLOWED_REPLICAS,
    BASE_MODEL,
    FULL_RANK,
    KNOBS,
    LORA,
    NO_VALIDATION_DATA,
    SUPPORTED_INSTANCE_TYPES,
    TECHNIQUES,
    TEMPLATE_FILES,
    Knob,
    derived_val_check_interval,
)

# Keys without a default: a run must say what it trains, from what, on what, under which name.
REQUIRED_KEYS: tuple[str, ...] = (
    "Technique",
    "ModelNameOrPath",
    "TrainingInstanceType",
    "TrainingInstanceCount",
    "RunName",
)
# Every key validate_run accepts. Knobs, ValidationDataS3Uri and the evaluation keys may be left
# out (their default applies); anything else is refused, so a misspelt parameter cannot be
# silently ignored.
RUN_KEYS: tuple[str, ...] = (
    *REQUIRED_KEYS,
    *(knob.name for knob in KNOBS),
    "ValidationDataS3Uri",
    *EVALUATION_KEYS,
)

# SageMaker's own name rule (training jobs, model package groups, MLflow runs): letters, digits
# and inner hyphens, at most 63 characters. Use with `fullmatch`.
SAGEMAKER_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
# S3 URIs a run may name. Keys are limited to characters that are also valid in model registry
# metadata values, so every URI a run names can be recorded as it is.
S3_URI = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/([A-Za-z0-9_.:/=+@-]*))?")
# The longest value model registry metadata holds.
MAX_URI_CHARS = 256
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
# Shown values are cut so that one absurd input cannot flood the step's failure reason.
_SHOWN_CHARS = 80


class RecipeValidationError(ValueError):
    """The run's parameters break the documented ranges. `problems` has one line per bad value."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        noun = "value is" if count == 1 else "values are"
        super().__init__(
            f"{count} run parameter {noun} invalid; fix them and start the run again:\n- "
            + "\n- ".join(self.problems)
        )


# -- run settings -------------------------------------------------------------------------------


def starts_from_checkpoint(model_name_or_path: str) -> bool:
    """True iff the run starts from a trained checkpoint, an s3:// URI (the SageMaker SDK's rule)"""
    return model_name_or_path.startswith("s3://")


def base_model_hyperparameter(model_name_or_path: str) -> str:
    """The hyperparameter the SDK sets to `model_name_or_path`: base_model_location or base_model"""
    return "base_model_location" if starts_from_checkpoint(model_name_or_path) else "base_model"


@dataclass(frozen=True)
class RunSettings:
    """One run's validated parameters. Build it with `validate_run` only.

    `lora_alpha` and `lora_plus_lr_ratio` are None for full rank (LoRA-only knobs are ignored
    there). `validation_data_s3_uri` is NO_VALIDATION_DATA ("none") when the run has none;
    `val_check_interval` is always a number (derived from `max_steps` when not given).
    """

    technique: str
    model_name_or_path: str
    training_instance_type: str
    training_instance_count: int
    run_name: str
    max_steps: int
    global_batch_size: int
    max_length: int
    learning_rate: float
    warmup_steps: int
    lora_alpha: int | None
    lora_plus_lr_ratio: float | None
    reasoning_enabled: bool
    val_check_interval: int
    validation_data_s3_uri: str

    @property
    def has_validation_data(self) -> bool:
        return self.validation_data_s3_uri != NO_VALIDATION_DATA

    @property
    def starts_from_checkpoint(self) -> bool:
        return starts_from_checkpoint(self.model_name_or_path)

    @property
    def base_model_hyperparameter(self) -> str:
        return base_model_hyperparameter(self.model_name_or_path)

    @property
    def template_file(self) -> Path:
        return TEMPLATE_FILES[self.technique]

    def knob_values(self) -> dict[str, int | float | bool]:
        """The knobs that apply to this technique, by name (no LoRA-only knob for full rank)."""
        values: dict[str, int | float | bool] = {}
        for knob in applicable_knobs(self.technique):
            value = getattr(self, knob_field(knob))
            if value is not None:
                values[knob.name] = value
        return values


def knob_field(knob: Knob) -> str:
    """The RunSettings field of a knob: its name in snake case (LoraAlpha -> lora_alpha)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", knob.name).lower()


def applicable_knobs(technique: str) -> tuple[Knob, ...]:
    """The knobs a technique uses: every knob for LoRA, the non-LoRA ones for full rank."""
    return tuple(knob for knob in KNOBS if technique == LORA or not knob.lora_only)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _number_text(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def _allowed(knob: Knob) -> str:
    """The allowed values of a knob, in words."""
    if knob.choices is not None:
        return "one of " + ", ".join(str(choice) for choice in knob.choices)
    noun = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "text"}
    text = noun[knob.kind]
    if knob.minimum is not None and knob.maximum is not None:
        lower = "above" if knob.minimum_exclusive else "from"
        upper = "up to" if knob.minimum_exclusive else "to"
        text += f" {lower} {_number_text(knob.minimum)} {upper} {_number_text(knob.maximum)}"
    if knob.derived_when is not None:
        text += f", or {knob.derived_when} to derive it from MaxSteps"
    return text


def _parse_int(raw: object) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and _INT_TEXT.fullmatch(raw.strip()):
        return int(raw.strip())
    return None


def _parse_float(raw: object) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            return None
    else:
        return None
    return value if math.isfinite(value) else None


def _parse_bool(raw: object) -> bool | None:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    return None


def _check_knob(knob: Knob, raw: object) -> tuple[int | float | bool | str | None, str | None]:
    """The parsed value of a knob, or None and a problem line naming the allowed range."""
    problem = f"{knob.name}={_shown(raw)}: must be {_allowed(knob)}"
    value: int | float | bool | str | None
    if knob.kind == "int":
        value = _parse_int(raw)
    elif knob.kind == "float":
        value = _parse_float(raw)
    elif knob.kind == "bool":
        value = _parse_bool(raw)
    else:
        value = raw.strip() if isinstance(raw, str) else None
    if value is None:
        return None, problem
    if knob.derived_when is not None and value == knob.derived_when:
        return value, None
    if knob.choices is not None and value not in knob.choices:
        return None, problem
    if isinstance(value, int | float) and not isinstance(value, bool):
        too_low = knob.minimum is not None and (
            value <= knob.minimum if knob.minimum_exclusive else value < knob.minimum
        )
        too_high = knob.maximum is not None and value > knob.maximum
        if too_low or too_high:
            return None, problem
    return value, None


def is_s3_uri(value: str, *, object_key_required: bool = False) -> bool:
    """True iff `value` is an s3:// URI as S3_URI accepts it, at most MAX_URI_CHARS long, with
    an object key if required."""
    match = S3_URI.fullmatch(value) if len(value) <= MAX_URI_CHARS else None
    return match is not None and (not object_key_required or bool(match.group(2)))


def _check_keys(params: Mapping[str, object]) -> list[str]:
    problems: list[str] = []
    unknown = sorted(str(key) for key in params if key not in RUN_KEYS)
    if unknown:
        problems.append(
            f"unknown parameter(s) {', '.join(unknown)}: "
            f"the accepted ones are {', '.join(RUN_KEYS)}"
        )
    for key in REQUIRED_KEYS:
        if params.get(key) in (None, ""):
            problems.append(f"{key} is missing: every run must give it")
    return problems


def _check_source(source: object) -> str | None:
    if source == BASE_MODEL or (isinstance(source, str) and is_s3_uri(source)):
        return None
    return (
        f"ModelNameOrPath={_shown(source)}: must be {BASE_MODEL} or an s3:// checkpoint URI "
        "(the CheckpointS3Uri of an earlier run)"
    )


def _check_count(raw_count: object, technique: str | None) -> str | None:
    count = _parse_int(raw_count)
    allowed = ALLOWED_REPLICAS.get(technique) if technique is not None else None
    if allowed is not None:
        if count in allowed:
            return None
        ranges = f"{', '.join(map(str, allowed))} for {technique}"
    else:
        if count in set().union(*ALLOWED_REPLICAS.values()):
            return None
        ranges = (
            "("
            + "; ".join(
                f"{name}: {', '.join(map(str, counts))}"
                for name, counts in ALLOWED_REPLICAS.items()
            )
            + ")"
        )
    return (
        f"TrainingInstanceCount={_shown(raw_count)}: becomes run.replicas, which must be "
        f"one of {ranges}"
    )


def _check_text(key: str, value: object) -> str | None:
    """Problems of the free-text parameters: instance type, run name, validation data URI."""
    if key == "TrainingInstanceType" and value not in SUPPORTED_INSTANCE_TYPES:
        return f"{key}={_shown(value)}: must be one of {', '.join(SUPPORTED_INSTANCE_TYPES)}"
    if key == "RunName" and not (isinstance(value, str) and SAGEMAKER_NAME.fullmatch(value)):
        return (
            f"{key}={_shown(value)}: must be 1 to 63 letters, digits or inner hyphens "
            "(it names the training run)"
        )
    if key == "ValidationDataS3Uri" and not (
        value == NO_VALIDATION_DATA
        or (isinstance(value, str) and is_s3_uri(value, object_key_required=True))
    ):
        return (
            f"{key}={_shown(value)}: must be {NO_VALIDATION_DATA} (no validation data) or an "
            f"s3://bucket/key URI of at most {MAX_URI_CHARS} characters whose key uses only "
            "letters, digits and _ . : / = + @ -"
        )
    return None


def _check_interval(knobs: dict[str, Any]) -> str | None:
    """Derive ValCheckInterval when it is 0; refuse one above MaxSteps (validation would never
    run). Updates `knobs` in place; skipped when either value is already reported bad."""
    interval, max_steps = knobs.get("val_check_interval"), knobs.get("max_steps")
    if interval is None or max_steps is None:
        return None
    if interval == 0:
        knobs["val_check_interval"] = derived_val_check_interval(max_steps)
    elif interval > max_steps:
        return (
            f"ValCheckInterval={interval}: must be at most MaxSteps ({max_steps}), or validation "
            "never runs; or 0 to validate at each quarter of the run"
        )
    return None


def validate_run(params: Mapping[str, object]) -> RunSettings:
    """Check a run's parameters and return them typed; RecipeValidationError lists every problem.

    Keys are those of the prepare_recipe event without RecipeS3Prefix (see RUN_KEYS); values may be
    strings ("4", "1e-5", "true"). Keys in REQUIRED_KEYS must be given; the evaluation keys are
    checked by `lambdas.recipe.evaluation.check_evaluation`; a knob or
    ValidationDataS3Uri that is absent or None takes its default (the knob's, or
    NO_VALIDATION_DATA); an empty knob is read as absent too, but an empty ValidationDataS3Uri is
    refused, as SageMaker refuses it. ValCheckInterval 0 becomes a quarter of MaxSteps. LoRA-only
    knobs are neither checked nor used for full rank.
    """
    problems = _check_keys(params)
    if params.get("ValidationDataS3Uri") == "":
        problems.append(
            f"ValidationDataS3Uri is empty: SageMaker refuses an empty parameter value; pass "
            f"{NO_VALIDATION_DATA} for no validation data, or the data's s3:// URI"
        )
    # Absent, None and "" all mean "not given"; the required ones were reported above.
    given = {key: value for key, value in params.items() if value not in (None, "")}

    technique: str | None = None
    if "Technique" in given:
        if given["Technique"] in TECHNIQUES:
            technique = str(given["Technique"])
        else:
            problems.append(
                f"Technique={_shown(given['Technique'])}: must be one of {', '.join(TECHNIQUES)}"
            )
    checks: dict[str, Callable[[object], str | None]] = {
        "ModelNameOrPath": _check_source,
        "TrainingInstanceCount": lambda raw: _check_count(raw, technique),
        "TrainingInstanceType": lambda raw: _check_text("TrainingInstanceType", raw),
        "RunName": lambda raw: _check_text("RunName", raw),
        "ValidationDataS3Uri": lambda raw: _check_text("ValidationDataS3Uri", raw),
    }
    for key, check in checks.items():
        problem = check(given[key]) if key in given else None
        if problem is not None:
            problems.append(problem)

    knobs: dict[str, Any] = {}
    for knob in KNOBS:
        if knob.lora_only and technique == FULL_RANK:
            knobs[knob_field(knob)] = None
            continue
        value, problem = _check_knob(knob, given.get(knob.name, knob.default))
        if problem is not None:
            problems.append(problem)
        knobs[knob_field(knob)] = value
    interval_problem = _check_interval(knobs)
    if interval_problem is not None:
        problems.append(interval_problem)
    # The evaluation knobs, checked here so that a bad one stops the run before training
    # (imported here: lambdas.recipe.evaluation builds on this module).
    from lambdas.recipe.evaluation import check_evaluation

    problems.extend(check_evaluation(params)[1])

    if problems:
        raise RecipeValidationError(problems)
    return RunSettings(
        technique=str(technique),
        model_name_or_path=str(given["ModelNameOrPath"]),
        training_instance_type=str(given["TrainingInstanceType"]),
        training_instance_count=int(_parse_int(given["TrainingInstanceCount"]) or 0),
        run_name=str(given["RunName"]),
        validation_data_s3_uri=str(given.get("ValidationDataS3Uri", NO_VALIDATION_DATA)),
        **knobs,
    )
