"""The rule registry: the policy table in docs/ matches it, and its message helpers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lambdas.dataset.rules import (
    ERROR,
    RESERVED_ALTERNATIVES,
    RESERVED_STRINGS,
    RULE_TABLE,
    RULES,
    SEVERITY,
    WARNING,
    article,
    quote,
)

POLICY = Path(__file__).resolve().parents[3] / "docs" / "dataset-rules.md"
ROW = re.compile(r"^\| `([a-z_.]+)` \| (\w+) \| ([^|]+) \| ([^|]+) \|$")


def policy_rows() -> list[tuple[str, str, str, str]]:
    rows = []
    for line in POLICY.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            rule, severity, aws, why = (part.strip() for part in match.groups())
            rows.append((rule, severity, aws, why))
    return rows


def test_the_policy_table_lists_every_rule_with_the_code_s_severity_in_order() -> None:
    documented = [(rule, severity) for rule, severity, _, _ in policy_rows()]
    assert documented == [(rule, severity) for rule, severity, _ in RULE_TABLE]


def test_every_policy_row_says_what_aws_s_validator_does_and_why() -> None:
    for rule, _, aws, why in policy_rows():
        assert len(aws) > 5, rule
        assert len(why) > 20, rule


def test_severities_are_error_or_warning_and_ids_are_unique() -> None:
    assert len(RULES) == len(RULE_TABLE)
    assert set(SEVERITY.values()) == {ERROR, WARNING}
    # The differences from AWS's validator decided as warnings (docs/dataset-rules.md).
    assert sorted(rule for rule, severity in SEVERITY.items() if severity == WARNING) == [
        "context.length",
        "field.unknown",
        "line.blank",
        "parts.consistency",
        "schema.version",
    ]


def test_every_reserved_string_has_its_own_alternatives() -> None:
    assert list(RESERVED_ALTERNATIVES) == list(RESERVED_STRINGS)
    assert len(set(RESERVED_ALTERNATIVES.values())) == len(RESERVED_STRINGS)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("user", "'user'"),
        ("it's", "'it\\'s'"),
        ("a\nb", "'a\\nb'"),
        (None, "null"),
        (True, "true"),
        (7, "7"),
        ([1], "an array"),
        ({"a": 1}, "an object"),
        ("x" * 60, "'" + "x" * 35 + "...'"),
    ],
)
def test_quote_writes_json_never_a_python_repr(value: object, shown: str) -> None:
    assert quote(value) == shown


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("user turn", "a user turn"),
        ("assistant turn", "an assistant turn"),
        ("object", "an object"),
        ("array", "an array"),
        ("string", "a string"),
        ("unknown field", "an unknown field"),
        ("JSON object", "a JSON object"),
    ],
)
def test_article_follows_the_sound(word: str, expected: str) -> None:
    assert article(word) == expected
