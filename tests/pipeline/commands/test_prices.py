"""The run estimate includes the evaluation job when the run evaluates."""

from __future__ import annotations

from pipeline.commands.prices import TYPICAL_EVALUATION_SECONDS, estimate
from pipeline.evaluation_step import EVALUATION_MAX_RUNTIME_SECONDS

PRICES = {"us-east-1": {"ml.p5.48xlarge": 100.0}}


def test_a_run_without_evaluation_has_no_evaluation_estimate() -> None:
    plan = estimate(
        region="us-east-1",
        instance_type="ml.p5.48xlarge",
        instance_count=4,
        max_runtime_seconds=3600,
        prices=PRICES,
    )
    assert plan.evaluation is None
    assert plan.to_dict()["evaluation"] is None
    assert "evaluation" not in plan.describe()


def test_an_evaluating_run_adds_one_instance_for_about_half_an_hour() -> None:
    plan = estimate(
        region="us-east-1",
        instance_type="ml.p5.48xlarge",
        instance_count=4,
        max_runtime_seconds=3600,
        prices=PRICES,
        evaluation_instance_type="ml.p5.48xlarge",
    )
    assert plan.max_usd == 400.0  # training's bound is unchanged
    evaluation = plan.to_dict()["evaluation"]
    assert evaluation["instance_count"] == 1
    assert evaluation["typical_usd"] == round(TYPICAL_EVALUATION_SECONDS / 3600 * 100.0, 2)
    assert evaluation["max_usd"] == round(EVALUATION_MAX_RUNTIME_SECONDS / 3600 * 100.0, 2)
    assert "then evaluation: 1 x ml.p5.48xlarge, about 0.5 h (an estimate" in plan.describe()


def test_an_unpriced_evaluation_instance_says_so() -> None:
    plan = estimate(
        region="eu-west-1",
        instance_type="ml.p5.48xlarge",
        instance_count=4,
        max_runtime_seconds=3600,
        evaluation_instance_type="ml.p5.48xlarge",
    )
    assert plan.evaluation is not None
    assert plan.evaluation.to_dict()["typical_usd"] is None
    assert "no price known for ml.p5.48xlarge: pass --prices" in plan.evaluation.describe()
