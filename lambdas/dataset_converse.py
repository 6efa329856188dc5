"""The bedrock-conversation-2024 format (Amazon Nova 2 SFT training data) for the rule engine.

`ConverseFormat` checks one parsed sample at a time (`check_sample`) and, once the stream ends,
the dataset-level rules (`finish`): sample counts, one media kind, optional parts used
consistently. It reports through the engine's `add(rule, path, message)`; the engine decides
severities and keeps the findings (lambdas/dataset.py). The rules are in lambdas/dataset_rules.py
and docs/dataset-rules.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from lambdas.dataset_converse_parts import (
    ABSENT,
    MAX_MEDIA_PER_SAMPLE,
    MEDIA_FORMATS,
    SampleState,
    ToolAndMediaChecks,
)
from lambdas.dataset_rules import (
    BRACKET_SEARCH,
    COLON_SEARCH,
    MAX_SAMPLES,
    MIN_SAMPLES,
    SCHEMA_VERSION,
    a_json,
    article,
    quote,
    text_is_clean,
)

# Optional parts that must be used by every sample or by none (the stricter validators' rule).
PARTS: tuple[str, ...] = ("system", "reasoning", "tools", "media")

_TOP_KEYS = frozenset({"schemaVersion", "system", "toolConfig", "messages"})
_MESSAGE_KEYS = frozenset({"role", "content"})
_SYSTEM_KEYS = frozenset({"text"})
_REASONING_KEYS = frozenset({"reasoningText"})
_REASONING_TEXT_KEYS = frozenset({"text"})
# The role each non-text block kind belongs to.
_ROLE_OF_KIND = {
    "image": "user",
    "video": "user",
    "document": "user",
    "toolResult": "user",
    "reasoningContent": "assistant",
    "toolUse": "assistant",
}
_KINDS = ("text", "image", "video", "document", "reasoningContent", "toolUse", "toolResult")
_BLOCK_KINDS = "text, image, video, document, reasoningContent, toolUse or toolResult"

_PART_NAMES = {
    "system": "a system prompt",
    "reasoning": "reasoningContent",
    "tools": "a toolConfig",
    "media": "media (image, video or document)",
}
_PART_FIXES = {
    "system": "give every sample a system prompt, or none",
    "reasoning": "give every sample reasoningContent, or none",
    "tools": "give every sample a toolConfig, or none",
    "media": "give every sample media of the dataset's kind, or none",
}
_PART_PATHS = {"system": "$.system", "reasoning": "$.messages", "tools": "$.toolConfig"}

Where = tuple[str, int]


class Sink(Protocol):
    """What a format needs from the engine: a place to report, and where the engine is."""

    current_source: str
    current_line: int

    def add(self, rule: str, path: str, message: str) -> None: ...


class _PartTally:
    """How many samples use an optional part, and the first line with and without it."""

    __slots__ = ("first_with", "first_without", "used")

    def __init__(self) -> None:
        self.used = 0
        self.first_with: Where | None = None
        self.first_without: Where | None = None


def _is_clean_text_sample(obj: dict[str, Any]) -> bool:
    """True for a text-only sample (no tools, media or reasoning) that breaks no per-sample rule.

    Most samples are of this kind; deciding it in one pass, with no call per block and no JSON
    path built, is what keeps the validator near the speed of parsing. False means only "not
    sure": the full walk then decides and reports.
    """
    if (
        obj.get("schemaVersion") != SCHEMA_VERSION
        or "toolConfig" in obj
        or not obj.keys() <= _TOP_KEYS
    ):
        return False
    blocks: list[Any] = []
    system = obj.get("system", blocks)  # absent: no blocks
    messages = obj.get("messages")
    if type(system) is not list or type(messages) is not list or not messages or len(messages) % 2:
        return False
    if system is not blocks:
        if not system:
            return False
        blocks.extend(system)
    expected = "user"
    for message in messages:
        if type(message) is not dict or len(message) != 2 or message.get("role") != expected:
            return False
        content = message.get("content")
        if type(content) is not list or not content:
            return False
        blocks.extend(content)
        expected = "assistant" if expected == "user" else "user"
    return _clean_text_blocks(blocks)


def _clean_text_blocks(blocks: list[Any]) -> bool:
    """True when every block is {"text": <a clean text>}."""
    colon_search, bracket_search = COLON_SEARCH, BRACKET_SEARCH
    for block in blocks:
        if type(block) is not dict or len(block) != 1:
            return False
        text = block.get("text")
        if not (
            type(text) is str
            and text
            and not text.isspace()
            and colon_search(text) is None
            and (("<" not in text and "[" not in text) or bracket_search(text) is None)
        ):
            return False
    return True


class ConverseFormat(ToolAndMediaChecks):
    """The per-sample and dataset-level rules of bedrock-conversation-2024.

    `global_batch_size` is the recipe's training_config.global_batch_size (the dataset needs at
    least that many samples). `reasoning_enabled` is the recipe's reasoning_enabled: True
    requires reasoningContent in every sample, False forbids it, None only requires it to be used
    consistently. `dataset_bucket`, when given, is the bucket every media URI must be in.
    """

    name = SCHEMA_VERSION

    def __init__(
        self,
        sink: Sink,
        *,
        global_batch_size: int,
        reasoning_enabled: bool | None,
        dataset_bucket: str | None = None,
    ) -> None:
        if (
            isinstance(global_batch_size, bool)
            or not isinstance(global_batch_size, int)
            or global_batch_size < 1
        ):
            raise ValueError(
                f"global_batch_size must be a positive integer, got {global_batch_size!r}"
            )
        if reasoning_enabled not in (True, False, None):
            raise ValueError(
                f"reasoning_enabled must be True, False or None, got {reasoning_enabled!r}"
            )
        if dataset_bucket is not None and not dataset_bucket:
            raise ValueError("dataset_bucket must be a bucket name or None, got ''")
        self.global_batch_size = global_batch_size
        self.reasoning_enabled = reasoning_enabled
        self.dataset_bucket = dataset_bucket
        self._sink = sink
        self._add: Callable[[str, str, str], None] = sink.add
        self._objects = 0
        self._parts = {part: _PartTally() for part in PARTS}
        self.media_kind: str | None = None
        self._media_kind_at: Where = ("", 0)

    def settings(self) -> dict[str, Any]:
        return {
            "global_batch_size": self.global_batch_size,
            "reasoning_enabled": self.reasoning_enabled,
            "dataset_bucket": self.dataset_bucket,
            "min_samples": MIN_SAMPLES,
            "max_samples": MAX_SAMPLES,
        }

    def parts_used(self) -> dict[str, int]:
        return {part: self._parts[part].used for part in PARTS}

    # Reporting helpers -----------------------------------------------------------------------

    def _keys(
        self, obj: dict[str, Any], allowed: frozenset[str], required: Iterable[str], path: str
    ) -> None:
        for key in required:
            if key not in obj:
                self._add("field.missing", f"{path}.{key}", f"add the required field {quote(key)}")
        if not obj.keys() <= allowed:
            expected = ", ".join(sorted(allowed))
            for key in obj:
                if key not in allowed:
                    self._add(
                        "field.unknown",
                        path,
                        f"field {quote(key)} is not part of the format here (expected only "
                        f"{expected}): remove or rename it",
                    )

    def _type(self, path: str, value: object, expected: str, *, optional: bool = False) -> None:
        """A value of the wrong JSON type; null is a finding of its own (`field.null`)."""
        if value is None:
            name = path.rsplit(".", 1)[-1]
            fix = f"give it a value, or leave {name} out" if optional else "give it a value"
            self._add(
                "field.null",
                path,
                f"{name} is null but must be {article('JSON ' + expected)}: {fix}",
            )
        else:
            self._add("field.type", path, f"expected a JSON {expected}, found {a_json(value)}")

    # Samples ---------------------------------------------------------------------------------

    def check_sample(self, obj: dict[str, Any]) -> None:
        """Every per-sample rule for one parsed line (a JSON object)."""
        self._objects += 1
        if self.reasoning_enabled is not True and _is_clean_text_sample(obj):
            # Nothing to report, and only the system prompt to tally (property tests hold this
            # shortcut to the full walk below).
            self._tally_clean("system" in obj)
        else:
            self._check_sample(obj)

    def _check_sample(self, obj: dict[str, Any]) -> None:
        if not obj.keys() <= _TOP_KEYS or "messages" not in obj:
            self._keys(obj, _TOP_KEYS, ("messages",), "$")
        version = obj.get("schemaVersion", ABSENT)
        if version != SCHEMA_VERSION:
            self._check_version(version)
        has_system = "system" in obj
        if has_system:
            self._check_system(obj["system"])
        has_tools = "toolConfig" in obj
        sample = SampleState(self._check_tool_config(obj["toolConfig"]) if has_tools else None)
        messages = obj.get("messages", ABSENT)
        if type(messages) is list and messages:
            self._check_messages(messages, sample)
        elif type(messages) is list:
            self._add(
                "list.empty",
                "$.messages",
                "messages is empty: add a user turn and an assistant turn",
            )
        elif messages is not ABSENT:
            self._type("$.messages", messages, "array")
        if sample.media:
            self._check_sample_media(sample)
        if sample.reasoning_path or self.reasoning_enabled:
            self._check_sample_reasoning(sample)
        tallies = self._parts
        for part, used in (
            ("system", has_system),
            ("tools", has_tools),
            ("reasoning", sample.reasoning_path),
            ("media", sample.media),
        ):
            tally = tallies[part]
            if used:
                tally.used += 1
                if tally.first_with is None:
                    tally.first_with = (self._sink.current_source, self._sink.current_line)
            elif tally.first_without is None:
                tally.first_without = (self._sink.current_source, self._sink.current_line)

    def _tally_clean(self, has_system: bool) -> None:
        """The part tallies of a clean text-only sample: a system prompt at most."""
        for part, tally in self._parts.items():
            if part == "system" and has_system:
                tally.used += 1
                if tally.first_with is None:
                    tally.first_with = (self._sink.current_source, self._sink.current_line)
            elif tally.first_without is None:
                tally.first_without = (self._sink.current_source, self._sink.current_line)

    def _check_version(self, version: object) -> None:
        if version is ABSENT:
            found = "it is missing"
        elif type(version) is not str:
            self._type("$.schemaVersion", version, "string", optional=True)
            return
        else:
            found = f"found {quote(version)}"
        self._add(
            "schema.version",
            "$.schemaVersion",
            f'set "schemaVersion": "{SCHEMA_VERSION}" ({found})',
        )

    def _check_sample_media(self, sample: SampleState) -> None:
        media = sample.media
        if len(media) > 1:
            self._add(
                "media.mixed",
                sample.media_path,
                f"the sample mixes {' and '.join(sorted(media))}: a dataset may use one media "
                "kind only; split the data by kind",
            )
        else:
            kind = next(iter(media))
            source, line = self._sink.current_source, self._sink.current_line
            if self.media_kind is None:
                self.media_kind = kind
                self._media_kind_at = (source, line)
            elif kind != self.media_kind:
                first_source, first_line = self._media_kind_at
                at = f"line {first_line}"
                if first_source != source:
                    at = f"{first_source} {at}"
                self._add(
                    "media.mixed",
                    sample.media_path,
                    f"the sample uses {kind} but the dataset uses {self.media_kind} (first at "
                    f"{at}): a dataset may use one media kind only",
                )
        for kind, count in media.items():
            limit = MAX_MEDIA_PER_SAMPLE[kind]
            if count > limit:
                self._add(
                    "media.count",
                    "$.messages",
                    f"the sample has {count} {kind}s; at most {limit} allowed: split the sample",
                )

    def _check_sample_reasoning(self, sample: SampleState) -> None:
        if sample.reasoning_path and sample.media:
            self._add(
                "reasoning.media",
                sample.reasoning_path,
                "reasoningContent is allowed in text-only samples only: remove the reasoning or "
                "the media",
            )
        if self.reasoning_enabled is True and not sample.reasoning_path:
            self._add(
                "reasoning.enabled",
                "$.messages",
                "ReasoningEnabled is true but the sample has no reasoningContent: add "
                "reasoningContent to the assistant turns, or set ReasoningEnabled to false",
            )
        elif self.reasoning_enabled is False and sample.reasoning_path:
            self._add(
                "reasoning.enabled",
                sample.reasoning_path,
                "ReasoningEnabled is false but the sample has reasoningContent: remove it, or "
                "set ReasoningEnabled to true (then every sample needs it)",
            )

    def _check_system(self, system: object) -> None:
        if type(system) is not list:
            self._type("$.system", system, "array", optional=True)
            return
        if not system:
            self._add(
                "list.empty",
                "$.system",
                'system is empty: give it one {"text": ...} block, or leave "system" out',
            )
            return
        for index, block in enumerate(system):
            if type(block) is dict and len(block) == 1 and "text" in block:
                if not text_is_clean(block["text"]):
                    self._check_text(block["text"], f"$.system[{index}].text")
                continue
            path = f"$.system[{index}]"
            if type(block) is not dict:
                self._type(path, block, "object")
                continue
            self._keys(block, _SYSTEM_KEYS, ("text",), path)
            if "text" in block:
                self._check_text(block["text"], f"{path}.text")

    # Messages --------------------------------------------------------------------------------

    def _check_messages(self, messages: list[Any], sample: SampleState) -> None:
        # The hot loop of the validator: a turn of clean text blocks (nearly every turn) is
        # checked inline, with no call and no JSON path built; anything else goes to
        # `_check_content`, which checks that turn again from the start and reports.
        colon_search, bracket_search = COLON_SEARCH, BRACKET_SEARCH
        last_role: object = ABSENT
        for index, message in enumerate(messages):
            if type(message) is not dict:
                self._type(f"$.messages[{index}]", message, "object")
                sample.order_reported = True  # the order cannot be judged past a broken turn
                last_role = ABSENT
                continue
            if len(message) != 2 or "role" not in message or "content" not in message:
                self._keys(message, _MESSAGE_KEYS, ("role", "content"), f"$.messages[{index}]")
            last_role = role = message.get("role", ABSENT)
            if role != ("user" if index % 2 == 0 else "assistant"):
                self._check_role(role, index, sample)
            content = message.get("content", ABSENT)
            if type(content) is list and content and not sample.open_uses:
                for block in content:
                    if type(block) is dict and len(block) == 1:
                        text = block.get("text")
                        if (
                            type(text) is str
                            and text
                            and not text.isspace()
                            and colon_search(text) is None
                            and (
                                ("<" not in text and "[" not in text)
                                or bracket_search(text) is None
                            )
                        ):
                            continue
                    self._check_content(content, index, role, sample)
                    break
            elif content is not ABSENT:
                self._check_content(content, index, role, sample)
            if role == "user" and sample.open_uses:
                # The user turn after an assistant turn must answer all of its toolUse blocks.
                self._report_unanswered(sample.open_uses)
                sample.open_uses = {}
        if not sample.order_reported and last_role == "user":
            self._add(
                "roles.order",
                f"$.messages[{len(messages) - 1}].role",
                "the last turn is a user turn: a sample ends with the assistant turn it teaches; "
                "add one or drop the trailing user turn",
            )
        # toolUse blocks in the final assistant turn may stay unanswered: they teach the call.

    def _check_role(self, role: object, index: int, sample: SampleState) -> None:
        """A role that is not the one expected at `index`: why, as one finding."""
        path = f"$.messages[{index}].role"
        if role not in ("user", "assistant"):
            if role is ABSENT:
                pass  # field.missing already reported
            elif type(role) is not str:
                self._type(path, role, "string")
            else:
                hint = ': move system prompts to the top-level "system"' if role == "system" else ""
                self._add(
                    "roles.invalid", path, f"role {quote(role)} is not 'user' or 'assistant'{hint}"
                )
            sample.order_reported = True  # the order cannot be judged past an unknown role
            return
        if not sample.order_reported:
            sample.order_reported = True
            expected = "user" if index % 2 == 0 else "assistant"
            self._add(
                "roles.order",
                path,
                f"turn {index} is {article(str(role))} turn but {article(expected)} turn was "
                "expected: turns alternate user, assistant, ... starting with user",
            )

    def _check_content(
        self, content: object, index: int, role: object, sample: SampleState
    ) -> None:
        if type(content) is not list:
            self._type(f"$.messages[{index}].content", content, "array")
            return
        if not content:
            self._add(
                "list.empty",
                f"$.messages[{index}].content",
                "the turn has no content: add a text block or remove the turn",
            )
            return
        if role == "assistant" and sample.open_uses:
            # Two assistant turns in a row (roles.order): the first one's calls went unanswered.
            self._report_unanswered(sample.open_uses)
            sample.open_uses = {}
        reasoning_blocks = 0
        for position, block in enumerate(content):
            # Fast path for the commonest block: the JSON path is built only for a finding.
            if type(block) is dict and len(block) == 1 and "text" in block:
                if not text_is_clean(block["text"]):
                    path = f"$.messages[{index}].content[{position}].text"
                    self._check_text(block["text"], path)
            elif self._check_block(block, f"$.messages[{index}].content[{position}]", role, sample):
                reasoning_blocks += 1
        if reasoning_blocks == len(content):
            self._add(
                "content.reasoning_only",
                f"$.messages[{index}].content",
                "the turn has reasoning but no text: add the answer as a text block after the "
                "reasoningContent",
            )

    def _check_block(self, block: object, path: str, role: object, sample: SampleState) -> bool:
        """Checks one content block; True when it is a reasoningContent block."""
        if type(block) is not dict:
            self._type(path, block, "object")
            return False
        kinds = [key for key in block if key in _KINDS]
        if len(kinds) != 1:
            self._block_kinds(block, kinds, path, sample)
            return False
        kind = kinds[0]
        if len(block) != 1:
            self._keys(block, frozenset(kinds), (), path)  # one kind plus fields of no kind
        value = block[kind]
        kind_path = f"{path}.{kind}"
        allowed_role = _ROLE_OF_KIND.get(kind)
        if allowed_role is not None and role != allowed_role and role in ("user", "assistant"):
            self._add(
                "content.role",
                kind_path,
                f"{kind} blocks belong in {allowed_role} turns only: move the block to "
                f"{article(allowed_role)} turn",
            )
        if kind == "text":
            self._check_text(value, kind_path)
        elif kind in MEDIA_FORMATS:
            self._check_media(kind, value, kind_path, sample)
        elif kind == "reasoningContent":
            self._check_reasoning(value, kind_path, sample)
            return True
        elif kind == "toolUse":
            use_id = self._check_tool_use(value, kind_path, sample)
            if use_id is not None and role == "assistant":
                sample.open_uses[use_id] = kind_path
        else:  # toolResult
            result_id = self._check_tool_result(value, kind_path)
            if result_id is not None:
                self._pair_result(result_id, f"{kind_path}.toolUseId", sample)
        return False

    def _block_kinds(
        self, block: dict[str, Any], kinds: list[str], path: str, sample: SampleState
    ) -> None:
        """A block with no known kind, or with several: one finding that names what it holds."""
        if not kinds:
            keys = ", ".join(quote(key) for key in block) or "nothing"
            self._add(
                "content.block",
                path,
                f"the block holds none of {_BLOCK_KINDS} (it has {keys}): give it one kind",
            )
            return
        held = " and ".join(kinds)
        if "reasoningContent" in kinds:
            # Still a sample with reasoning: no second finding that says it has none.
            sample.reasoning_path = sample.reasoning_path or f"{path}.reasoningContent"
        if "reasoningContent" in kinds and any(kind in MEDIA_FORMATS for kind in kinds):
            why = "reasoning is allowed in text-only samples, and a block holds one kind"
        else:
            why = "a content block holds exactly one kind"
        self._add(
            "content.block",
            path,
            f"the block holds {held} together: {why}; split it into one block per kind",
        )

    def _pair_result(self, result_id: str, path: str, sample: SampleState) -> None:
        if result_id in sample.open_uses:
            del sample.open_uses[result_id]
            sample.answered.add(result_id)
        elif result_id in sample.answered:
            self._add(
                "tools.duplicate_result",
                path,
                f"toolUse {quote(result_id)} is answered more than once: keep one toolResult "
                "per toolUse",
            )
        else:
            self._add(
                "tools.result_unmatched",
                path,
                f"toolResult {quote(result_id)} answers no toolUse of the previous assistant "
                "turn: fix the id or add the toolUse",
            )

    def _report_unanswered(self, open_uses: dict[str, str]) -> None:
        for use_id, path in open_uses.items():
            self._add(
                "tools.unanswered",
                f"{path}.toolUseId",
                f"toolUse {quote(use_id)} is not answered by a toolResult in the next user turn: "
                "add the result there, or end the sample with this assistant turn",
            )

    def _check_reasoning(self, value: object, path: str, sample: SampleState) -> None:
        if not sample.reasoning_path:
            sample.reasoning_path = path
        if type(value) is not dict:
            self._type(path, value, "object")
            return
        if len(value) != 1 or "reasoningText" not in value:
            self._keys(value, _REASONING_KEYS, ("reasoningText",), path)
        inner = value.get("reasoningText", ABSENT)
        if inner is ABSENT:
            return
        path += ".reasoningText"
        if type(inner) is not dict:
            self._type(path, inner, "object")
            return
        if len(inner) != 1 or "text" not in inner:
            self._keys(inner, _REASONING_TEXT_KEYS, ("text",), path)
        if "text" in inner:
            self._check_text(inner["text"], f"{path}.text")

    # The dataset -----------------------------------------------------------------------------

    def finish(self, samples: int, add: Callable[[str, str, Where | None, str], None]) -> None:
        """The dataset-level rules, once every line was checked; `add(rule, message, at, path)`."""
        if samples < MIN_SAMPLES:
            add(
                "samples.min",
                f"the dataset has {samples} samples; a training job needs at least {MIN_SAMPLES} "
                "(2,000 to 10,000 are recommended): add samples",
                None,
                "",
            )
        if samples > MAX_SAMPLES:
            add(
                "samples.max",
                f"the dataset has {samples} samples; a training job accepts at most "
                f"{MAX_SAMPLES}: remove samples or split the data across runs",
                None,
                "",
            )
        if samples < self.global_batch_size:
            add(
                "samples.batch_size",
                f"the dataset has {samples} samples, fewer than GlobalBatchSize "
                f"{self.global_batch_size}: add samples or lower GlobalBatchSize",
                None,
                "",
            )
        for part in PARTS:
            if part == "reasoning" and self.reasoning_enabled is not None:
                continue  # reasoning.enabled already judged every sample against the setting
            tally = self._parts[part]
            if 0 < tally.used < self._objects:
                without = self._objects - tally.used
                minority_has = tally.used <= without
                at = tally.first_with if minority_has else tally.first_without
                add(
                    "parts.consistency",
                    f"{_PART_NAMES[part]} is in {tally.used} of {self._objects} samples "
                    f"(first {'with' if minority_has else 'without'} it at line "
                    f"{at[1] if at else 0}): {_PART_FIXES[part]}",
                    at,
                    _PART_PATHS.get(part, "$.messages"),
                )
