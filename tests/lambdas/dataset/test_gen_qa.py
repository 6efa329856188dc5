"""The evaluation data's format (gen_qa), through the streaming engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lambdas.dataset.gen_qa import MAX_CONTEXT_TOKENS, validate_gen_qa_lines

SAMPLE = Path(__file__).resolve().parents[3] / "pipeline" / "rehearsal" / "sample_data"


def line(**fields: object) -> str:
    return json.dumps(fields)


def rules(lines: list[str]) -> list[tuple[int, str, str]]:
    report = validate_gen_qa_lines(lines)
    return [(f.line, f.path, f.rule) for f in report.findings]


def test_the_rehearsal_sample_passes_without_findings() -> None:
    report = validate_gen_qa_lines(SAMPLE.joinpath("gen_qa.jsonl").read_bytes().splitlines())
    assert report.ok
    assert report.total_findings == 0
    assert report.samples == 20
    assert report.data_format == "gen_qa"
    assert report.parts["system"] > 0
    assert report.parts["metadata"] > 0


def test_every_optional_field_is_accepted() -> None:
    sample = line(query="q", response="r", system="s", images=[], metadata={"k": 1})
    assert rules([sample]) == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"response": "r"}, (1, "$.query", "field.missing")),
        ({"query": "q"}, (1, "$.response", "field.missing")),
        ({"query": 3, "response": "r"}, (1, "$.query", "field.type")),
        ({"query": "q", "response": None}, (1, "$.response", "field.null")),
        ({"query": "  ", "response": "r"}, (1, "$.query", "text.empty")),
        ({"query": "q", "response": "r", "system": ["s"]}, (1, "$.system", "field.type")),
        ({"query": "q", "response": "r", "images": "a.png"}, (1, "$.images", "field.type")),
        ({"query": "q", "response": "r", "metadata": None}, (1, "$.metadata", "field.null")),
    ],
)
def test_a_broken_field_is_an_error_at_its_path(
    fields: dict[str, object], expected: tuple[int, str, str]
) -> None:
    report = validate_gen_qa_lines([json.dumps(fields)])
    assert not report.ok
    assert expected in [(f.line, f.path, f.rule) for f in report.findings]


def test_an_unknown_field_is_a_warning_and_strict_makes_it_an_error() -> None:
    sample = line(query="q", response="r", answer="x")
    assert validate_gen_qa_lines([sample]).ok
    assert [f.rule for f in validate_gen_qa_lines([sample]).findings] == ["field.unknown"]
    assert not validate_gen_qa_lines([sample], strict=True).ok


def test_a_context_over_the_documented_tokens_is_a_warning() -> None:
    long = line(query="x" * (MAX_CONTEXT_TOKENS * 4 - 9), system="y" * 10, response="r")
    short = line(query="x" * (MAX_CONTEXT_TOKENS * 4 - 10), system="y" * 10, response="r")
    assert rules([short]) == []
    report = validate_gen_qa_lines([long])
    assert report.ok
    assert [(f.rule, f.severity) for f in report.findings] == [("context.length", "warning")]


def test_an_empty_file_is_refused() -> None:
    report = validate_gen_qa_lines([])
    assert not report.ok
    assert [f.rule for f in report.findings] == ["samples.min"]


def test_lines_that_are_not_objects_are_errors() -> None:
    assert [r for _, _, r in rules(["[1]", "{bad"])] == ["json.not_object", "json.invalid"]


def test_a_line_that_is_not_an_object_is_told_the_gen_qa_fields() -> None:
    (finding,) = validate_gen_qa_lines(["[1]"]).findings
    assert '"query" and "response"' in finding.message
    assert "messages" not in finding.message
