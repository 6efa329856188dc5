"""Templates and recipe rendering (lambdas/recipe/render.py). No AWS."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from omegaconf import OmegaConf

from lambdas.recipe import render as render_module
from lambdas.recipe.render import get_path, load_template, recipe_values, render_recipe
from lambdas.recipe.spec import (
    ALLOWED_REPLICAS,
    BASE_MODEL,
    FULL_RANK,
    KNOBS,
    LORA,
    MODEL_TYPE,
    TECHNIQUES,
    TEMPLATE_FILES,
    Knob,
)
from lambdas.recipe.validation import RunSettings, knob_field, validate_run
from lambdas.recipe.yaml_subset import YamlSubsetError, parse_yaml_subset
from tests.lambdas.recipe.helpers import CHECKPOINT, params, typed

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
    monkeypatch.setattr(render_module, "load_template", lambda technique: tree)
    with pytest.raises(YamlSubsetError, match=rf"must hold {re.escape(knob.path)} as a "):
        render_recipe(validate_run(params()))


def test_a_template_part_that_is_not_a_mapping_is_a_clear_build_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tree = template_without(LORA, "training_config.peft.lora_tuning.alpha", replace_parent=True)
    monkeypatch.setattr(render_module, "load_template", lambda technique: tree)
    with pytest.raises(
        YamlSubsetError,
        match=r"has no mapping 'lora_tuning' on the way to training_config\.peft\.lora_tuning\.",
    ):
        render_recipe(validate_run(params()))
