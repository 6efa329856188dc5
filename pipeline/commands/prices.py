"""Instance-hour and cost estimates for a training run, from a price table the user can replace.

The estimate is an upper bound: a training job is billed per instance-second while it runs and
never runs longer than `MaxRuntimeSeconds`, so the bound is `count x MaxRuntimeSeconds` hours.
How long a run really takes depends on the data and steps, which nothing here can know.

`DEFAULT_PRICES` holds approximate on-demand SageMaker training prices in USD per instance-hour.
They are not verified against AWS's price list and prices change: pass your own table with
`start --prices FILE.json`, a JSON object `{"<region>": {"<instance type>": <USD per hour>}}`
(docs/decisions/0009-operator-commands.md). An instance type with no price gives an estimate
of instance-hours only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Approximate list prices (USD per instance-hour, on-demand SageMaker training). Unverified.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "us-east-1": {"ml.p5.48xlarge": 113.07, "ml.p4d.24xlarge": 37.69},
    "us-west-2": {"ml.p5.48xlarge": 113.07, "ml.p4d.24xlarge": 37.69},
}


# An evaluation job takes about 20 to 30 minutes on one instance (NOVA_FACTS 7): an estimate, not
# a bound; its bound is the job's time limit (pipeline.evaluation_step).
TYPICAL_EVALUATION_SECONDS = 30 * 60


@dataclass(frozen=True)
class EvaluationEstimate:
    """The evaluation job after training: one instance, typically half an hour, at most
    `max_runtime_seconds`. Dollar figures are None when no price is known."""

    instance_type: str
    max_runtime_seconds: int
    usd_per_hour: float | None
    typical_seconds: int = TYPICAL_EVALUATION_SECONDS

    def _usd(self, seconds: int) -> float | None:
        return None if self.usd_per_hour is None else round(seconds / 3600 * self.usd_per_hour, 2)

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance_type": self.instance_type,
            "instance_count": 1,
            "typical_instance_hours": round(self.typical_seconds / 3600, 2),
            "max_instance_hours": round(self.max_runtime_seconds / 3600, 2),
            "typical_usd": self._usd(self.typical_seconds),
            "max_usd": self._usd(self.max_runtime_seconds),
        }

    def describe(self) -> str:
        shape = (
            f"evaluation: 1 x {self.instance_type}, about {self.typical_seconds / 3600:.1f} h "
            f"(an estimate; at most {self.max_runtime_seconds / 3600:.0f} h)"
        )
        typical, most = self._usd(self.typical_seconds), self._usd(self.max_runtime_seconds)
        if typical is None or most is None:
            return f"{shape}; no price known for {self.instance_type}: pass --prices"
        return f"{shape}, about ${typical:,.2f}, at most ${most:,.2f}"


class PriceTableError(ValueError):
    """The price table file is unreadable or malformed; the message names the file and fix."""


@dataclass(frozen=True)
class Estimate:
    """The most a run can cost. `usd_per_hour` and `max_usd` are None when no price is known."""

    instance_type: str
    instance_count: int
    max_runtime_seconds: int
    usd_per_hour: float | None
    # The evaluation job, when the run evaluates (EvaluationTask is not none).
    evaluation: EvaluationEstimate | None = None

    @property
    def max_instance_hours(self) -> float:
        return self.instance_count * self.max_runtime_seconds / 3600

    @property
    def max_usd(self) -> float | None:
        if self.usd_per_hour is None:
            return None
        return round(self.max_instance_hours * self.usd_per_hour, 2)

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance_type": self.instance_type,
            "instance_count": self.instance_count,
            "max_runtime_seconds": self.max_runtime_seconds,
            "max_instance_hours": round(self.max_instance_hours, 2),
            "usd_per_instance_hour": self.usd_per_hour,
            "max_usd": self.max_usd,
            "evaluation": None if self.evaluation is None else self.evaluation.to_dict(),
        }

    def describe(self) -> str:
        text = self._describe_training()
        if self.evaluation is not None:
            text += "; then " + self.evaluation.describe()
        return text

    def _describe_training(self) -> str:
        hours = f"at most {self.max_instance_hours:,.1f} instance-hours"
        shape = f"{self.instance_count} x {self.instance_type} for up to "
        shape += f"{self.max_runtime_seconds / 3600:,.1f} h"
        if self.max_usd is None:
            return f"{hours} ({shape}); no price known for {self.instance_type}: pass --prices"
        return f"{hours} ({shape}), at most ${self.max_usd:,.2f} at ${self.usd_per_hour:,.2f}/h"


def load_prices(path: Path) -> dict[str, dict[str, float]]:
    """Read a price table file; PriceTableError says what is wrong with it."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PriceTableError(f"price table {path} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PriceTableError(f"price table {path} is not readable JSON ({error})") from None
    shape = 'expected {"<region>": {"<instance type>": <USD per hour>}}'
    if not isinstance(document, dict):
        raise PriceTableError(f"price table {path}: {shape}")
    table: dict[str, dict[str, float]] = {}
    for region, prices in document.items():
        if not isinstance(prices, dict):
            raise PriceTableError(f"price table {path}: region {region!r}: {shape}")
        table[region] = {}
        for instance_type, price in prices.items():
            valid = isinstance(price, int | float) and not isinstance(price, bool)
            if not valid or not math.isfinite(price) or price < 0:
                raise PriceTableError(
                    f"price table {path}: {region}/{instance_type} must be a non-negative "
                    f"number of USD per instance-hour, got {price!r}"
                )
            table[region][instance_type] = float(price)
    return table


def estimate(
    *,
    region: str,
    instance_type: str,
    instance_count: int,
    max_runtime_seconds: int,
    prices: dict[str, dict[str, float]] | None = None,
    evaluation_instance_type: str | None = None,
) -> Estimate:
    """The run's upper-bound estimate from `prices` (default: DEFAULT_PRICES), with its
    evaluation job when `evaluation_instance_type` is given."""
    from pipeline.evaluation_step import EVALUATION_MAX_RUNTIME_SECONDS

    table = DEFAULT_PRICES if prices is None else prices
    evaluation = (
        None
        if evaluation_instance_type is None
        else EvaluationEstimate(
            instance_type=evaluation_instance_type,
            max_runtime_seconds=EVALUATION_MAX_RUNTIME_SECONDS,
            usd_per_hour=table.get(region, {}).get(evaluation_instance_type),
        )
    )
    return Estimate(
        instance_type=instance_type,
        instance_count=instance_count,
        max_runtime_seconds=max_runtime_seconds,
        usd_per_hour=table.get(region, {}).get(instance_type),
        evaluation=evaluation,
    )
