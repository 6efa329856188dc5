"""Render a run's Nova 2 Lite SFT recipe from its technique's template.

`render_recipe(settings)` reads the technique's template in `lambdas/recipe/templates/` (the only
I/O, cached) and sets the run's values (`recipe_values(settings)`): the same settings always give
the same bytes, and any YAML loader reads back exactly the values given. `get_path(tree, path)`
reads a dotted path of a parsed recipe. Pure: no AWS.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from typing import Any

from lambdas.recipe.spec import KNOBS, TEMPLATE_FILES
from lambdas.recipe.validation import RunSettings
from lambdas.recipe.yaml_subset import YamlSubsetError, emit_yaml_subset, parse_yaml_subset


def recipe_values(settings: RunSettings) -> dict[str, str | int | float | bool]:
    """Every recipe path a run sets, with its value. All other template values stay as written."""
    values: dict[str, str | int | float | bool] = {
        "run.name": settings.run_name,
        "run.mlflow_run_name": settings.run_name,
        "run.model_name_or_path": settings.model_name_or_path,
        "run.replicas": settings.training_instance_count,
        # The recipe's own "no validation data" is "": it is a file field, not a parameter value.
        "run.validation_data_s3_path": (
            settings.validation_data_s3_uri if settings.has_validation_data else ""
        ),
        # Save once, at the end: the final checkpoint is the one the next run starts from.
        "training_config.save_steps": settings.max_steps,
    }
    by_name = {knob.name: knob for knob in KNOBS}
    for name, value in settings.knob_values().items():
        values[by_name[name].path] = value
    return values


@functools.cache
def _template(technique: str) -> dict[str, Any]:
    path = TEMPLATE_FILES[technique]
    return parse_yaml_subset(path.read_text(encoding="utf-8"), source=path.name)


def load_template(technique: str) -> dict[str, Any]:
    """The technique's template as nested dicts (a fresh copy each call)."""
    return copy.deepcopy(_template(technique))


def get_path(tree: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path; KeyError names the missing part."""
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(f"recipe has no {path} (missing at {part!r})")
        node = node[part]
    return node


def set_path(tree: dict[str, Any], path: str, value: object, source: str) -> None:
    *parents, leaf = path.split(".")
    node = tree
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            raise YamlSubsetError(f"{source} has no mapping {part!r} on the way to {path}")
        node = child
    if leaf not in node or type(node[leaf]) is not type(value):
        # A template and recipe_spec.KNOBS that disagree are a build defect, not a bad run.
        raise YamlSubsetError(
            f"{source} must hold {path} as a {type(value).__name__} for the run to set it"
        )
    node[leaf] = value


def render_recipe(settings: RunSettings, *, mlflow: Mapping[str, str] | None = None) -> bytes:
    """The run's recipe file: the technique's template with `recipe_values(settings)` set.

    `mlflow`, when the environment tracks experiments, holds `tracking_uri` (the tracking
    server's ARN) and `experiment_name` for `run.mlflow_tracking_uri` and
    `run.mlflow_experiment_name`; without it the template's values stay (no tracking).
    Deterministic: the same settings give the same bytes (template key order, fixed number
    formats, no timestamps).
    """
    tree = load_template(settings.technique)
    source = settings.template_file.name
    values = recipe_values(settings)
    if mlflow is not None:
        values["run.mlflow_tracking_uri"] = mlflow["tracking_uri"]
        values["run.mlflow_experiment_name"] = mlflow["experiment_name"]
    for path, value in values.items():
        set_path(tree, path, value, source)
    header = f"# Nova 2 Lite SFT recipe, rendered from {source} by the prepare_recipe step.\n"
    return (header + emit_yaml_subset(tree)).encode("ascii")
