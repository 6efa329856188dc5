"""The bedrock-conversation-2024 format (Amazon Nova 2 SFT training data) for the rule engine.

`ConverseFormat` checks one parsed sample at a time (`check_sample`) and, once the stream ends,
the dataset-level rules (`finish`): sample counts, one media kind, optional parts used
consistently. It reports through the engine's `add(rule, path, message)`; the engine decides
severities and keeps the findings (lambdas/dataset/validator.py). The rules are in
lambdas/dataset/rules.py and docs/dataset-rules.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from lambdas.dataset.converse_parts import ABSENT, MAX_MEDIA_PER_SAMPLE, SampleState
from lambdas.dataset.converse_turns import TOP_KEYS, TurnChecks, is_clean_text_sample
from lambdas.dataset.rules import MAX_SAMPLES, MIN_SAMPLES, SCHEMA_VERSION, quote, text_is_clean

# Optional parts that must be used by every sample or by none (the stricter validators' rule).
PARTS: tuple[str, ...] = ("system", "reasoning", "tools", "media")

_SYSTEM_KEYS = frozenset({"text"})

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


class SampleRules(TurnChecks):
    """The whole-sample rules: schemaVersion, the system prompt, a sample's media (one kind, in
    the dataset's kind, within the count) and its reasoning against the recipe's setting."""

    reasoning_enabled: bool | None
    media_kind: str | None
    _media_kind_at: Where
    _sink: Sink

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


class ConverseFormat(SampleRules):
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

    def check_sample(self, obj: dict[str, Any]) -> None:
        """Every per-sample rule for one parsed line (a JSON object)."""
        self._objects += 1
        if self.reasoning_enabled is not True and is_clean_text_sample(obj):
            # Nothing to report, and only the system prompt to tally (property tests hold this
            # shortcut to the full walk below).
            self._tally_clean("system" in obj)
        else:
            self._check_sample(obj)

    def _check_sample(self, obj: dict[str, Any]) -> None:
        if not obj.keys() <= TOP_KEYS or "messages" not in obj:
            self._keys(obj, TOP_KEYS, ("messages",), "$")
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
