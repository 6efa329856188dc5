"""What registration reads from the run's recipe file, and its check against the request."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lambdas.recipe.render import get_path
from lambdas.recipe.spec import FULL_RANK, LORA
from lambdas.recipe.validation import applicable_knobs
from lambdas.recipe.yaml_subset import YamlSubsetError, format_float, parse_yaml_subset
from lambdas.registry.errors import RegistrationError, s3_read_error, split_s3_uri
from lambdas.registry.request import RegistrationRequest

# A recipe is about 1.5 kB; this bounds what a wrong RecipeS3Uri can make the function read.
MAX_RECIPE_BYTES = 256 * 1024
_PEFT_TO_TECHNIQUE = {"lora": LORA, "null": FULL_RANK}


def _recipe_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_float(value)
    return str(value)


@dataclass(frozen=True)
class RecipeFacts:
    """What registration takes from the run's recipe file."""

    sha256: str
    technique: str
    parent: str
    run_name: str
    replicas: int
    validation_data_uri: str
    hyperparameters: dict[str, str]


def read_recipe(s3: Any, uri: str) -> RecipeFacts:
    """Read the run's recipe (at most MAX_RECIPE_BYTES) and take its facts."""
    bucket, key = split_s3_uri(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            data = body.read(MAX_RECIPE_BYTES + 1)
        finally:
            body.close()
    except ClientError as error:
        raise s3_read_error(error, uri, "RecipeS3Uri must be the prepare step's output") from error
    if len(data) > MAX_RECIPE_BYTES:
        raise RegistrationError(f"{uri} is over {MAX_RECIPE_BYTES} bytes: it is not a recipe")
    try:
        tree = parse_yaml_subset(data.decode("utf-8"), source=uri)
        scheme = get_path(tree, "training_config.peft.peft_scheme")
        technique = _PEFT_TO_TECHNIQUE[scheme]
        facts = RecipeFacts(
            sha256=hashlib.sha256(data).hexdigest(),
            technique=technique,
            parent=str(get_path(tree, "run.model_name_or_path")),
            run_name=str(get_path(tree, "run.name")),
            replicas=int(get_path(tree, "run.replicas")),
            validation_data_uri=str(get_path(tree, "run.validation_data_s3_path")),
            hyperparameters={
                knob.name: _recipe_value(get_path(tree, knob.path))
                for knob in applicable_knobs(technique)
            },
        )
    except (UnicodeDecodeError, YamlSubsetError, KeyError, TypeError, ValueError) as error:
        raise RegistrationError(
            f"{uri} is not a recipe rendered by the prepare step ({error})"
        ) from error
    return facts


def check_recipe(request: RegistrationRequest, facts: RecipeFacts) -> None:
    """The recipe must be the one this run trained with; a mismatch is a wiring defect."""
    problems = []
    if request.recipe_sha256 and request.recipe_sha256 != facts.sha256:
        problems.append(f"its sha256 is {facts.sha256}, not RecipeSha256 {request.recipe_sha256}")
    if facts.technique != request.technique:
        problems.append(f"it trains {facts.technique}, not Technique {request.technique}")
    if facts.parent != request.parent:
        problems.append(f"it starts from {facts.parent}, not ModelNameOrPath {request.parent}")
    if request.validation_data_uri and request.validation_data_uri != facts.validation_data_uri:
        problems.append(
            f"its validation data is {facts.validation_data_uri!r}, not ValidationDataS3Uri "
            f"{request.validation_data_uri}"
        )
    if problems:
        raise RegistrationError(
            f"{request.recipe_uri} does not match the register step's inputs: "
            + "; ".join(problems)
            + ". Pass the same run's values to both steps."
        )
