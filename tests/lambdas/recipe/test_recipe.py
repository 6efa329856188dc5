"""Run validation, recipe rendering and the recipe YAML subset (lambdas/recipe/). No AWS."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from lambdas import recipe as recipe_module
from lambdas.recipe import (
    REQUIRED_KEYS,
    RUN_KEYS,
    RecipeValidationError,
    RunSettings,
    YamlSubsetError,
    base_model_hyperparameter,
    emit_yaml_subset,
    format_float,
    get_path,
    knob_field,
    load_template,
    parse_yaml_subset,
    recipe_values,
    render_recipe,
    starts_from_checkpoint,
    validate_run,
)
from lambdas.recipe.spec import (
    ALLOWED_REPLICAS,
    BASE_MODEL,
    FULL_RANK,
    KNOBS,
    LORA,
    MODEL_TYPE,
    NO_VALIDATION_DATA,
    SUPPORTED_INSTANCE_TYPES,
    TECHNIQUES,
    TEMPLATE_FILES,
    Knob,
)

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
    for knob in KNOBS:
        if knob.derived_when is None:
            assert getattr(run, knob_field(knob)) == knob.default, knob.name
    # The interval's default is derived: a quarter of the default 100 steps.
    assert run.val_check_interval == 25
    assert run.validation_data_s3_uri == NO_VALIDATION_DATA
    assert not run.has_validation_data


def test_none_and_empty_count_as_absent() -> None:
    run = validate_run(params(MaxSteps=None, WarmupSteps="", ValidationDataS3Uri=None))
    assert run.warmup_steps == next(k.default for k in KNOBS if k.name == "WarmupSteps")
    assert run.max_steps == next(k.default for k in KNOBS if k.name == "MaxSteps")
    assert run.validation_data_s3_uri == NO_VALIDATION_DATA


def test_an_empty_validation_data_uri_is_refused_with_the_sentinel_to_use() -> None:
    # SageMaker refuses an empty parameter value, so "" can never mean "no validation data".
    with pytest.raises(RecipeValidationError) as caught:
        validate_run(params(ValidationDataS3Uri=""))
    (problem,) = caught.value.problems
    assert problem.startswith("ValidationDataS3Uri is empty")
    assert f"pass {NO_VALIDATION_DATA} for no validation data" in problem


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
    knob = next(k for k in KNOBS if k.name == key)
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


@pytest.mark.parametrize("technique", TECHNIQUES)
def test_instance_count_must_be_an_allowed_replica_count(technique: str) -> None:
    for count in ALLOWED_REPLICAS[technique]:
        run = validate_run(params(Technique=technique, TrainingInstanceCount=str(count)))
        assert run.training_instance_count == count
    for count in (0, 2, 3, 5, 64):
        if count in ALLOWED_REPLICAS[technique]:
            continue
        with pytest.raises(RecipeValidationError) as caught:
            validate_run(params(Technique=technique, TrainingInstanceCount=str(count)))
        allowed = ", ".join(map(str, ALLOWED_REPLICAS[technique]))
        assert caught.value.problems == [
            f"TrainingInstanceCount='{count}': becomes run.replicas, which must be one of "
            f"{allowed} for {technique}"
        ]


@pytest.mark.parametrize("technique", TECHNIQUES)
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


@pytest.mark.parametrize("instance_type", SUPPORTED_INSTANCE_TYPES)
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


# -- templates and recipe_spec agree ------------------------------------------------------------


@pytest.mark.parametrize("technique", TECHNIQUES)
def test_reader_agrees_with_yaml_safe_load_on_the_templates(technique: str) -> None:
    text = TEMPLATE_FILES[technique].read_text(encoding="utf-8")
    assert typed(parse_yaml_subset(text)) == typed(yaml.safe_load(text))


@pytest.mark.parametrize("technique", TECHNIQUES)
def test_templates_hold_the_documented_defaults(technique: str) -> None:
    template = load_template(technique)
    assert template["run"]["model_type"] == MODEL_TYPE
    assert template["run"]["model_name_or_path"] == BASE_MODEL
    assert template["run"]["validation_data_s3_path_list"] == {}
    assert template["run"]["replicas"] in ALLOWED_REPLICAS[technique]
    scheme = {LORA: "lora", FULL_RANK: "null"}[technique]
    assert template["training_config"]["peft"]["peft_scheme"] == scheme
    for knob in KNOBS:
        if knob.lora_only and technique == FULL_RANK:
            with pytest.raises(KeyError):
                get_path(template, knob.path)
            continue
        value = get_path(template, knob.path)
        if knob.derived_when is None:
            assert typed(value) == typed(knob.default), knob.name
        else:
            # The template keeps the recipe's own value; every run sets a derived or given one.
            assert typed(value) == ("int", 2500), knob.name


def test_every_knob_is_a_run_settings_field() -> None:
    fields = {field.name for field in dataclasses.fields(RunSettings)}
    assert {knob_field(knob) for knob in KNOBS} <= fields


def test_load_template_returns_an_independent_copy() -> None:
    first = load_template(LORA)
    first["run"]["name"] = "changed"
    assert load_template(LORA)["run"]["name"] != "changed"


# -- render_recipe ------------------------------------------------------------------------------


@pytest.mark.parametrize("technique", TECHNIQUES)
def test_rendered_recipe_loads_with_exactly_the_given_values(technique: str) -> None:
    run = validate_run(
        params(
            Technique=technique,
            ModelNameOrPath=CHECKPOINT,
            TrainingInstanceCount="8",
            ValidationDataS3Uri="s3://data-bucket/val/part-0.jsonl",
            LearningRate="1e-5",
        )
    )
    loaded = yaml.safe_load(render_recipe(run))
    template = load_template(technique)
    expected_run = {
        **template["run"],
        "name": "exec-1a2b3c",
        "mlflow_run_name": "exec-1a2b3c",
        "model_name_or_path": CHECKPOINT,
        "replicas": 8,
        "validation_data_s3_path": "s3://data-bucket/val/part-0.jsonl",
    }
    assert typed(loaded["run"]) == typed(expected_run)
    config = loaded["training_config"]
    assert typed(config["max_steps"]) == ("int", 250)
    assert typed(config["save_steps"]) == ("int", 250)
    assert typed(config["global_batch_size"]) == ("int", 64)
    assert typed(config["max_length"]) == ("int", 16384)
    assert typed(config["reasoning_enabled"]) == ("bool", True)
    assert typed(config["lr_scheduler"]) == typed({"warmup_steps": 10, "min_lr": 1e-6})
    assert typed(config["optim_config"]["lr"]) == ("float", 1e-5)
    assert typed(config["model_importance_score"]["fine_tuned_model"]) == ("float", 1.0)
    if technique == LORA:
        assert typed(config["peft"]) == typed(
            {"peft_scheme": "lora", "lora_tuning": {"alpha": 128, "lora_plus_lr_ratio": 16.0}}
        )
    else:
        assert typed(config["peft"]) == typed({"peft_scheme": "null"})
    assert typed(config["val_check_interval"]) == ("int", 62)
    # Everything the run does not set stays as the template has it.
    for path in ("training_config.limit_val_batches", "training_config.optim_config.adam_beta1"):
        assert typed(get_path(loaded, path)) == typed(get_path(template, path))


@pytest.mark.parametrize("technique", TECHNIQUES)
def test_rendered_recipe_reads_the_same_under_omegaconf_and_the_subset_reader(
    technique: str, tmp_path: Path
) -> None:
    body = render_recipe(validate_run(params(Technique=technique, LearningRate="3e-6")))
    path = tmp_path / "recipe.yaml"
    path.write_bytes(body)
    via_omegaconf = OmegaConf.to_container(OmegaConf.load(path))
    assert typed(via_omegaconf) == typed(yaml.safe_load(body))
    assert typed(parse_yaml_subset(body.decode())) == typed(yaml.safe_load(body))


def test_rendering_is_deterministic_and_follows_the_settings() -> None:
    run = validate_run(params())
    assert render_recipe(run) == render_recipe(validate_run(params()))
    other = dataclasses.replace(run, warmup_steps=11)
    assert render_recipe(other) != render_recipe(run)
    assert b"warmup_steps: 11\n" in render_recipe(other)


def test_recipe_values_cover_every_applicable_knob_path() -> None:
    lora = recipe_values(validate_run(params()))
    full = recipe_values(validate_run(params(Technique=FULL_RANK)))
    for knob in KNOBS:
        assert knob.path in lora
        assert (knob.path in full) is not knob.lora_only


def test_a_value_of_the_wrong_type_for_the_template_is_a_clear_build_error() -> None:
    run = dataclasses.replace(validate_run(params()), max_steps=True)
    with pytest.raises(YamlSubsetError, match=r"must hold training_config.save_steps as a bool"):
        render_recipe(run)


def template_without(technique: str, path: str, *, replace_parent: bool = False) -> dict[str, Any]:
    """The technique's template with the leaf at `path` deleted, or its parent made a string."""
    tree = load_template(technique)
    *parents, leaf = path.split(".")
    holder: dict[str, Any] = tree
    for part in parents[:-1]:
        holder = holder[part]
    if replace_parent:
        holder[parents[-1]] = "not a mapping"
    else:
        del holder[parents[-1]][leaf]
    return tree


@pytest.mark.parametrize("knob", KNOBS, ids=lambda knob: knob.name)
def test_a_template_missing_a_knob_path_is_a_clear_build_error(
    knob: Knob, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = template_without(LORA, knob.path)
    monkeypatch.setattr(recipe_module, "load_template", lambda technique: tree)
    with pytest.raises(YamlSubsetError, match=rf"must hold {re.escape(knob.path)} as a "):
        render_recipe(validate_run(params()))


def test_a_template_part_that_is_not_a_mapping_is_a_clear_build_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tree = template_without(LORA, "training_config.peft.lora_tuning.alpha", replace_parent=True)
    monkeypatch.setattr(recipe_module, "load_template", lambda technique: tree)
    with pytest.raises(
        YamlSubsetError,
        match=r"has no mapping 'lora_tuning' on the way to training_config\.peft\.lora_tuning\.",
    ):
        render_recipe(validate_run(params()))


# -- the YAML subset ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e-5, "1.0e-05"),
        (1e-6, "1.0e-06"),
        (2.5e-7, "2.5e-07"),
        (64.0, "64.0"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (0.95, "0.95"),
        (1e16, "1.0e+16"),
        (1.5e300, "1.5e+300"),
        (123456.789, "123456.789"),
    ],
)
def test_floats_are_written_so_yaml_1_1_reads_them_as_floats(value: float, text: str) -> None:
    assert format_float(value) == text
    loaded = yaml.safe_load(f"x: {text}")["x"]
    assert isinstance(loaded, float)
    assert loaded == value
    assert math.copysign(1.0, loaded) == math.copysign(1.0, value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_cannot_be_written(value: float) -> None:
    with pytest.raises(ValueError, match="only finite numbers"):
        format_float(value)


def test_emitter_escapes_what_a_quoted_string_needs() -> None:
    tree = {"a": 'say "hi" \\ now', "b": "tab\there", "c": "caf\u00e9 \U0001f600", "d": ""}
    text = emit_yaml_subset(tree)
    assert text.isascii()
    assert typed(yaml.safe_load(text)) == typed(tree)
    assert typed(parse_yaml_subset(text)) == typed(tree)


@pytest.mark.parametrize(
    "tree",
    [{"bad key": 1}, {"on": 1}, {"a": None}, {"a": [1]}, {"a": "\ud800"}, {"a": math.nan}],
)
def test_emitter_refuses_what_the_subset_cannot_hold(tree: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"recipe|YAML|finite"):
        emit_yaml_subset(tree)


_keys = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True).filter(
    lambda key: key not in ("y", "n", "yes", "no", "on", "off", "true", "false", "null")
)
_scalars = st.one_of(
    st.text(max_size=20),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
_trees = st.recursive(
    _scalars,
    lambda children: st.dictionaries(_keys, children, max_size=4),
    max_leaves=12,
).filter(lambda tree: isinstance(tree, dict) and bool(tree))


@settings(max_examples=200, deadline=None)
@given(_trees)
def test_emitted_yaml_reads_back_the_same_under_pyyaml_and_the_subset_reader(
    tree: dict[str, Any],
) -> None:
    text = emit_yaml_subset(tree)
    assert typed(yaml.safe_load(text)) == typed(tree)
    assert typed(parse_yaml_subset(text)) == typed(tree)


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ('run:\n\tname: "x"\n', 2, "tabs are not allowed"),
        ("run:\n  - 1\n", 2, "expected 'key: value'"),
        ("name: plain text\n", 1, "unsupported value 'plain text'"),
        ("name: 'single'\n", 1, "unsupported value"),
        ("name: null\n", 1, "unsupported value 'null'"),
        ("name: ~\n", 1, "unsupported value '~'"),
        ("lr: 1e-05\n", 1, "unsupported value '1e-05'"),
        ("k: 010\n", 1, "unsupported value '010'"),
        ("k: 1_000\n", 1, "unsupported value '1_000'"),
        ("a: 1\na: 2\n", 2, "duplicate key 'a'"),
        ("run:\nother: 1\n", 1, "'run' has no value"),
        ("run:\n", 1, "'run' has no value"),
        ('run:\n    name: "x"\n', 2, "indentation does not match"),
        ("run:\n  a: 1\n   b: 2\n", 3, "indentation does not match"),
        (" a: 1\n", 1, "indentation does not match"),
        ("on: 1\n", 1, "would be read as a boolean"),
        ('a: "open\n', 1, "not closed"),
        ('a: "bad \\q escape"\n', 1, "unsupported escape \\q"),
        ('a: "\\ud800"\n', 1, "is not a character"),
        ('a: "x" trailing\n', 1, "unexpected 'trailing'"),
        ("a: &anchor 1\n", 1, "unsupported value"),
        ("a:b\n", 1, "expected 'key: value'"),
    ],
)
def test_reader_refuses_text_outside_the_subset(text: str, line: int, reason: str) -> None:
    with pytest.raises(YamlSubsetError) as caught:
        parse_yaml_subset(text, source="t.yaml")
    assert str(caught.value).startswith(f"t.yaml line {line}: ")
    assert reason in str(caught.value)


def test_reader_accepts_comments_blank_lines_and_crlf() -> None:
    text = '# head\r\nrun:  # section\r\n\r\n  name: "x"  # trailing\r\n  m: -3\r\n  f: 2.50\r\n'
    assert typed(parse_yaml_subset(text)) == typed({"run": {"name": "x", "m": -3, "f": 2.5}})
    assert typed(parse_yaml_subset(text)) == typed(yaml.safe_load(text))


def test_reader_refuses_an_empty_document() -> None:
    with pytest.raises(YamlSubsetError, match="holds no mapping"):
        parse_yaml_subset("# only a comment\n", source="t.yaml")
