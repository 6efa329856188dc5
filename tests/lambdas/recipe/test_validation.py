"""Run validation (lambdas/recipe/validation.py). No AWS."""

from __future__ import annotations

import pytest

from lambdas.recipe import spec
from lambdas.recipe.render import recipe_values
from lambdas.recipe.spec import BASE_MODEL, FULL_RANK, LORA
from lambdas.recipe.validation import (
    REQUIRED_KEYS,
    RUN_KEYS,
    RecipeValidationError,
    RunSettings,
    base_model_hyperparameter,
    knob_field,
    starts_from_checkpoint,
    validate_run,
)
from tests.lambdas.recipe.helpers import CHECKPOINT, params

# -- validate_run -------------------------------------------------------------------------------


def test_string_values_are_parsed_to_their_types() -> None:
    run = validate_run(params())
    assert run == RunSettings(
        technique=LORA,
        model_name_or_path=BASE_MODEL,
        training_instance_type="ml.p5.48xlarge",
        training_instance_count=4,
        run_name="exec-1a2b3c",
        max_steps=250,
        global_batch_size=64,
        max_length=16384,
        learning_rate=2e-5,
        warmup_steps=10,
        lora_alpha=128,
        lora_plus_lr_ratio=16.0,
        reasoning_enabled=True,
        val_check_interval=62,
        validation_data_s3_uri="none",
    )
    assert isinstance(run.learning_rate, float)
    assert isinstance(run.lora_plus_lr_ratio, float)


def test_native_values_are_accepted_as_well_as_strings() -> None:
    run = validate_run(
        params(TrainingInstanceCount=8.0, MaxSteps=40, LearningRate=1, ReasoningEnabled=False)
    )
    assert (run.training_instance_count, run.max_steps) == (8, 40)
    assert run.learning_rate == 1.0
    assert isinstance(run.learning_rate, float)
    assert run.reasoning_enabled is False


def test_absent_knobs_take_their_documented_defaults() -> None:
    required = {key: params()[key] for key in REQUIRED_KEYS}
    run = validate_run(required)
    for knob in spec.KNOBS:
        if knob.derived_when is None:
            assert getattr(run, knob_field(knob)) == knob.default, knob.name
    # The interval's default is derived: a quarter of the default 100 steps.
    assert run.val_check_interval == 25
    assert run.validation_data_s3_uri == spec.NO_VALIDATION_DATA
    assert not run.has_validation_data


def test_none_and_empty_count_as_absent() -> None:
    run = validate_run(params(MaxSteps=None, WarmupSteps="", ValidationDataS3Uri=None))
    assert run.warmup_steps == next(k.default for k in spec.KNOBS if k.name == "WarmupSteps")
    assert run.max_steps == next(k.default for k in spec.KNOBS if k.name == "MaxSteps")
    assert run.validation_data_s3_uri == spec.NO_VALIDATION_DATA


def test_an_empty_validation_data_uri_is_refused_with_the_sentinel_to_use() -> None:
    # SageMaker refuses an empty parameter value, so "" can never mean "no validation data".
    with pytest.raises(RecipeValidationError) as caught:
        validate_run(params(ValidationDataS3Uri=""))
    (problem,) = caught.value.problems
    assert problem.startswith("ValidationDataS3Uri is empty")
    assert f"pass {spec.NO_VALIDATION_DATA} for no validation data" in problem


@pytest.mark.parametrize("value", ["None", "NONE", " none", "null"])
def test_only_the_exact_sentinel_means_no_validation_data(value: str) -> None:
    with pytest.raises(RecipeValidationError, match=r"must be none \(no validation data\) or"):
        validate_run(params(ValidationDataS3Uri=value))


def test_a_validation_uri_is_kept_and_reaches_the_recipe() -> None:
    uri = "s3://data-bucket/val/part-0.jsonl"
    run = validate_run(params(ValidationDataS3Uri=uri))
    assert run.has_validation_data
    assert recipe_values(run)["run.validation_data_s3_path"] == uri
    # Without validation data the recipe holds its own empty field, never the sentinel.
    assert recipe_values(validate_run(params()))["run.validation_data_s3_path"] == ""


@pytest.mark.parametrize(
    ("max_steps", "given", "expected"),
    [
        ("100", "0", 25),
        ("4", "0", 1),
        ("250", "0", 62),
        ("100000", "0", 25000),
        ("250", "250", 250),
    ],
)
def test_the_validation_interval_is_derived_from_max_steps_or_taken_as_given(
    max_steps: str, given: str, expected: int
) -> None:
    run = validate_run(params(MaxSteps=max_steps, ValCheckInterval=given))
    assert run.val_check_interval == expected
    assert recipe_values(run)["training_config.val_check_interval"] == expected


def test_a_validation_interval_above_max_steps_is_refused() -> None:
    with pytest.raises(RecipeValidationError) as caught:
        validate_run(params(MaxSteps="100", ValCheckInterval="2500"))
    assert caught.value.problems == [
        "ValCheckInterval=2500: must be at most MaxSteps (100), or validation never runs; "
        "or 0 to validate at each quarter of the run"
    ]


def test_a_bad_max_steps_is_reported_once_not_again_through_the_interval() -> None:
    with pytest.raises(RecipeValidationError) as caught:
        validate_run(params(MaxSteps="3", ValCheckInterval="50"))
    assert [line.split("=")[0] for line in caught.value.problems] == ["MaxSteps"]


def test_every_bad_value_is_listed_in_one_error() -> None:
    bad = params(
        Technique="lora",
        ModelNameOrPath="nova-lite/prod",
        TrainingInstanceType="ml.g5.xlarge",
        TrainingInstanceCount="3",
        RunName="run_1",
        MaxSteps="3",
        GlobalBatchSize="48",
        MaxLength="10000",
        LearningRate="0",
        WarmupSteps="101",
        LoraAlpha="65",
        LoraPlusLrRatio="0.5",
        ReasoningEnabled="yes",
        ValCheckInterval="-1",
        ValidationDataS3Uri="https://example.com/val.jsonl",
    )
    with pytest.raises(RecipeValidationError) as caught:
        validate_run(bad)
    problems = caught.value.problems
    assert len(problems) == len(bad)
    for key in bad:
        assert sum(line.startswith(f"{key}=") for line in problems) == 1, key
    message = str(caught.value)
    assert message.startswith("15 run parameter values are invalid")
    assert all(line in message for line in problems)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("MaxSteps", "3", "an integer from 4 to 100000"),
        ("MaxSteps", "100001", "an integer from 4 to 100000"),
        ("MaxSteps", "12.5", "an integer from 4 to 100000"),
        ("MaxSteps", True, "an integer from 4 to 100000"),
        ("GlobalBatchSize", "256", "one of 32, 64, 128"),
        ("MaxLength", "32767", "one of 8192, 16384, 32768, 65536"),
        ("LearningRate", "0", "a number above 0 up to 1"),
        ("LearningRate", "1.5", "a number above 0 up to 1"),
        ("LearningRate", "nan", "a number above 0 up to 1"),
        ("LearningRate", "inf", "a number above 0 up to 1"),
        ("LearningRate", "fast", "a number above 0 up to 1"),
        ("WarmupSteps", "-1", "an integer from 0 to 100"),
        ("LoraAlpha", "16", "one of 32, 64, 96, 128, 160, 192"),
        ("LoraPlusLrRatio", "70.5", "a number from 1 to 70"),
        ("ReasoningEnabled", "1", "true or false"),
        (
            "ValCheckInterval",
            "100001",
            "an integer from 1 to 100000, or 0 to derive it from MaxSteps",
        ),
    ],
)
def test_a_bad_knob_names_its_allowed_range(key: str, value: object, allowed: str) -> None:
    with pytest.raises(RecipeValidationError) as caught:
        validate_run(params(**{key: value}))
    assert caught.value.problems == [f"{key}={value!r}: must be {allowed}"]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("MaxSteps", "4", 4),
        ("MaxSteps", "100000", 100000),
        ("WarmupSteps", "0", 0),
        ("LearningRate", "1", 1.0),
        ("LearningRate", " 1.0E-7 ", 1e-7),
        ("LoraPlusLrRatio", "1", 1.0),
        ("LoraPlusLrRatio", "70.0", 70.0),
        ("ReasoningEnabled", "False", False),
    ],
)
def test_range_edges_are_accepted(key: str, value: str, expected: object) -> None:
    run = validate_run(params(**{key: value}))
    knob = next(k for k in spec.KNOBS if k.name == key)
    assert getattr(run, knob_field(knob)) == expected


def test_lora_only_knobs_are_ignored_for_full_rank() -> None:
    run = validate_run(params(Technique=FULL_RANK, LoraAlpha="7", LoraPlusLrRatio="x"))
    assert run.lora_alpha is None
    assert run.lora_plus_lr_ratio is None
    assert "LoraAlpha" not in run.knob_values()
    with pytest.raises(RecipeValidationError) as caught:
        validate_run(params(Technique=LORA, LoraAlpha="7", LoraPlusLrRatio="x"))
    assert [line.split("=")[0] for line in caught.value.problems] == [
        "LoraAlpha",
        "LoraPlusLrRatio",
    ]


@pytest.mark.parametrize("technique", spec.TECHNIQUES)
def test_instance_count_must_be_an_allowed_replica_count(technique: str) -> None:
    for count in spec.ALLOWED_REPLICAS[technique]:
        run = validate_run(params(Technique=technique, TrainingInstanceCount=str(count)))
        assert run.training_instance_count == count
    for count in (0, 2, 3, 5, 64):
        if count in spec.ALLOWED_REPLICAS[technique]:
            continue
        with pytest.raises(RecipeValidationError) as caught:
            validate_run(params(Technique=technique, TrainingInstanceCount=str(count)))
        allowed = ", ".join(map(str, spec.ALLOWED_REPLICAS[technique]))
        assert caught.value.problems == [
            f"TrainingInstanceCount='{count}': becomes run.replicas, which must be one of "
            f"{allowed} for {technique}"
        ]


@pytest.mark.parametrize("technique", spec.TECHNIQUES)
def test_one_instance_is_refused_as_the_upstream_parameter_file_says(technique: str) -> None:
    # nova_recipe_template_parameters.json allows 4, 8, 16, 32 replicas for Nova 2 Lite SFT,
    # LoRA included (a recipe comment that allows 1 for LoRA conflicts; recipe_spec.py says so).
    with pytest.raises(RecipeValidationError, match=f"4, 8, 16, 32 for {technique}"):
        validate_run(params(Technique=technique, TrainingInstanceCount="1"))


def test_with_a_bad_technique_the_count_is_checked_against_every_technique() -> None:
    with pytest.raises(RecipeValidationError) as caught:
        validate_run(params(Technique="QLoRA", TrainingInstanceCount="2"))
    assert len(caught.value.problems) == 2
    assert "LoRA: 4, 8, 16, 32; FullRank: 4, 8, 16, 32" in caught.value.problems[1]


@pytest.mark.parametrize("instance_type", spec.SUPPORTED_INSTANCE_TYPES)
def test_supported_instance_types_are_accepted(instance_type: str) -> None:
    assert validate_run(params(TrainingInstanceType=instance_type)).training_instance_type == (
        instance_type
    )


@pytest.mark.parametrize(
    "source",
    [
        "nova-lite/prod",
        "s3://",
        "s3://Upper-Case/ckpt",
        "s3://b/ckpt with space",
        "s3://bucket/ckpt\n",
        "file:///tmp/ckpt",
        7,
    ],
)
def test_model_name_or_path_must_be_the_base_model_or_an_s3_uri(source: object) -> None:
    with pytest.raises(RecipeValidationError) as caught:
        validate_run(params(ModelNameOrPath=source))
    assert caught.value.problems[0].startswith(f"ModelNameOrPath={source!r}: must be {BASE_MODEL}")


@pytest.mark.parametrize("name", ["run_1", "-run", "run-", "a" * 64, "run.1", "ラン"])
def test_run_name_must_be_a_safe_name(name: str) -> None:
    with pytest.raises(RecipeValidationError, match="RunName="):
        validate_run(params(RunName=name))


@pytest.mark.parametrize("name", ["r", "a" * 63, "Run--2", "3b70c2d9e1f4"])
def test_safe_run_names_are_accepted(name: str) -> None:
    assert validate_run(params(RunName=name)).run_name == name


def test_validation_data_must_name_an_object_or_folder() -> None:
    run = validate_run(params(ValidationDataS3Uri="s3://data-bucket/val/"))
    assert run.validation_data_s3_uri == "s3://data-bucket/val/"
    with pytest.raises(RecipeValidationError, match="ValidationDataS3Uri='s3://data-bucket'"):
        validate_run(params(ValidationDataS3Uri="s3://data-bucket"))


@pytest.mark.parametrize("key", REQUIRED_KEYS)
def test_required_keys_must_be_given(key: str) -> None:
    for missing in ({k: v for k, v in params().items() if k != key}, params(**{key: ""})):
        with pytest.raises(RecipeValidationError) as caught:
            validate_run(missing)
        assert caught.value.problems == [f"{key} is missing: every run must give it"]


def test_unknown_keys_are_refused_with_the_accepted_ones() -> None:
    with pytest.raises(RecipeValidationError) as caught:
        validate_run(params(LearningRat="1e-5", RecipeS3Prefix="s3://b/p/"))
    (problem,) = caught.value.problems
    assert problem.startswith("unknown parameter(s) LearningRat, RecipeS3Prefix:")
    assert all(key in problem for key in RUN_KEYS)


def test_a_long_bad_value_is_cut_in_the_message() -> None:
    with pytest.raises(RecipeValidationError) as caught:
        validate_run(params(RunName="x" * 5000))
    assert len(str(caught.value)) < 300


def test_starts_from_checkpoint_follows_the_sdk_rule() -> None:
    assert starts_from_checkpoint(CHECKPOINT)
    assert not starts_from_checkpoint(BASE_MODEL)
    assert base_model_hyperparameter(CHECKPOINT) == "base_model_location"
    assert base_model_hyperparameter(BASE_MODEL) == "base_model"
    run = validate_run(params(ModelNameOrPath=CHECKPOINT))
    assert run.starts_from_checkpoint
    assert run.base_model_hyperparameter == "base_model_location"
