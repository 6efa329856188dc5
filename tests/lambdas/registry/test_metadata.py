"""The registry's rules on metadata values (lambdas/registry/metadata.py). No AWS."""

from __future__ import annotations

import pytest

from lambdas.registry import metadata_problem


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("s3://bucket/key_1.json", None),
        ("ünïcode letters and spaces", None),
        ("", "is 0 characters"),
        ("x" * 257, "is 257 characters"),
        ("a,b", "holds ','"),
        ('say "hi"', "holds '\"'"),
    ],
)
def test_metadata_values_follow_the_registry_rules(value: str, problem: str | None) -> None:
    found = metadata_problem("Key", value)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found
