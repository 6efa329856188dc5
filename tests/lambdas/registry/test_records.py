"""What a registered checkpoint records and replays (lambdas/registry/records.py), against
moto over HTTP."""

from __future__ import annotations

import hashlib
from typing import Any

from lambdas.recipe import RUN_KEYS, render_recipe, validate_run
from lambdas.recipe.spec import LORA
from lambdas.registry import CheckpointRecord, find_checkpoint
from tests.lambdas.test_register_checkpoint import GROUP, SOURCE_PACKAGE


def test_a_recorded_none_validation_uri_is_not_replayed() -> None:
    record = CheckpointRecord(
        model_package_arn=SOURCE_PACKAGE,
        version=3,
        approval_status="Approved",
        creation_time=None,
        metadata={"Technique": LORA, "ValidationDataS3Uri": "none", "TrainDataS3Uri": "s3://b/k"},
    )
    assert record.replay_parameters() == {"Technique": LORA, "TrainDataS3Uri": "s3://b/k"}


def test_replay_parameters_render_the_same_recipe(
    clients: tuple[Any, Any], chain: list[CheckpointRecord]
) -> None:
    sm, _ = clients
    for recorded in chain:
        record = find_checkpoint(sm, GROUP, recorded.checkpoint_uri)
        assert record is not None
        parameters = record.replay_parameters()
        assert parameters["ModelNameOrPath"] == record.parent
        assert parameters["TrainDataS3Uri"] == "s3://data-bucket/train/part-0.jsonl"
        recipe_parameters = {k: v for k, v in parameters.items() if k in RUN_KEYS}
        settings = validate_run({**recipe_parameters, "RunName": record.metadata["RunName"]})
        sha = hashlib.sha256(render_recipe(settings)).hexdigest()
        assert sha == record.metadata["RecipeSha256"], record.training_job_name
