"""Run parameters and a typed view of YAML trees, shared by the recipe tests."""

from __future__ import annotations

from typing import Any

from lambdas.recipe.spec import BASE_MODEL, LORA

CHECKPOINT = "s3://customer-escrow-111122223333-smtj-a1b2c3d4/run-1/step_100"


def params(**overrides: object) -> dict[str, object]:
    """A valid LoRA run as the pipeline passes it (all strings), with overrides."""
    base: dict[str, object] = {
        "Technique": LORA,
        "ModelNameOrPath": BASE_MODEL,
        "TrainingInstanceType": "ml.p5.48xlarge",
        "TrainingInstanceCount": "4",
        "RunName": "exec-1a2b3c",
        "MaxSteps": "250",
        "GlobalBatchSize": "64",
        "MaxLength": "16384",
        "LearningRate": "2e-5",
        "WarmupSteps": "10",
        "LoraAlpha": "128",
        "LoraPlusLrRatio": "16",
        "ReasoningEnabled": "TRUE",
        "ValidationDataS3Uri": "none",
    }
    base.update(overrides)
    return base


def typed(tree: Any) -> Any:
    """A tree with every scalar paired with its type, so True and 1 (or 1 and 1.0) differ."""
    if isinstance(tree, dict):
        return {key: typed(value) for key, value in tree.items()}
    return (type(tree).__name__, tree)
