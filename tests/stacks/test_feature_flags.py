"""cdk.json sets every feature flag of aws-cdk-lib to its recommended value, but for the few
that docs/decisions/0011-feature-flags.md keeps at another value, each with its reason.

The synthesized cloud assembly carries aws-cdk-lib's own report of every flag (its recommended
value and the one cdk.json gives), so a library upgrade that brings new flags fails here until
they are set and their template changes reviewed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.cloud_assembly import Assembly

DECISION = Path(__file__).parents[2] / "docs" / "decisions" / "0011-feature-flags.md"

# The flags cdk.json sets to something other than the recommended value (decision 0011).
KEPT_FROM_RECOMMENDED: dict[str, Any] = {
    "@aws-cdk/core:target-partitions": ["aws"],
    "@aws-cdk/core:enableAdditionalMetadataCollection": False,
}


def flag_report(assembly: Assembly) -> dict[str, dict[str, Any]]:
    manifest = json.loads((assembly.outdir / "manifest.json").read_text(encoding="utf-8"))
    (report,) = [
        a for a in manifest["artifacts"].values() if a["type"] == "cdk:feature-flag-report"
    ]
    return dict(report["properties"]["flags"])


def test_every_feature_flag_is_configured(assembly: Assembly) -> None:
    flags = flag_report(assembly)
    assert len(flags) > 80  # the report covers the library's flags, not a handful
    unset = sorted(name for name, flag in flags.items() if "userValue" not in flag)
    assert unset == [], f"set these in cdk.json (cdk flags --unstable=flags): {unset}"


def test_flags_have_their_recommended_value_but_the_recorded_exceptions(
    assembly: Assembly,
) -> None:
    flags = flag_report(assembly)
    differing = {
        name: flag["userValue"]
        for name, flag in flags.items()
        if "recommendedValue" in flag and flag.get("userValue") != flag["recommendedValue"]
    }
    assert differing == KEPT_FROM_RECOMMENDED


def test_each_exception_is_explained_in_the_decision_record() -> None:
    record = DECISION.read_text(encoding="utf-8")
    for name in KEPT_FROM_RECOMMENDED:
        assert f"`{name}`" in record, name
