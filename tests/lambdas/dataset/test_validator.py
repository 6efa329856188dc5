"""The bedrock-conversation-2024 validator: one valid and one invalid case per rule, the report,
line splitting, and property tests that no input crashes it."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.dataset import converse_turns, validator
from lambdas.dataset.converse import ConverseFormat
from lambdas.dataset.validator import (
    MAX_SAMPLES,
    MEDIA_FORMATS,
    RESERVED_STRINGS,
    RULES,
    SEVERITY,
    Finding,
    Report,
    Validator,
    check_object_key,
    validate_lines,
)

SAMPLE_DATA = (
    Path(__file__).resolve().parents[3] / "pipeline" / "rehearsal" / "sample_data" / "train.jsonl"
)
BUCKET = "data-bucket"


# Building samples ----------------------------------------------------------------------------


def text(value: str) -> dict[str, Any]:
    return {"text": value}


def user(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks) or [text("What is 2 + 2?")]}


def assistant(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": list(blocks) or [text("4")]}


def sample(*messages: dict[str, Any], **top: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"schemaVersion": "bedrock-conversation-2024"}
    body.update(top)
    body["messages"] = list(messages) or [user(), assistant()]
    return body


def image(fmt: str = "png", uri: str = f"s3://{BUCKET}/images/a.png") -> dict[str, Any]:
    return {"image": {"format": fmt, "source": {"s3Location": {"uri": uri}}}}


def video(fmt: str = "mp4", uri: str = f"s3://{BUCKET}/videos/a.mp4") -> dict[str, Any]:
    return {"video": {"format": fmt, "source": {"s3Location": {"uri": uri}}}}


def reasoning(value: str = "Two plus two is four.") -> dict[str, Any]:
    return {"reasoningContent": {"reasoningText": {"text": value}}}


def tool_config(*names: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "tools": [
            {
                "toolSpec": {
                    "name": name,
                    "description": f"Looks up {name}.",
                    "inputSchema": {"json": schema if schema is not None else {"type": "object"}},
                }
            }
            for name in names
        ]
    }


def tool_use(use_id: str = "call_1", name: str = "track_parcel") -> dict[str, Any]:
    return {"toolUse": {"toolUseId": use_id, "name": name, "input": {"parcel": "NW-1"}}}


def tool_result(use_id: str = "call_1", **extra: Any) -> dict[str, Any]:
    return {"toolResult": {"toolUseId": use_id, "content": [{"json": {"status": "ok"}}], **extra}}


def tool_sample(
    *messages: dict[str, Any], names: tuple[str, ...] = ("track_parcel",)
) -> dict[str, Any]:
    """A tool conversation: call, result, answer (or the given messages)."""
    return sample(
        *(
            messages
            or (
                user(text("Where is parcel NW-1?")),
                assistant(tool_use()),
                user(tool_result()),
                assistant(text("It is out for delivery.")),
            )
        ),
        toolConfig=tool_config(*names),
    )


def lines(*samples: dict[str, Any] | str) -> list[str]:
    return [item if isinstance(item, str) else json.dumps(item) for item in samples]


def run(items: list[str], **options: Any) -> Report:
    options.setdefault("global_batch_size", 1)
    options.setdefault("reasoning_enabled", None)
    options.setdefault("dataset_bucket", BUCKET)
    return validate_lines(items, **options)


def line_findings(report: Report) -> list[Finding]:
    """Findings other than the sample-count ones that tiny test datasets always raise."""
    return [finding for finding in report.findings if not finding.rule.startswith("samples.")]


# One valid and one invalid case per rule ---------------------------------------------------


@dataclass
class Case:
    rule: str
    valid: list[str]
    invalid: list[str]
    path: str  # the JSON path of the invalid finding
    line: int = 1
    options: dict[str, Any] = field(default_factory=dict)


def many(count: int) -> list[str]:
    return lines(*[sample() for _ in range(count)])


ELEVEN_IMAGES = [image() for _ in range(11)]

CASES = [
    Case("line.blank", lines(sample(), sample()), lines(sample(), "  ", sample()), "$", line=2),
    Case("json.invalid", lines(sample()), ['{"schemaVersion": "bedrock-conversation-2024",'], "$"),
    Case("json.not_object", lines(sample()), ["[1, 2, 3]"], "$"),
    Case(
        "field.missing",
        lines(sample()),
        lines({"schemaVersion": "bedrock-conversation-2024"}),
        "$.messages",
    ),
    Case(
        "field.type",
        lines(sample()),
        lines({"schemaVersion": "bedrock-conversation-2024", "messages": "hello"}),
        "$.messages",
    ),
    Case(
        "field.null",
        lines(sample()),
        lines({"schemaVersion": "bedrock-conversation-2024", "messages": None}),
        "$.messages",
    ),
    Case("field.unknown", lines(sample()), lines(sample(metadata={"id": 7})), "$"),
    Case(
        "field.value",
        lines(tool_sample()),
        lines(
            tool_sample(
                user(text("Where is parcel NW-1?")),
                assistant(tool_use()),
                user(tool_result(status="failed")),
                assistant(text("I could not find it.")),
            )
        ),
        "$.messages[2].content[0].toolResult.status",
    ),
    Case(
        "schema.version",
        lines(sample()),
        lines({**sample(), "schemaVersion": "bedrock-conversation-2023"}),
        "$.schemaVersion",
    ),
    Case(
        "list.empty",
        lines(sample(system=[text("Be brief.")])),
        lines(sample(system=[])),
        "$.system",
    ),
    Case(
        "roles.invalid",
        lines(sample()),
        lines(sample({"role": "system", "content": [text("Be brief.")]}, user(), assistant())),
        "$.messages[0].role",
    ),
    Case(
        "roles.order",
        lines(sample(user(), assistant(), user(), assistant())),
        lines(sample(user(), user(), assistant())),
        "$.messages[1].role",
    ),
    Case(
        "content.block",
        lines(sample(user(text("Describe this."), image()), assistant())),
        lines(sample(user({"text": "Describe this.", **image()}), assistant())),
        "$.messages[0].content[0]",
    ),
    Case(
        "content.role",
        lines(sample(user(text("Describe this."), image()), assistant())),
        lines(sample(user(), assistant(text("Here it is."), image()))),
        "$.messages[1].content[1].image",
    ),
    Case(
        "content.reasoning_only",
        lines(sample(user(), assistant(reasoning(), text("4")))),
        lines(sample(user(), assistant(reasoning()))),
        "$.messages[1].content",
    ),
    Case(
        "text.empty",
        lines(sample()),
        lines(sample(user(text(" \n ")), assistant())),
        "$.messages[0].content[0].text",
    ),
    Case(
        "text.reserved",
        lines(sample(user(text("Reply as the agent - be polite.")), assistant())),
        lines(sample(user(text("Reply as the bot: be polite.")), assistant())),
        "$.messages[0].content[0].text",
    ),
    Case(
        "media.format",
        lines(sample(user(text("Describe this."), image("jpeg")), assistant())),
        lines(sample(user(text("Describe this."), image("jpg")), assistant())),
        "$.messages[0].content[1].image.format",
    ),
    Case(
        "media.source",
        lines(sample(user(text("Describe this."), image()), assistant())),
        lines(
            sample(
                user(text("Describe this."), {"image": {"format": "png", "source": {"bytes": ""}}}),
                assistant(),
            )
        ),
        "$.messages[0].content[1].image.source",
    ),
    Case(
        "media.uri",
        lines(sample(user(text("Describe this."), image()), assistant())),
        lines(
            sample(
                user(text("Describe this."), image(uri="https://example.com/a.png")),
                assistant(),
            )
        ),
        "$.messages[0].content[1].image.source.s3Location.uri",
    ),
    Case(
        "media.bucket",
        lines(sample(user(text("Describe this."), image()), assistant())),
        lines(
            sample(user(text("Describe this."), image(uri="s3://other-bucket/a.png")), assistant())
        ),
        "$.messages[0].content[1].image.source.s3Location.uri",
    ),
    Case(
        "media.count",
        lines(sample(user(text("Compare these."), *ELEVEN_IMAGES[:10]), assistant())),
        lines(sample(user(text("Compare these."), *ELEVEN_IMAGES), assistant())),
        "$.messages",
    ),
    Case(
        "media.mixed",
        lines(
            sample(user(text("Describe this."), video()), assistant()),
            sample(user(text("And this."), video()), assistant()),
        ),
        lines(
            sample(user(text("Describe this."), video()), assistant()),
            sample(user(text("And this."), image()), assistant()),
        ),
        "$.messages[0].content[1].image",
        line=2,
    ),
    Case(
        "reasoning.media",
        lines(sample(user(), assistant(reasoning(), text("4")))),
        lines(sample(user(text("Count them."), image()), assistant(reasoning(), text("4")))),
        "$.messages[1].content[0].reasoningContent",
    ),
    Case(
        "reasoning.enabled",
        lines(sample(user(), assistant(reasoning(), text("4")))),
        lines(sample()),
        "$.messages",
        options={"reasoning_enabled": True},
    ),
    Case(
        "tools.spec",
        lines(tool_sample()),
        lines(
            sample(
                user(text("Where is parcel NW-1?")),
                assistant(text("Let me check.")),
                toolConfig=tool_config("track_parcel", schema={"properties": {}}),
            )
        ),
        "$.toolConfig.tools[0].toolSpec.inputSchema.json",
    ),
    Case(
        "tools.duplicate_name",
        lines(tool_sample(names=("track_parcel", "cancel_parcel"))),
        lines(tool_sample(names=("track_parcel", "track_parcel"))),
        "$.toolConfig.tools[1].toolSpec.name",
    ),
    Case(
        "tools.undeclared",
        lines(tool_sample()),
        lines(tool_sample(names=("cancel_parcel",))),
        "$.messages[1].content[0].toolUse.name",
    ),
    Case(
        "tools.id",
        lines(tool_sample()),
        lines(
            tool_sample(
                user(text("Where is parcel NW-1?")),
                assistant(tool_use("call 1")),
                user(tool_result("call 1")),
                assistant(text("It is out for delivery.")),
            )
        ),
        "$.messages[1].content[0].toolUse.toolUseId",
    ),
    Case(
        "tools.duplicate_id",
        lines(
            tool_sample(
                user(text("Where are NW-1 and NW-2?")),
                assistant(tool_use("call_1"), tool_use("call_2")),
                user(tool_result("call_1"), tool_result("call_2")),
                assistant(text("Both are out for delivery.")),
            )
        ),
        lines(
            tool_sample(
                user(text("Where are NW-1 and NW-2?")),
                assistant(tool_use("call_1"), tool_use("call_1")),
                user(tool_result("call_1")),
                assistant(text("Both are out for delivery.")),
            )
        ),
        "$.messages[1].content[1].toolUse.toolUseId",
    ),
    Case(
        "tools.result_unmatched",
        lines(tool_sample()),
        lines(
            tool_sample(
                user(text("Where is parcel NW-1?")),
                assistant(tool_use("call_1")),
                user(tool_result("call_9")),
                assistant(text("It is out for delivery.")),
            )
        ),
        "$.messages[2].content[0].toolResult.toolUseId",
    ),
    Case(
        "tools.duplicate_result",
        lines(tool_sample()),
        lines(
            tool_sample(
                user(text("Where is parcel NW-1?")),
                assistant(tool_use("call_1")),
                user(tool_result("call_1"), tool_result("call_1")),
                assistant(text("It is out for delivery.")),
            )
        ),
        "$.messages[2].content[1].toolResult.toolUseId",
    ),
    Case(
        "tools.unanswered",
        # A call in the final assistant turn is the behaviour being taught: valid unanswered.
        lines(tool_sample(user(text("Where is parcel NW-1?")), assistant(tool_use()))),
        lines(
            tool_sample(
                user(text("Where is parcel NW-1?")),
                assistant(tool_use()),
                user(text("Never mind.")),
                assistant(text("All right.")),
            )
        ),
        "$.messages[1].content[0].toolUse.toolUseId",
    ),
    Case(
        "parts.consistency",
        lines(*[sample(system=[text("Be brief.")]) for _ in range(3)]),
        lines(*[sample(system=[text("Be brief.")]) for _ in range(3)], sample()),
        "$.system",
        line=4,
    ),
    Case("samples.min", many(8), many(7), "", line=0),
    Case(
        "samples.batch_size",
        many(32),
        many(31),
        "",
        line=0,
        options={"global_batch_size": 32},
    ),
]


def test_every_rule_has_a_case() -> None:
    covered = {case.rule for case in CASES}
    # Tested on their own below: they need a huge line, a huge dataset or an object key.
    covered |= {"line.too_long", "samples.max", "file.name"}
    # The evaluation data's own rule: tests/lambdas/dataset/test_gen_qa.py.
    covered |= {"context.length"}
    assert covered == set(RULES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.rule)
def test_valid_case_passes(case: Case) -> None:
    report = run(case.valid, **case.options)
    found = list(report.findings) if case.rule.startswith("samples.") else line_findings(report)
    assert found == []


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.rule)
def test_invalid_case_reports_the_rule_where_it_is_broken(case: Case) -> None:
    report = run(case.invalid, **case.options)
    hits = [finding for finding in report.findings if finding.rule == case.rule]
    assert hits, f"expected {case.rule}, got {[str(f) for f in report.findings]}"
    assert (hits[0].line, hits[0].path) == (case.line, case.path)
    assert hits[0].message
    assert hits[0].severity == SEVERITY[case.rule]
    assert report.ok is (report.errors == 0)


# Rules that need more than a table row ------------------------------------------------------


def test_a_line_over_the_size_limit_is_reported_and_the_next_line_still_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(validator, "MAX_LINE_BYTES", 2000)
    big = json.dumps(sample(user(text("x" * 3000)), assistant()))
    report = run(lines(sample(), big, "not json"))
    assert [(f.line, f.rule) for f in line_findings(report)] == [
        (2, "line.too_long"),
        (3, "json.invalid"),
    ]
    assert report.samples == 3


def test_more_than_the_maximum_number_of_samples_is_reported() -> None:
    small = json.dumps(sample())
    over = run([small] * (MAX_SAMPLES + 1))
    at_limit = run([small] * MAX_SAMPLES)
    assert over.counts_by_rule == {"samples.max": 1}
    assert at_limit.ok


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("train/train.jsonl", True),
        ("runs/2025-03_v2/train_set.jsonl", True),
        ("train/train.json", False),
        ("train/my data.jsonl", False),
        ("train/données.jsonl", False),
    ],
)
def test_object_keys_must_be_jsonl_with_safe_characters(key: str, ok: bool) -> None:
    problem = check_object_key(key)
    assert (problem is None) is ok
    if problem is not None:
        assert repr(key) in problem


def test_a_file_finding_is_kept_and_counted() -> None:
    validator = Validator(global_batch_size=1, reasoning_enabled=None)
    validator.feed_lines(many(8))
    validator.add_file_finding("s3://b/notes.txt", "file.name", "not JSON Lines")
    report = validator.finish()
    assert report.counts_by_rule == {"file.name": 1}
    assert report.findings[0].source == "s3://b/notes.txt"
    with pytest.raises(ValueError, match="unknown rule id"):
        validator.add_file_finding("s3://b/x", "no.such.rule", "x")


@pytest.mark.parametrize("token", RESERVED_STRINGS)
@pytest.mark.parametrize(
    "where",
    ["system", "user", "assistant", "reasoning", "tool_result", "tool_description"],
)
def test_reserved_strings_are_found_in_every_kind_of_text_in_any_case(
    token: str, where: str
) -> None:
    bad = f"Please read this {token.upper()} carefully"
    paths = {
        "system": ("$.system[0].text", sample(system=[text(bad)])),
        "user": ("$.messages[0].content[0].text", sample(user(text(bad)), assistant())),
        "assistant": ("$.messages[1].content[0].text", sample(user(), assistant(text(bad)))),
        "reasoning": (
            "$.messages[1].content[0].reasoningContent.reasoningText.text",
            sample(user(), assistant(reasoning(bad), text("4"))),
        ),
        "tool_result": (
            "$.messages[2].content[0].toolResult.content[0].text",
            tool_sample(
                user(text("Where is parcel NW-1?")),
                assistant(tool_use()),
                user({"toolResult": {"toolUseId": "call_1", "content": [text(bad)]}}),
                assistant(text("It is out for delivery.")),
            ),
        ),
        "tool_description": ("$.toolConfig.tools[0].toolSpec.description", tool_sample()),
    }
    path, body = paths[where]
    if where == "tool_description":
        body["toolConfig"]["tools"][0]["toolSpec"]["description"] = bad
    report = run(lines(body))
    hits = [f for f in report.findings if f.rule == "text.reserved"]
    assert [f.path for f in hits] == [path]
    assert repr(token) in hits[0].message


def test_reasoning_when_disabled_is_reported_at_the_reasoning() -> None:
    report = run(lines(sample(user(), assistant(reasoning(), text("4")))), reasoning_enabled=False)
    assert [(f.rule, f.path) for f in line_findings(report)] == [
        ("reasoning.enabled", "$.messages[1].content[0].reasoningContent")
    ]


def test_reasoning_used_in_some_samples_only_is_inconsistent_when_the_setting_is_unknown() -> None:
    with_reasoning = sample(user(), assistant(reasoning(), text("4")))
    report = run(lines(with_reasoning, sample(), with_reasoning))
    assert [(f.rule, f.line) for f in line_findings(report)] == [("parts.consistency", 2)]


def test_roles_must_end_with_the_assistant() -> None:
    report = run(lines(sample(user(), assistant(), user())))
    assert [(f.rule, f.path) for f in line_findings(report)] == [
        ("roles.order", "$.messages[2].role")
    ]


def test_tool_use_in_a_sample_without_tool_config_is_undeclared() -> None:
    report = run(lines(sample(user(text("Where is NW-1?")), assistant(tool_use()))))
    assert [f.rule for f in line_findings(report)] == ["tools.undeclared"]
    assert "no toolConfig" in line_findings(report)[0].message


def test_media_kind_is_fixed_by_the_first_sample_that_uses_media() -> None:
    report = run(
        lines(
            sample(user(text("a"), video()), assistant()),
            sample(user(text("b"), image()), assistant()),
            sample(user(text("c"), image()), assistant()),
        )
    )
    assert report.media_kind == "video"
    assert [(f.rule, f.line) for f in line_findings(report)] == [
        ("media.mixed", 2),
        ("media.mixed", 3),
    ]


def test_nan_a_byte_order_mark_and_invalid_utf8_are_invalid_json() -> None:
    validator = Validator(global_batch_size=1, reasoning_enabled=None)
    validator.feed_lines(
        ['{"messages": NaN}', "\ufeff" + json.dumps(sample()), b"\xff\xfe{}", json.dumps(sample())]
    )
    found = line_findings(validator.finish())
    assert [(f.line, f.rule) for f in found] == [
        (1, "json.invalid"),
        (2, "json.invalid"),
        (3, "json.invalid"),
    ]
    assert "byte order mark" in found[1].message
    assert "UTF-8" in found[2].message


def test_messages_never_quote_sample_text() -> None:
    private = "card 4111 1111 1111 1111 belongs to the customer"
    report = run(
        lines(
            sample(user(text(f"User: {private}")), assistant(text(" "))),
            sample(user(text(private)), user(text(private))),
        )
    )
    assert report.total_findings >= 3
    assert all("4111" not in str(finding) for finding in report.findings)


# The report -----------------------------------------------------------------------------------


def test_findings_are_capped_but_all_counted() -> None:
    report = run(["not json"] * 50, max_findings=10, global_batch_size=64)
    assert len(line_findings(report)) == 10
    assert report.counts_by_rule["json.invalid"] == 50
    assert report.total_findings == 50 + 1  # and the dataset-level finding is always kept
    assert report.findings[0].rule == "samples.batch_size"
    assert report.truncated


def test_summary_is_short_and_starts_with_the_first_findings() -> None:
    noisy = sample(user(text("Bot: " + "word " * 300)), assistant())
    report = run(["not json"] * 3 + lines(*[noisy] * 40), global_batch_size=64)
    summary = report.summary(limit=5, max_chars=600)
    assert len(summary) <= 600
    first_lines = summary.splitlines()
    assert first_lines[0].startswith("dataset invalid: 44 errors and 0 warnings in 43 samples")
    assert "samples.batch_size" in first_lines[1]
    assert "line 1 $ [json.invalid]" in first_lines[2]


def test_summary_of_a_valid_dataset() -> None:
    report = run(many(8))
    assert report.ok
    assert report.summary() == "dataset valid: 8 samples, no findings"


def test_report_to_dict_is_json_and_carries_counts_settings_and_findings() -> None:
    report = run(lines(sample(), "[]"), reasoning_enabled=False, global_batch_size=4)
    document = json.loads(json.dumps(report.to_dict()))
    assert document["ok"] is False
    assert document["samples"] == 2
    assert document["counts_by_rule"] == {
        "json.not_object": 1,
        "samples.batch_size": 1,
        "samples.min": 1,
    }
    assert document["settings"]["global_batch_size"] == 4
    assert document["settings"]["reasoning_enabled"] is False
    assert document["rules"]["json.not_object"] == RULES["json.not_object"]
    assert {"source": "", "line": 2, "path": "$", "rule": "json.not_object"}.items() <= (
        document["findings"][-1].items()
    )


def test_several_files_are_one_dataset_with_their_own_line_numbers() -> None:
    validator = Validator(global_batch_size=8, reasoning_enabled=None)
    validator.feed_lines(lines(*[sample(system=[text("Be brief.")]) for _ in range(5)]), source="a")
    validator.feed_lines(lines(sample(), sample(), sample()), source="b")
    report = validator.finish()
    assert report.samples == 8
    assert report.sources == (("a", 5), ("b", 3))
    consistency = [f for f in report.findings if f.rule == "parts.consistency"]
    assert [(f.source, f.line) for f in consistency] == [("b", 1)]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"global_batch_size": 0, "reasoning_enabled": None}, "global_batch_size"),
        ({"global_batch_size": True, "reasoning_enabled": None}, "global_batch_size"),
        ({"global_batch_size": 32, "reasoning_enabled": "yes"}, "reasoning_enabled"),
        ({"global_batch_size": 32, "reasoning_enabled": None, "max_findings": 0}, "max_findings"),
        ({"global_batch_size": 32, "reasoning_enabled": None, "dataset_bucket": ""}, "bucket"),
    ],
)
def test_bad_arguments_are_refused_by_name(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Validator(**options)


# Line splitting from raw chunks ---------------------------------------------------------------


def test_chunks_split_only_at_newlines_and_keep_line_numbers() -> None:
    good = json.dumps(sample()).encode()
    # A bare carriage return inside a line must not split it (bytes.splitlines would).
    data = good + b"\r\n" + b'{"a":\r 1}\n' + b"\n" + good
    validator = Validator(global_batch_size=1, reasoning_enabled=None)
    validator.feed_chunks([data[i : i + 7] for i in range(0, len(data), 7)], source="f")
    report = validator.finish()
    assert report.sources == (("f", 4),)
    assert sorted({(f.line, f.rule) for f in line_findings(report)}) == [
        (2, "field.missing"),
        (2, "field.unknown"),
        (2, "schema.version"),
        (3, "line.blank"),
    ]


def test_a_too_long_line_spread_over_chunks_is_dropped_not_held(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = json.dumps(sample()).encode()
    limit = len(good) + 10
    monkeypatch.setattr(validator, "MAX_LINE_BYTES", limit)
    third = b"x" * (limit // 3 + 1)  # three of these make one line over the limit
    chunks = [good + b"\n" + third, third, third, b"\n" + good, b"\n", b"w" * (limit + 1)]
    checker = Validator(global_batch_size=1, reasoning_enabled=None)
    checker.feed_chunks(chunks)
    report = checker.finish()
    assert [(f.line, f.rule) for f in line_findings(report)] == [
        (2, "line.too_long"),
        (4, "line.too_long"),
    ]
    assert report.samples == 4


def test_the_sample_dataset_is_valid() -> None:
    with SAMPLE_DATA.open(encoding="utf-8") as handle:
        report = validate_lines(handle, global_batch_size=64, reasoning_enabled=False)
    assert report.ok, report.summary(limit=10)
    assert report.samples == 64
    assert report.parts == {"system": 64, "reasoning": 0, "tools": 0, "media": 0}


def test_the_sample_dataset_is_refused_when_reasoning_is_enabled() -> None:
    with SAMPLE_DATA.open(encoding="utf-8") as handle:
        report = validate_lines(handle, global_batch_size=32, reasoning_enabled=True)
    assert report.counts_by_rule == {"reasoning.enabled": 64}


# Properties: no input crashes it, and the fast reserved-string scan is exact ------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

# Keys and values of the format, so that generated objects reach the deep checks.
FORMAT_KEYS = st.sampled_from(
    [
        "schemaVersion", "system", "toolConfig", "messages", "role", "content", "text", "image",
        "video", "document", "format", "source", "s3Location", "uri", "bucketOwner",
        "reasoningContent", "reasoningText", "toolUse", "toolResult", "toolUseId", "name",
        "input", "json", "status", "tools", "toolSpec", "description", "inputSchema", "type",
    ]
)  # fmt: skip
FORMAT_LEAVES = st.sampled_from(
    [
        "bedrock-conversation-2024", "user", "assistant", "system", "png", "jpg", "mp4", "pdf",
        f"s3://{BUCKET}/a.png", "s3://other/a b.png", "s3://other-bucket/a.png", "call_1",
        "track_parcel", "User: hi", "", "hello", "success", "object", 0, 1.5, True, None,
    ]
)  # fmt: skip
FORMAT_VALUES = st.recursive(
    FORMAT_LEAVES,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(FORMAT_KEYS, children, max_size=5)
    ),
    max_leaves=30,
)


def assert_every_outcome_is_a_finding_or_a_pass(report: Report) -> None:
    # The kept findings, the total and the per-rule counts agree; `ok` means no error.
    assert report.clean == (not report.findings)
    assert report.ok == (report.errors == 0)
    assert sum(f.severity == "error" for f in report.findings) <= report.errors
    assert len(report.findings) <= report.total_findings
    assert sum(report.counts_by_rule.values()) == report.total_findings
    for finding in report.findings:
        assert finding.rule in RULES
        assert finding.message


@settings(max_examples=150, deadline=None)
@given(st.lists(JSON_VALUES, max_size=6))
def test_random_json_lines_never_crash_it(values: list[Any]) -> None:
    report = run([json.dumps(value) for value in values], reasoning_enabled=True)
    assert_every_outcome_is_a_finding_or_a_pass(report)


# Samples shaped like the format, each field either plausible or random, to reach every check.
IDS = st.sampled_from(["call_1", "call_2", "bad id", 3]) | FORMAT_LEAVES
NAMES = st.sampled_from(["track_parcel", "cancel_parcel", "bad name"]) | FORMAT_LEAVES
LOCATIONS = st.fixed_dictionaries(
    {"uri": FORMAT_LEAVES},
    optional={"bucketOwner": st.sampled_from(["123456789012", "12345", 7])},
)
MEDIA = st.fixed_dictionaries(
    {
        "format": FORMAT_LEAVES,
        "source": st.fixed_dictionaries({"s3Location": LOCATIONS}) | FORMAT_VALUES,
    }
)
RESULT_CONTENT = st.lists(
    st.sampled_from([{"text": "ok"}, {"text": ""}, {"json": {}}, {"json": 1}, {}]), max_size=2
)
BLOCKS = st.one_of(
    st.builds(lambda value: {"text": value}, FORMAT_LEAVES | st.text(max_size=12)),
    st.builds(lambda kind, value: {kind: value}, st.sampled_from(list(MEDIA_FORMATS)), MEDIA),
    st.builds(
        lambda value: {"reasoningContent": {"reasoningText": {"text": value}}}, FORMAT_LEAVES
    ),
    st.builds(
        lambda use_id, name: {"toolUse": {"toolUseId": use_id, "name": name, "input": {}}},
        IDS,
        NAMES,
    ),
    st.builds(
        lambda use_id, content, status: {
            "toolResult": {"toolUseId": use_id, "content": content, **status}
        },
        IDS,
        RESULT_CONTENT | FORMAT_LEAVES,
        st.sampled_from([{}, {"status": "error"}, {"status": "failed"}]),
    ),
    st.dictionaries(FORMAT_KEYS, FORMAT_VALUES, max_size=2),
)
MESSAGES = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "assistant"]) | FORMAT_LEAVES,
        "content": st.lists(BLOCKS, max_size=3) | FORMAT_LEAVES,
    },
    optional={"extra": FORMAT_LEAVES},
)
SPECS = st.fixed_dictionaries(
    {
        "name": NAMES,
        "description": FORMAT_LEAVES,
        "inputSchema": st.fixed_dictionaries(
            {"json": st.sampled_from([{"type": "object"}, {}, 1])}
        ),
    }
)
SAMPLES = st.fixed_dictionaries(
    {"schemaVersion": FORMAT_LEAVES, "messages": st.lists(MESSAGES, max_size=4)},
    optional={
        "system": st.lists(BLOCKS, max_size=2) | FORMAT_LEAVES,
        "toolConfig": st.fixed_dictionaries(
            {"tools": st.lists(st.fixed_dictionaries({"toolSpec": SPECS}), max_size=3)}
        )
        | FORMAT_VALUES,
    },
)


@settings(max_examples=120, deadline=None)
@given(st.lists(SAMPLES, max_size=3))
def test_random_samples_shaped_like_the_format_never_crash_it(objects: list[Any]) -> None:
    report = run([json.dumps(item) for item in objects], reasoning_enabled=False)
    assert_every_outcome_is_a_finding_or_a_pass(report)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(), max_size=6))
def test_random_text_lines_never_crash_it(texts: list[str]) -> None:
    assert_every_outcome_is_a_finding_or_a_pass(run(texts))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_random_byte_chunks_never_crash_it(chunks: list[bytes]) -> None:
    validator = Validator(global_batch_size=1, reasoning_enabled=None)
    validator.feed_chunks(chunks)
    assert_every_outcome_is_a_finding_or_a_pass(validator.finish())


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_chunk_boundaries_do_not_change_the_report(data: st.DataObject) -> None:
    body = sample(system=[text("Be brief.")])
    choices: list[dict[str, Any] | str] = [body, sample(), "oops", ""]
    items = data.draw(st.lists(st.sampled_from(choices), max_size=8))
    blob = "\n".join(lines(*items)).encode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(blob)), max_size=6)))
    pieces = [blob[a:b] for a, b in zip([0, *cuts], [*cuts, len(blob)], strict=True)]
    by_chunks = Validator(global_batch_size=1, reasoning_enabled=None)
    by_chunks.feed_chunks(pieces)
    whole = Validator(global_batch_size=1, reasoning_enabled=None)
    whole.feed_chunks([blob])
    assert by_chunks.finish() == whole.finish()


RESERVED_PIECES = st.sampled_from(
    [*RESERVED_STRINGS, *(token.upper() for token in RESERVED_STRINGS), "User :", "<img>", "["]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=6) | RESERVED_PIECES, min_size=1, max_size=8))
def test_reserved_strings_are_reported_exactly_when_present_in_any_case(
    pieces: list[str],
) -> None:
    value = "x" + "".join(pieces)
    report = run(lines(sample(user(text(value)), assistant())))
    expected = [token for token in RESERVED_STRINGS if token in value.lower()]
    hits = [f for f in report.findings if f.rule == "text.reserved"]
    assert bool(hits) == bool(expected)
    if hits:
        assert all(repr(token) in hits[0].message for token in expected)
        # Exactly the expected tokens, no others, in RESERVED_STRINGS order.
        listed = ", ".join(map(repr, expected))
        assert f"the reserved string(s) {listed} (matched in any case)" in hits[0].message
    assert validator.reserved_in(value) == expected


def test_deleting_any_key_of_a_valid_sample_is_a_finding() -> None:
    # Except optional parts and keys inside free-form JSON (a tool's input, a JSON result).
    rich = tool_sample()
    rich["system"] = [text("Be brief.")]
    paths: list[list[Any]] = []

    def walk(node: Any, trail: list[Any]) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                paths.append([*trail, key])
                walk(child, [*trail, key])
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, [*trail, index])

    walk(rich, [])
    for trail in paths:
        broken = copy.deepcopy(rich)
        parent = broken
        for step in trail[:-1]:
            parent = parent[step]
        del parent[trail[-1]]
        found = line_findings(run(lines(broken)))
        free_form = "input" in trail[:-1] or ("toolResult" in trail and "json" in trail[:-1])
        if trail == ["system"] or free_form:
            assert found == [], trail
        else:
            assert found, trail


# Null and empty at every level -------------------------------------------------------------


def rich_samples() -> list[dict[str, Any]]:
    """Valid samples that between them hold every field of the format once."""
    tools = tool_sample()
    tools["system"] = [text("Be brief.")]
    tools["messages"][3]["content"].insert(0, reasoning())
    tools["messages"][2]["content"][0]["toolResult"]["content"].append(text("Out for delivery."))
    tools["messages"][2]["content"][0]["toolResult"]["status"] = "success"
    media = sample(user(text("Describe this."), image()), assistant())
    media["messages"][0]["content"][1]["image"]["source"]["s3Location"]["bucketOwner"] = (
        "123456789012"
    )
    document = {
        "document": {"format": "pdf", "source": {"s3Location": {"uri": f"s3://{BUCKET}/a.pdf"}}}
    }
    return [
        tools,
        media,
        sample(user(text("Summarise this."), document), assistant()),
        sample(user(text("And this clip?"), video()), assistant()),
    ]


def every_path(node: Any, trail: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every value under `node`, except inside free-form JSON (tool input, JSON tool
    results, input schemas), which the format does not constrain."""
    if trail and trail[-1] in ("input", "json"):
        return []
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    found: list[tuple[Any, ...]] = []
    for key, child in children:
        found.append((*trail, key))
        found.extend(every_path(child, (*trail, key)))
    return found


def json_path(trail: tuple[Any, ...]) -> str:
    return "$" + "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in trail)


def replaced(body: dict[str, Any], trail: tuple[Any, ...], value: Any) -> dict[str, Any]:
    broken = copy.deepcopy(body)
    parent = broken
    for step in trail[:-1]:
        parent = parent[step]
    parent[trail[-1]] = value
    return broken


NULL_CASES = [
    pytest.param(body, trail, id=json_path(trail))
    for body in rich_samples()
    for trail in every_path(body)
]


def test_the_rich_samples_are_valid() -> None:
    report = run(lines(*rich_samples()))
    assert [
        (f.rule, f.path)
        for f in line_findings(report)
        if f.rule not in ("parts.consistency", "media.mixed")
    ] == []


@pytest.mark.parametrize(("body", "trail"), NULL_CASES)
def test_null_is_a_finding_of_its_own_at_every_level(
    body: dict[str, Any], trail: tuple[Any, ...]
) -> None:
    report = run(lines(replaced(body, trail, None)))
    nulls = [f for f in report.findings if f.rule == "field.null"]
    assert [f.path for f in nulls] == [json_path(trail)]
    assert nulls[0].severity == "error"
    assert not report.ok
    assert "None" not in nulls[0].message


def value_at(body: dict[str, Any], trail: tuple[Any, ...]) -> Any:
    node: Any = body
    for step in trail:
        node = node[step]
    return node


EMPTY_LIST_CASES = [
    pytest.param(body, trail, id=json_path(trail))
    for body in rich_samples()
    for trail in every_path(body)
    if isinstance(value_at(body, trail), list)
]


def test_every_list_of_the_format_is_covered() -> None:
    covered = {re.sub(r"\[\d+\]", "[*]", str(case.id)) for case in EMPTY_LIST_CASES}
    assert covered == {
        "$.system",
        "$.toolConfig.tools",
        "$.messages",
        "$.messages[*].content",
        "$.messages[*].content[*].toolResult.content",
    }


@pytest.mark.parametrize(("body", "trail"), EMPTY_LIST_CASES)
def test_an_empty_list_is_reported_at_every_level(
    body: dict[str, Any], trail: tuple[Any, ...]
) -> None:
    report = run(lines(replaced(body, trail, [])))
    empty = [f for f in report.findings if f.rule == "list.empty"]
    assert [f.path for f in empty] == [json_path(trail)]
    assert not report.ok


# Messages say exactly what is wrong ---------------------------------------------------------


def messages_of(report: Report, rule: str) -> list[str]:
    return [f.message for f in report.findings if f.rule == rule]


def test_the_last_turn_is_named_by_its_role_never_by_a_python_value() -> None:
    ends_with_user = run(lines(sample(user(), assistant(), user())))
    assert messages_of(ends_with_user, "roles.order") == [
        "the last turn is a user turn: a sample ends with the assistant turn it teaches; add one "
        "or drop the trailing user turn"
    ]
    # A broken last turn is reported as what it is, not as "the last turn is None".
    broken_turns: list[Any] = [None, {"role": None, "content": [text("4")]}, {"content": []}]
    for last in broken_turns:
        report = run(lines(sample(user(), assistant(), last)))
        assert messages_of(report, "roles.order") == []
        assert report.findings
        assert all("None" not in f.message for f in report.findings)


def test_no_message_holds_a_python_repr() -> None:
    odd = [None, True, False, 7, 1.5, [1], {"a": 1}]
    bodies = [
        *(sample({"role": value, "content": [text("hi")]}, assistant()) for value in odd),
        *(sample(user({"image": {"format": value, "source": {}}}), assistant()) for value in odd),
        *(
            tool_sample(
                user(text("Where?")),
                assistant(tool_use()),
                user(tool_result(status=value)),
                assistant(text("Here.")),
            )
            for value in odd
        ),
        *({"schemaVersion": value, "messages": [user(), assistant()]} for value in odd),
    ]
    report = run(lines(*bodies), max_findings=10_000)
    assert report.total_findings >= len(bodies)
    for finding in report.findings:
        for python in ("None", "True", "False", "[1]", "{'a'"):
            assert python not in finding.message, str(finding)


@pytest.mark.parametrize(
    ("body", "rule", "expected"),
    [
        (
            sample(user(reasoning(), text("Why?")), assistant()),
            "content.role",
            "reasoningContent blocks belong in assistant turns only: move the block to an "
            "assistant turn",
        ),
        (
            sample(user(), assistant(text("Look."), image())),
            "content.role",
            "image blocks belong in user turns only: move the block to a user turn",
        ),
        (sample(user({"text": {"a": 1}}), assistant()), "field.type", "found an object"),
        (sample(user({"text": [1]}), assistant()), "field.type", "found an array"),
        (sample(user({"text": 5}), assistant()), "field.type", "found a number"),
        (
            lines(sample(user(), user(), assistant()))[0],
            "roles.order",
            "turn 1 is a user turn but an assistant turn was expected",
        ),
        ("[]", "json.not_object", "the line is a JSON array;"),
        ("null", "json.not_object", "the line is null;"),
        ('"text"', "json.not_object", "the line is a JSON string;"),
    ],
)
def test_messages_use_the_right_article(body: Any, rule: str, expected: str) -> None:
    report = run([body] if isinstance(body, str) else lines(body))
    assert any(expected in message for message in messages_of(report, rule)), messages_of(
        report, rule
    )


@pytest.mark.parametrize(
    ("found", "alternative"),
    [
        ("User:", "for 'user:' write 'User -' or 'Customer -'"),
        ("Bot:", "for 'bot:' write 'Bot -' or 'Agent -'"),
        ("ASSISTANT:", "for 'assistant:' write 'Assistant -' or 'Agent -'"),
        ("System:", "for 'system:' write 'System -' or 'Instructions -'"),
        ("<image>", "for '<image>' write '[image]'"),
        ("<Video>", "for '<video>' write '[video]'"),
        ("[EOS]", "for '[eos]' write nothing: delete it"),
        ("Thought:", "for 'thought:' write 'Thinking -'"),
        ("<unk>", "for '<unk>' write nothing: delete it"),
    ],
)
def test_the_fix_for_a_reserved_string_names_its_own_alternatives(
    found: str, alternative: str
) -> None:
    report = run(lines(sample(user(text(f"Read this {found} now")), assistant())))
    [message] = messages_of(report, "text.reserved")
    assert alternative in message
    others = [a for token, a in validator.RESERVED_ALTERNATIVES.items() if token != found.lower()]
    assert not any(f"write {other}" in message for other in others)


def test_the_fix_lists_each_reserved_string_found() -> None:
    report = run(lines(sample(user(text("User: hi [eos]")), assistant())))
    [message] = messages_of(report, "text.reserved")
    assert "for 'user:' write 'User -' or 'Customer -'; for '[eos]' write nothing" in message


def test_a_block_holding_reasoning_and_an_image_is_reported_as_that_combination() -> None:
    both = {**reasoning(), **image()}
    report = run(
        lines(sample(user(text("Count them.")), assistant(both, text("4")))),
        reasoning_enabled=True,
    )
    assert [(f.rule, f.path, f.message) for f in line_findings(report)] == [
        (
            "content.block",
            "$.messages[1].content[0]",
            "the block holds reasoningContent and image together: reasoning is allowed in "
            "text-only samples, and a block holds one kind; split it into one block per kind",
        )
    ]


def test_a_block_of_one_kind_with_an_extra_field_is_an_unknown_field_not_a_bad_block() -> None:
    report = run(lines(sample(user({"text": "Hi", "cachePoint": {}}), assistant())))
    assert [(f.rule, f.path, f.severity) for f in line_findings(report)] == [
        ("field.unknown", "$.messages[0].content[0]", "warning")
    ]


def test_a_block_of_no_known_kind_says_what_it_holds() -> None:
    report = run(lines(sample(user({"txt": "Hi"}), assistant())))
    assert messages_of(report, "content.block") == [
        "the block holds none of text, image, video, document, reasoningContent, toolUse or "
        "toolResult (it has 'txt'): give it one kind"
    ]


# Errors and warnings ------------------------------------------------------------------------


def test_warnings_are_reported_but_leave_the_dataset_valid() -> None:
    bodies = many(8)
    bodies[2] = json.dumps({k: v for k, v in sample().items() if k != "schemaVersion"})
    bodies[5] = json.dumps(sample(metadata={"id": 5}))
    report = run([*bodies[:4], "", *bodies[4:]])
    assert report.ok
    assert (report.errors, report.warnings) == (0, 3)
    assert {f.rule for f in report.findings} == {"schema.version", "field.unknown", "line.blank"}
    assert all(f.severity == "warning" for f in report.findings)
    assert report.summary().startswith("dataset valid: 8 samples, 3 warnings (warning ")
    assert report.to_dict()["warnings_total"] == 3


def test_strict_turns_every_warning_into_an_error() -> None:
    bodies = [*many(8), ""]
    report = run(bodies, strict=True)
    assert not report.ok
    assert [(f.rule, f.severity) for f in report.findings] == [("line.blank", "error")]
    assert report.settings["strict"] is True
    assert report.counts_by_severity("error") == {"line.blank": 1}


def test_errors_come_before_warnings_in_the_report() -> None:
    bodies = [
        json.dumps(sample(metadata={"id": 1})),
        *many(7),
        json.dumps(sample(user(text("Bot: hi")), assistant())),
    ]
    report = run(bodies)
    assert [f.rule for f in report.findings] == ["text.reserved", "field.unknown"]
    assert str(report.findings[1]).startswith("line 1 $ [warning field.unknown]:")


def test_a_non_string_schema_version_is_an_error_and_a_missing_one_a_warning() -> None:
    wrong_type = run(lines({**sample(), "schemaVersion": 2024}))
    missing = run(lines({"messages": [user(), assistant()]}))
    assert [(f.rule, f.severity) for f in line_findings(wrong_type)] == [("field.type", "error")]
    assert [(f.rule, f.severity) for f in line_findings(missing)] == [("schema.version", "warning")]


def test_a_tool_use_without_tool_config_stays_an_error() -> None:
    report = run(lines(*[sample(user(text("Where is NW-1?")), assistant(tool_use()))] * 8))
    assert not report.ok
    assert report.counts_by_severity("error") == {"tools.undeclared": 8}


# The shortcut for clean text-only samples never hides a finding ---------------------------

TEXTS = (
    st.sampled_from(["Hello", "What is 2 + 2?", "4", "a: b", "x < y", "[1]", "Ser: x", "<im>"])
    | st.text(max_size=8)
    | RESERVED_PIECES
)
TEXT_CONTENT = st.lists(st.builds(lambda value: {"text": value}, TEXTS), min_size=1, max_size=3)
# One change that may or may not break the sample: (where, key, value); where is "top", a turn
# index or ("block", turn index).
BREAKS: st.SearchStrategy[tuple[Any, str, Any] | None] = st.sampled_from(
    [
        None,
        ("top", "schemaVersion", None),
        ("top", "schemaVersion", "other"),
        ("top", "metadata", 1),
        ("top", "toolConfig", {"tools": []}),
        ("top", "system", []),
        ("top", "system", None),
        ("top", "messages", []),
        (0, "role", "assistant"),
        (1, "role", "system"),
        (0, "content", []),
        (1, "content", None),
        (0, "extra", 1),
        ("block", "text", None),
        ("block", "text", ""),
        ("block", "image", {}),
    ]
)


def text_sample(
    turns: list[list[dict[str, Any]]],
    system: list[dict[str, Any]] | None,
    change: tuple[Any, str, Any] | None,
) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [
        {"role": "user" if index % 2 == 0 else "assistant", "content": content}
        for index, content in enumerate(turns)
    ]
    body: dict[str, Any] = {"schemaVersion": "bedrock-conversation-2024", "messages": messages}
    if system is not None:
        body["system"] = system
    if change is not None:
        where, key, value = change
        if where == "top":
            body[key] = value
        elif where == "block":
            messages[-1]["content"][0][key] = value
        elif where < len(messages):
            messages[where][key] = value
    return body


TEXT_SAMPLES = st.builds(
    text_sample,
    st.integers(1, 2).flatmap(
        lambda pairs: st.lists(TEXT_CONTENT, min_size=2 * pairs, max_size=2 * pairs)
    ),
    st.none() | TEXT_CONTENT,
    BREAKS,
)


class Recorder:
    current_source = ""
    current_line = 1

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []

    def add(self, rule: str, path: str, message: str) -> None:
        self.found.append((rule, path))


@settings(max_examples=400, deadline=None)
@given(TEXT_SAMPLES)
def test_a_sample_the_shortcut_accepts_is_one_the_full_walk_finds_nothing_in(
    obj: dict[str, Any],
) -> None:
    recorder = Recorder()
    walker = ConverseFormat(recorder, global_batch_size=1, reasoning_enabled=False)
    walker._check_sample(obj)
    if converse_turns.is_clean_text_sample(obj):
        assert recorder.found == []


def test_the_shortcut_takes_the_common_sample() -> None:
    with SAMPLE_DATA.open(encoding="utf-8") as handle:
        assert all(converse_turns.is_clean_text_sample(json.loads(line)) for line in handle)
    assert not converse_turns.is_clean_text_sample(sample(user(text("Bot: hi")), assistant()))
