"""Validate a run's parameters and render its Nova 2 Lite SFT recipe. Pure: no AWS, no I/O but
reading the two templates in `lambdas/recipe/templates/`.

The package's public API, re-exported from its modules:
- `validation`: `validate_run(params)` checks every parameter against the documented ranges in
  `lambdas.recipe.spec` and returns a frozen `RunSettings`, or raises `RecipeValidationError`
  listing every bad value with its allowed range. The prepare_recipe step and the operator
  commands both call it.
- `render`: `render_recipe(settings)` renders the technique's template with the run's values: the
  same settings always give the same bytes, and any YAML loader reads back exactly the values
  given.
- `yaml_subset`: `parse_yaml_subset(text)` / `emit_yaml_subset(tree)`, a strict reader and a
  deterministic writer for the YAML subset the templates use (nested mappings of double-quoted
  strings, integers, floats with a decimal point, true/false and `{}`). Lambda has no PyYAML, and
  this subset reads the same under PyYAML, OmegaConf and any YAML 1.2 loader
  (docs/decisions/0002-recipe-templates.md, docs/decisions/0016-recipe-yaml.md).
- `spec`: the documented ranges, techniques and templates (imported as `lambdas.recipe.spec`).
"""

from lambdas.recipe.render import get_path, load_template, recipe_values, render_recipe
from lambdas.recipe.validation import (
    MAX_URI_CHARS,
    REQUIRED_KEYS,
    RUN_KEYS,
    S3_URI,
    SAGEMAKER_NAME,
    RecipeValidationError,
    RunSettings,
    applicable_knobs,
    base_model_hyperparameter,
    is_s3_uri,
    knob_field,
    starts_from_checkpoint,
    validate_run,
)
from lambdas.recipe.yaml_subset import (
    YamlSubsetError,
    emit_yaml_subset,
    format_float,
    parse_yaml_subset,
)

__all__ = [
    "MAX_URI_CHARS",
    "REQUIRED_KEYS",
    "RUN_KEYS",
    "S3_URI",
    "SAGEMAKER_NAME",
    "RecipeValidationError",
    "RunSettings",
    "YamlSubsetError",
    "applicable_knobs",
    "base_model_hyperparameter",
    "emit_yaml_subset",
    "format_float",
    "get_path",
    "is_s3_uri",
    "knob_field",
    "load_template",
    "parse_yaml_subset",
    "recipe_values",
    "render_recipe",
    "starts_from_checkpoint",
    "validate_run",
]
