"""What a run of the Nova 2 Lite SFT pipeline may be given: techniques, recipe templates and ranges.

This is the single place where the documented recipe facts live (shared NOVA_FACTS section 3).
The prepare_recipe step validates every run against it, the pipeline builder takes its parameter
defaults from it, and the operator commands validate locally with it. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

RECIPES_DIR = Path(__file__).resolve().parent / "templates"

LORA = "LoRA"
FULL_RANK = "FullRank"
TECHNIQUES: tuple[str, ...] = (LORA, FULL_RANK)

# One project-authored template per technique. The same file is handed to the SageMaker SDK at
# synth time (it must end in .yaml: the SDK treats anything else as a recipe name to git clone).
TEMPLATE_FILES: dict[str, Path] = {
    LORA: RECIPES_DIR / "nova_lite_2_0_sft_lora.yaml",
    FULL_RANK: RECIPES_DIR / "nova_lite_2_0_sft_full_rank.yaml",
}

BASE_MODEL = "nova-lite-2/prod"
MODEL_TYPE = "amazon.nova-2-lite-v1:0:256k"

# "No validation data": the ValidationDataS3Uri parameter's default and the value operators pass.
# Not "": SageMaker refuses an empty parameter value
# (docs/decisions/0012-no-empty-parameter-values-and-approval.md).
NO_VALIDATION_DATA = "none"

# Where the sources disagree about a value below, this is the one place that says so. The upstream
# parameter file is aws/sagemaker-hyperpod-recipes
# launcher/recipe_templatization/nova/nova_recipe_template_parameters.json (templates
# nova_lora_sft_2_0 and nova_sft_2_0); docs/decisions/0002-recipe-templates.md records the choices.
#
# - ml.p5en.48xlarge: AWS's training-job pages list it for Nova 2 Lite SFT; the parameter file's
#   Nova 2 hardware list does not. Kept; unverified.
# - ml.p4d.24xlarge: listed in recipe metadata only; neither the parameter file's Nova 2 hardware
#   list nor the training-job pages have it. Left out.
SUPPORTED_INSTANCE_TYPES: tuple[str, ...] = (
    "ml.p5.48xlarge",
    "ml.p5en.48xlarge",
)

# run.replicas must equal the training job's instance count and be one of these.
# LoRA 1 replica: a recipe comment (2026-06-03) and a recipes pull request allow it; the parameter
# file and SageMaker SDK v3 allow only 4, 8, 16, 32. The file is followed: 1 is refused.
ALLOWED_REPLICAS: dict[str, tuple[int, ...]] = {
    LORA: (4, 8, 16, 32),
    FULL_RANK: (4, 8, 16, 32),
}

# The Nova SFT training image per region (the same repository and tag in every region).
NOVA_SFT_IMAGE_ACCOUNTS: dict[str, str] = {
    "us-east-1": "708977205387",
    "us-west-2": "176779409107",
    "ap-northeast-1": "878185805882",
}
NOVA_SFT_IMAGE_REPOSITORY = "nova-fine-tune-repo"
NOVA_SFT_IMAGE_TAG = "SM-TJ-SFT-V2-latest"


def nova_sft_image_uri(region: str) -> str:
    """The Nova 2 SFT training image for a region; ValueError names the supported regions."""
    account = NOVA_SFT_IMAGE_ACCOUNTS.get(region)
    if account is None:
        supported = ", ".join(sorted(NOVA_SFT_IMAGE_ACCOUNTS))
        raise ValueError(
            f"no Nova 2 SFT training image is published for region {region!r}; "
            f"use one of: {supported}"
        )
    return (
        f"{account}.dkr.ecr.{region}.amazonaws.com/{NOVA_SFT_IMAGE_REPOSITORY}:{NOVA_SFT_IMAGE_TAG}"
    )


Kind = Literal["int", "float", "bool", "str"]


@dataclass(frozen=True)
class Knob:
    """One run parameter that lands in the recipe.

    `path` is the dotted recipe path it sets; `choices` or `minimum`/`maximum` (inclusive, unless
    `minimum_exclusive`) bound it; `lora_only` knobs are ignored for full rank.
    """

    name: str
    path: str
    kind: Kind
    default: int | float | bool | str
    choices: tuple[int, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    lora_only: bool = False
    minimum_exclusive: bool = False
    # The knob's value in the parameter that means "derive it from the other knobs" (see
    # `derived_val_check_interval`); outside the knob's range, so it cannot be a real setting.
    derived_when: int | None = None


# The tunable hyperparameters, named as the pipeline parameters that carry them.
KNOBS: tuple[Knob, ...] = (
    Knob("MaxSteps", "training_config.max_steps", "int", 100, minimum=4, maximum=100000),
    # The parameter file's current version lists 32, 64, 128; an earlier version also 256.
    Knob("GlobalBatchSize", "training_config.global_batch_size", "int", 32, choices=(32, 64, 128)),
    Knob(
        "MaxLength",
        "training_config.max_length",
        "int",
        32768,
        choices=(8192, 16384, 32768, 65536),
    ),
    # The documented range starts at 0, but a learning rate of 0 trains nothing for hours of GPU.
    Knob(
        "LearningRate",
        "training_config.optim_config.lr",
        "float",
        1e-5,
        minimum=0.0,
        maximum=1.0,
        minimum_exclusive=True,
    ),
    Knob(
        "WarmupSteps",
        "training_config.lr_scheduler.warmup_steps",
        "int",
        15,
        minimum=0,
        maximum=100,
    ),
    Knob(
        "LoraAlpha",
        "training_config.peft.lora_tuning.alpha",
        "int",
        64,
        choices=(32, 64, 96, 128, 160, 192),
        lora_only=True,
    ),
    Knob(
        "LoraPlusLrRatio",
        "training_config.peft.lora_tuning.lora_plus_lr_ratio",
        "float",
        64.0,
        minimum=1.0,
        maximum=70.0,
        lora_only=True,
    ),
    Knob("ReasoningEnabled", "training_config.reasoning_enabled", "bool", False),
    # Validate every this many steps; at most MaxSteps (checked with it). The recipe's 2500 would
    # never validate a run of the default 100 steps, so 0 (the default) derives it from MaxSteps.
    Knob(
        "ValCheckInterval",
        "training_config.val_check_interval",
        "int",
        0,
        minimum=1,
        maximum=100000,
        derived_when=0,
    ),
)

# How many times a run validates when ValCheckInterval is derived: at each quarter of the run.
VALIDATIONS_PER_RUN = 4


def derived_val_check_interval(max_steps: int) -> int:
    """ValCheckInterval when not given: a quarter of MaxSteps (at least 1), so a run with
    validation data validates four times, the last at its final step when MaxSteps divides by 4."""
    return max(1, max_steps // VALIDATIONS_PER_RUN)
