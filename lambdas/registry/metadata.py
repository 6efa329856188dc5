"""The checkpoint's CustomerMetadataProperties, built and held to SageMaker's limits."""

from __future__ import annotations

import unicodedata

from lambdas.checkpoint import JobOutput
from lambdas.registry import records
from lambdas.registry.errors import RegistrationError
from lambdas.registry.recipe_facts import RecipeFacts
from lambdas.registry.request import RegistrationRequest

# SageMaker's limits on CustomerMetadataProperties (CreateModelPackage API reference).
MAX_METADATA_ENTRIES = 50
MAX_METADATA_VALUE_CHARS = 256
_METADATA_PUNCTUATION = frozenset("_.:/=+-@")


def metadata_problem(key: str, value: str) -> str | None:
    """Why SageMaker would refuse a CustomerMetadataProperties entry, or None."""
    if not 1 <= len(value) <= MAX_METADATA_VALUE_CHARS:
        return f"{key} is {len(value)} characters; the registry allows 1 to 256"
    for char in value:
        if unicodedata.category(char)[0] not in "LZN" and char not in _METADATA_PUNCTUATION:
            return (
                f"{key}={value[:80]!r} holds {char!r}; the registry allows only letters, "
                "digits, spaces and _ . : / = + - @"
            )
    return None


def _metadata_text(text: str) -> str:
    """Free text made acceptable as a metadata value (only for messages, never for data)."""
    cleaned = "".join(
        char if unicodedata.category(char)[0] in "LZN" or char in _METADATA_PUNCTUATION else " "
        for char in text
    )
    return " ".join(cleaned.split())[:MAX_METADATA_VALUE_CHARS] or "unavailable"


def loss_text(value: float) -> str:
    return repr(float(value))


def build_metadata(
    request: RegistrationRequest, facts: RecipeFacts, output: JobOutput
) -> dict[str, str]:
    """CustomerMetadataProperties for a checkpoint; RegistrationError if SageMaker would refuse."""
    entries: dict[str, str] = {
        records.KEY_RECORD_VERSION: records.RECORD_VERSION,
        records.KEY_CHECKPOINT: output.checkpoint_uri,
        records.KEY_PARENT: request.parent,
        records.KEY_TRAINING_JOB: request.training_job_name,
        records.KEY_TECHNIQUE: request.technique,
        records.KEY_RECIPE_URI: request.recipe_uri,
        records.KEY_RECIPE_SHA256: facts.sha256,
        records.KEY_PIPELINE_EXECUTION: request.pipeline_execution_arn,
        records.KEY_RUN_NAME: facts.run_name,
        records.KEY_INSTANCE_TYPE: request.training_instance_type,
        records.KEY_INSTANCE_COUNT: str(facts.replicas),
        records.KEY_MAX_RUNTIME: request.max_runtime_seconds,
        records.KEY_SOURCE_PACKAGE: request.source_model_package_arn,
        records.KEY_TRAIN_DATA: request.train_data_uri,
        records.KEY_VALIDATION_DATA: facts.validation_data_uri,
        **facts.hyperparameters,
    }
    if output.metrics is not None:
        entries[records.KEY_TRAINING_STEPS] = str(output.metrics.steps)
        entries[records.KEY_FIRST_LOSS] = loss_text(output.metrics.first_loss)
        entries[records.KEY_FINAL_LOSS] = loss_text(output.metrics.final_loss)
        entries[records.KEY_MIN_LOSS] = loss_text(output.metrics.min_loss)
    else:
        entries[records.KEY_METRICS_UNAVAILABLE] = _metadata_text(output.metrics_problem)
    # Empty values are not allowed by the registry: an input that was not given is left out.
    entries = {key: value for key, value in entries.items() if value}
    problems = [p for key, value in entries.items() if (p := metadata_problem(key, value))]
    if len(entries) > MAX_METADATA_ENTRIES:
        problems.append(f"{len(entries)} entries; the registry allows {MAX_METADATA_ENTRIES}")
    if problems:
        raise RegistrationError(
            "the checkpoint's metadata would be refused by the model registry: "
            + "; ".join(problems)
        )
    return entries
