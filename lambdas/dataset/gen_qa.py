"""The evaluation data's format, gen_qa: one JSON object a line with a question and its answer.

AWS documents the bring-your-own-dataset evaluation file (SageMaker and Nova user guides,
"Evaluation recipe examples"; shared NOVA_FACTS section 7) as exactly one `.jsonl` file whose
lines hold `query` (required string), `response` (required string), `system` (optional string),
`images` (optional list) and `metadata` (optional), strictly, with each sample's context (system
plus query) under 3.5k tokens. `GenQaFormat` checks that through the streaming engine
(`lambdas.dataset.validator.Validator(data_format=GenQaFormat)`); `validate_gen_qa_lines` checks
one file given as lines. The rule ids are the engine's (`lambdas.dataset.rules`); the token
count is estimated (4 characters a token), so a long context is a warning.

Standard library only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from lambdas.dataset.report import Report
from lambdas.dataset.rules import json_type, quote

FORMAT_NAME = "gen_qa"
REQUIRED_FIELDS = ("query", "response")
OPTIONAL_FIELDS = ("system", "images", "metadata")
# Documented: system + query under 3.5k tokens per sample (lambdas.recipe.evaluation_spec repeats
# the figure for the recipe side; this package keeps to the standard library).
MAX_CONTEXT_TOKENS = 3500
CHARS_PER_TOKEN = 4
# An evaluation on no sample scores nothing.
MIN_SAMPLES = 1

Where = tuple[str, int]


class Sink(Protocol):
    """The engine's side of a format: where findings go, and where the engine is."""

    current_source: str
    current_line: int

    def add(self, rule: str, path: str, message: str) -> None: ...


class GenQaFormat:
    """The gen_qa rules, driven line by line by the engine (`Validator`)."""

    name = FORMAT_NAME
    # How the engine's "not an object" message names the fields a line needs.
    object_fields = '"query" and "response"'

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._parts = {"system": 0, "images": 0, "metadata": 0}
        self._long_contexts = 0

    def settings(self) -> dict[str, Any]:
        return {"max_context_tokens": MAX_CONTEXT_TOKENS, "chars_per_token": CHARS_PER_TOKEN}

    def parts_used(self) -> dict[str, int]:
        return dict(self._parts)

    def check_sample(self, obj: dict[str, Any]) -> None:
        add = self._sink.add
        for field in REQUIRED_FIELDS:
            if field not in obj:
                add(
                    "field.missing",
                    f"$.{field}",
                    f'"{field}" is missing: every gen_qa line needs "query" and "response" strings',
                )
            else:
                self._text(obj[field], field, required=True)
        for field in obj:
            if field not in REQUIRED_FIELDS and field not in OPTIONAL_FIELDS:
                add(
                    "field.unknown",
                    f"$.{quote(field)}",
                    f"field {quote(field)} is not part of gen_qa (query, response, system, "
                    "images, metadata): remove it; the evaluation format is strict",
                )
        if "system" in obj:
            self._parts["system"] += 1
            self._text(obj["system"], "system", required=False)
        if "images" in obj:
            self._parts["images"] += 1
            if not isinstance(obj["images"], list):
                add(
                    "field.type",
                    "$.images",
                    f'"images" is {json_type(obj["images"])}: it must be a list',
                )
        if "metadata" in obj:
            self._parts["metadata"] += 1
            if obj["metadata"] is None:
                add("field.null", "$.metadata", '"metadata" is null: remove it or give a value')
        context = sum(
            len(obj[field]) for field in ("system", "query") if isinstance(obj.get(field), str)
        )
        if context > MAX_CONTEXT_TOKENS * CHARS_PER_TOKEN:
            self._long_contexts += 1
            add(
                "context.length",
                "$.query",
                f"system and query hold {context} characters, about {context // CHARS_PER_TOKEN} "
                f"tokens: AWS documents a context under {MAX_CONTEXT_TOKENS} tokens; shorten it",
            )

    def _text(self, value: object, field: str, *, required: bool) -> None:
        add = self._sink.add
        if value is None:
            add("field.null", f"$.{field}", f'"{field}" is null: it must be a string')
        elif not isinstance(value, str):
            add("field.type", f"$.{field}", f'"{field}" is {json_type(value)}: it must be a string')
        elif required and not value.strip():
            add("text.empty", f"$.{field}", f'"{field}" is empty: write the text')

    def finish(self, samples: int, add: Callable[[str, str, Where | None, str], None]) -> None:
        if samples < MIN_SAMPLES:
            add(
                "samples.min",
                "no samples: the evaluation data must hold at least one query and response",
                None,
                "$",
            )


def validate_gen_qa_lines(
    lines: Iterable[str | bytes], *, source: str = "", strict: bool = False
) -> Report:
    """Validate one gen_qa file given as lines (`str` or `bytes`)."""
    from lambdas.dataset.validator import Validator

    validator = Validator(
        global_batch_size=1, reasoning_enabled=None, strict=strict, data_format=GenQaFormat
    )
    validator.feed_lines(lines, source=source)
    return validator.finish()
