"""The `serving` object of an environment in cdk.json: parsed, checked, and off when absent."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from pipeline.config import CDK_JSON, CONTEXT_KEY, ConfigError, load_environments
from pipeline.serving_config import ServingConfig


@pytest.fixture
def context() -> dict[str, Any]:
    document = json.loads(CDK_JSON.read_text(encoding="utf-8"))
    return copy.deepcopy(document["context"][CONTEXT_KEY])


def test_the_repository_serves_approved_checkpoints_and_takes_old_ones_down(
    context: dict[str, Any],
) -> None:
    for env in load_environments(context).environments.values():
        assert env.serving == ServingConfig(
            deploy="on_approval", take_down=("rejected", "superseded"), delete_custom_model=False
        )
        assert env.serving.enabled
        assert env.serving.take_down_rejected
        assert env.serving.take_down_superseded


def test_an_environment_without_serving_serves_nothing(context: dict[str, Any]) -> None:
    del context["environments"]["dev"]["serving"]
    env = load_environments(context).environment("dev")
    assert env.serving == ServingConfig()
    assert not env.serving.enabled


@pytest.mark.parametrize(
    ("serving", "expected"),
    [
        ({"deploy": "always"}, "serving.deploy must be one of off, on_approval, got 'always'"),
        ({"take_down": "rejected"}, "serving.take_down must be a list of rejected, superseded"),
        ({"take_down": ["replaced"]}, "serving.take_down must be a list of rejected, superseded"),
        ({"delete_custom_model": "yes"}, "serving.delete_custom_model must be true or false"),
        ({"deploy": "off", "endpoint": 1}, r"serving has unknown key\(s\) endpoint"),
        ([], "serving must be an object"),
    ],
)
def test_bad_serving_values_name_the_key(
    context: dict[str, Any], serving: Any, expected: str
) -> None:
    context["environments"]["staging"]["serving"] = serving
    with pytest.raises(ConfigError, match=expected) as err:
        load_environments(context)
    assert "nova-sft.environments.staging" in str(err.value)


def test_serving_in_a_region_without_nova_import_stops_synth(context: dict[str, Any]) -> None:
    # ap-northeast-1 has the training image, but Bedrock documents no Nova checkpoint import there.
    context["environments"]["prod"]["region"] = "ap-northeast-1"
    with pytest.raises(ConfigError, match=r"serving.deploy is on_approval but region"):
        load_environments(context)
    context["environments"]["prod"]["serving"]["deploy"] = "off"
    assert load_environments(context).environment("prod").region == "ap-northeast-1"
