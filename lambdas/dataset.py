"""A streaming validator for bedrock-conversation-2024 training data (Amazon Nova 2 SFT).

It reads a JSONL dataset one line at a time, holding one line (and one read chunk) at a time, so
memory does not grow with the file. Every line gets the per-sample rules; once the stream ends, the
dataset-level rules run (sample count, one media kind, optional parts used consistently).
The rules, their stable ids and the places where public validators disagree (this module takes
the stricter side) are in docs/decisions/0006-dataset-validation-rules.md. `RULES` below is the
authoritative list of ids.

Entry points:
- `validate_lines(lines, ...)` for an iterable of `str` or `bytes` lines (one file);
- `Validator` to check several files as one dataset and to split raw byte chunks into lines
  (`feed_chunks`), as the Lambda handler does with an S3 object body.

Standard library only: the Lambda handler and the operator command both use this module.
Finding messages never quote sample text (a pipeline failure reason may be seen by people who
may not read the data); they quote field names, roles, formats, tool names and ids, and
reserved strings only.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = "bedrock-conversation-2024"

# Sample counts accepted by a SageMaker training job (Bedrock's own jobs need 200 or more).
MIN_SAMPLES = 8
MAX_SAMPLES = 20_000

# No valid sample comes near this (the context is at most 32k tokens and media are referenced by
# URI); the cap bounds the memory one malformed line can take.
MAX_LINE_BYTES = 8 * 1024 * 1024

# Read size for `Validator.feed_chunks` callers.
CHUNK_BYTES = 1024 * 1024

# Nova 2 Lite's lists, the stricter of the published ones (webp images and webm videos are
# accepted for Nova 1 but not for Nova 2 Lite).
MEDIA_FORMATS: dict[str, frozenset[str]] = {
    "image": frozenset({"png", "jpeg", "gif"}),
    "video": frozenset({"mov", "mkv", "mp4"}),
    "document": frozenset({"pdf"}),
}
MAX_MEDIA_PER_SAMPLE: dict[str, int] = {"image": 10, "video": 1, "document": 1}

# Matched anywhere in any text, in any case. The first seven are documented by AWS; the last two
# are rejected by the stricter public validators.
RESERVED_STRINGS: tuple[str, ...] = (
    "user:",
    "bot:",
    "assistant:",
    "system:",
    "<image>",
    "<video>",
    "[eos]",
    "thought:",
    "<unk>",
)

# Optional parts that must be used by every sample or by none (the stricter validators' rule).
PARTS: tuple[str, ...] = ("system", "reasoning", "tools", "media")

RULES: dict[str, str] = {
    "line.blank": "an empty or whitespace-only line",
    "line.too_long": f"a line longer than {MAX_LINE_BYTES} bytes",
    "json.invalid": "a line that is not one valid UTF-8 JSON value",
    "json.not_object": "a line that is valid JSON but not an object",
    "field.missing": "a required field is absent",
    "field.type": "a field has the wrong JSON type",
    "field.unknown": "a field that the format does not define",
    "field.value": "a field holds a value outside its allowed set",
    "schema.version": f"schemaVersion is absent or not {SCHEMA_VERSION!r}",
    "list.empty": "an empty list where at least one item is needed",
    "roles.invalid": "a role other than 'user' or 'assistant'",
    "roles.order": "roles do not alternate user, assistant, ... starting with user, ending with "
    "assistant",
    "content.block": "a content block that is not exactly one known kind",
    "content.role": "a content block kind that this role may not use",
    "content.reasoning_only": "a message whose only content is reasoning",
    "text.empty": "an empty or whitespace-only text",
    "text.reserved": "a text holds a reserved string",
    "media.format": "a media format Nova 2 Lite does not accept",
    "media.source": "media not given as source.s3Location {uri, bucketOwner?}",
    "media.uri": "a media URI that is not s3://bucket/key with safe characters",
    "media.bucket": "media in a different bucket from the dataset",
    "media.count": "more media of one kind in a sample than allowed",
    "media.mixed": "more than one media kind in the dataset",
    "reasoning.media": "reasoning in a sample with media",
    "reasoning.enabled": "reasoning present or absent against ReasoningEnabled",
    "tools.spec": "an invalid tool declaration",
    "tools.duplicate_name": "a tool name declared twice",
    "tools.undeclared": "a toolUse names a tool the sample does not declare",
    "tools.id": "an invalid toolUseId",
    "tools.duplicate_id": "a toolUseId used twice in a sample",
    "tools.result_unmatched": "a toolResult that answers no toolUse of the previous turn",
    "tools.duplicate_result": "a toolUse answered more than once",
    "tools.unanswered": "a toolUse not answered in the next user turn",
    "parts.consistency": "an optional part (system, reasoning, tools, media) in some samples only",
    "samples.min": f"fewer than {MIN_SAMPLES} samples",
    "samples.max": f"more than {MAX_SAMPLES} samples",
    "samples.batch_size": "fewer samples than the global batch size",
    "file.name": "a dataset file whose name the training job does not accept",
}

_TOP_KEYS = frozenset({"schemaVersion", "system", "toolConfig", "messages"})
_MESSAGE_KEYS = frozenset({"role", "content"})
_SYSTEM_KEYS = frozenset({"text"})
_MEDIA_KEYS = frozenset({"format", "source"})
_S3_LOCATION_KEYS = frozenset({"uri", "bucketOwner"})
_REASONING_KEYS = frozenset({"reasoningText"})
_REASONING_TEXT_KEYS = frozenset({"text"})
_TOOL_CONFIG_KEYS = frozenset({"tools"})
_TOOL_KEYS = frozenset({"toolSpec"})
_TOOL_SPEC_KEYS = frozenset({"name", "description", "inputSchema"})
_INPUT_SCHEMA_KEYS = frozenset({"json"})
_TOOL_USE_KEYS = frozenset({"toolUseId", "name", "input"})
_TOOL_RESULT_KEYS = frozenset({"toolUseId", "content", "status"})
_TOOL_RESULT_REQUIRED = ("toolUseId", "content")
_TOOL_RESULT_STATUS = frozenset({"success", "error"})

# The role each non-text block kind belongs to.
_ROLE_OF_KIND = {
    "image": "user",
    "video": "user",
    "document": "user",
    "toolResult": "user",
    "reasoningContent": "assistant",
    "toolUse": "assistant",
}
_BLOCK_KINDS = "text, image, video, document, reasoningContent, toolUse or toolResult"
# Converse API constraints on tool names and toolUse ids.
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TOOL_USE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Bucket naming rules, and the key characters the Nova validators accept.
_S3_URI = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/([A-Za-z0-9_./-]+)")
_ACCOUNT_ID = re.compile(r"[0-9]{12}")
# AWS documents dataset file names as alphanumerics, underscores, hyphens, slashes and dots.
_FILE_KEY = re.compile(r"[A-Za-z0-9_./-]+")
_FORMAT_HINTS = {"jpg": "jpeg", "JPG": "jpeg", "JPEG": "jpeg", "PNG": "png", "MP4": "mp4"}

_QUOTE_CHARS = 40


class _RejectConstant(ValueError):
    """NaN or Infinity in a line: Python parses them, JSON does not allow them."""


def _reject_constant(name: str) -> Any:
    raise _RejectConstant(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _quote(value: object) -> str:
    """A short repr of a key, role or format for a message (never of sample text)."""
    text = repr(value)
    return text if len(text) <= _QUOTE_CHARS else text[: _QUOTE_CHARS - 3] + "..."


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: where it is, which rule it breaks, and how to fix it.

    `line` is 1-based within `source` (a file path or S3 URI; "" when only one unnamed stream was
    checked); 0 for a dataset-level finding. `path` is a JSON path into the line's object
    (`$` is the whole line; "" for a dataset-level finding). `rule` is a key of `RULES`.
    """

    line: int
    path: str
    rule: str
    message: str
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "line": self.line,
            "path": self.path,
            "rule": self.rule,
            "message": self.message,
        }

    def __str__(self) -> str:
        return self.describe(with_source=True)

    def describe(self, *, with_source: bool) -> str:
        """One line: [source] line N path [rule]: message."""
        where = f"line {self.line}" if self.line else "dataset"
        if with_source and self.source:
            where = f"{self.source} {where}"
        if self.path:
            where = f"{where} {self.path}"
        return f"{where} [{self.rule}]: {self.message}"


@dataclass(frozen=True)
class Report:
    """The outcome of one validation.

    `findings` holds the dataset-level findings first, then the first line findings in file
    order, at most `max_findings` of those; `counts_by_rule` and `total_findings` count every
    finding, kept or not. `samples` counts non-blank lines (what the training job would read).
    `parts` counts the samples that use each optional part.
    """

    samples: int
    findings: tuple[Finding, ...]
    counts_by_rule: dict[str, int]
    total_findings: int
    parts: dict[str, int]
    media_kind: str | None
    sources: tuple[tuple[str, int], ...]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no rule is broken."""
        return self.total_findings == 0

    @property
    def truncated(self) -> bool:
        """True when more findings were counted than kept."""
        return self.total_findings > len(self.findings)

    def to_dict(self) -> dict[str, Any]:
        """The full report as plain JSON-ready data (the handler writes it to S3)."""
        return {
            "ok": self.ok,
            "format": SCHEMA_VERSION,
            "samples": self.samples,
            "findings_total": self.total_findings,
            "findings_kept": len(self.findings),
            "truncated": self.truncated,
            "counts_by_rule": dict(sorted(self.counts_by_rule.items())),
            "parts": dict(self.parts),
            "media_kind": self.media_kind,
            "sources": [{"source": name, "lines": lines} for name, lines in self.sources],
            "settings": dict(self.settings),
            "rules": {rule: RULES[rule] for rule in sorted(self.counts_by_rule)},
            "findings": [finding.to_dict() for finding in self.findings],
        }

    def summary(self, limit: int = 5, max_chars: int = 900) -> str:
        """A short text for a failure reason: totals, counts by rule, then the first findings.

        At most `limit` findings, one per line, each naming its file only when the file changes;
        never more than `max_chars` characters (whole findings are dropped to stay within it).
        """
        if self.ok:
            return f"dataset valid: {self.samples} samples, no findings"
        ranked = sorted(self.counts_by_rule.items(), key=lambda item: (-item[1], item[0]))
        counts = ", ".join(f"{rule}: {count}" for rule, count in ranked[:5])
        if len(ranked) > 5:
            counts += ", ..."
        head = (
            f"dataset invalid: {self.total_findings} finding(s) in {self.samples} samples "
            f"({counts})"
        )
        lines = [head[:max_chars]]
        used = len(lines[0])
        shown = 0
        source = ""
        for finding in self.findings[: max(limit, 0)]:
            # Name a finding's file only when it differs from the one before (saves room).
            text = finding.describe(with_source=finding.source != source)
            source = finding.source or source
            if used + 1 + len(text) > max_chars:
                break
            lines.append(text)
            used += 1 + len(text)
            shown += 1
        rest = self.total_findings - shown
        if rest and shown:
            more = f"... and {rest} more"
            if used + 1 + len(more) <= max_chars:
                lines.append(more)
        return "\n".join(lines)


class _Sample:
    """What one sample uses, and the state of its turn and tool checks, gathered while walking."""

    __slots__ = (
        "answered",
        "media",
        "media_path",
        "open_uses",
        "order_reported",
        "reasoning_path",
        "tool_use_ids",
        "tools",
    )

    def __init__(self, tools: set[str] | None) -> None:
        self.tools = tools  # declared tool names; None without a toolConfig
        self.media: dict[str, int] = {}
        self.media_path = ""
        self.reasoning_path = ""
        self.tool_use_ids: set[str] = set()
        # toolUse ids of the latest assistant turn not yet answered, with their paths.
        self.open_uses: dict[str, str] = {}
        self.answered: set[str] = set()
        self.order_reported = False


class _PartTally:
    """How many samples use an optional part, and the first line with and without it."""

    __slots__ = ("first_with", "first_without", "used")

    def __init__(self) -> None:
        self.used = 0
        self.first_with: tuple[str, int] | None = None
        self.first_without: tuple[str, int] | None = None


class Validator:
    """Checks one dataset, given as one or more line streams (files), in constant memory.

    Feed every file with `feed_lines` or `feed_chunks`, then call `finish` for the report.
    `global_batch_size` is the recipe's training_config.global_batch_size (the dataset needs at
    least that many samples). `reasoning_enabled` is the recipe's reasoning_enabled: True
    requires reasoningContent in every sample, False forbids it, None only requires it to be used
    consistently. `dataset_bucket`, when given, is the bucket every media URI must be in.
    `max_findings` caps the line findings kept (all are counted).
    """

    def __init__(
        self,
        *,
        global_batch_size: int,
        reasoning_enabled: bool | None,
        dataset_bucket: str | None = None,
        max_findings: int = 1000,
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
        if isinstance(max_findings, bool) or not isinstance(max_findings, int) or max_findings < 1:
            raise ValueError(f"max_findings must be a positive integer, got {max_findings!r}")
        if dataset_bucket is not None and not dataset_bucket:
            raise ValueError("dataset_bucket must be a bucket name or None, got ''")
        self.global_batch_size = global_batch_size
        self.reasoning_enabled = reasoning_enabled
        self.dataset_bucket = dataset_bucket
        self.max_findings = max_findings

        self._findings: list[Finding] = []
        self._file_findings: list[Finding] = []
        self._counts: Counter[str] = Counter()
        self._total = 0
        self._samples = 0
        self._objects = 0
        self._sources: list[tuple[str, int]] = []
        self._parts = {part: _PartTally() for part in PARTS}
        self._media_kind: str | None = None
        self._media_kind_at: tuple[str, int] = ("", 0)
        # Where the line being checked is; set once per line rather than passed everywhere.
        self._source = ""
        self._line = 0

    # Feeding -------------------------------------------------------------------------------

    def feed_lines(self, lines: Iterable[str | bytes], *, source: str = "") -> None:
        """Check every line of one file. Lines may keep their line ending."""
        self._source = source
        number = 0
        for number, raw in enumerate(lines, 1):
            self._line = number
            if len(raw) > MAX_LINE_BYTES:
                self._too_long(len(raw))
            else:
                self._check_line(raw)
        self._sources.append((source, number))

    def feed_chunks(self, chunks: Iterable[bytes], *, source: str = "") -> None:
        """Check one file given as raw byte chunks of any size, split into lines at b"\\n".

        Only "\\n" ends a line (a bare "\\r" does not, unlike `bytes.splitlines`), so line
        numbers match what a JSONL reader sees. A line longer than `MAX_LINE_BYTES` is reported
        and skipped without being held in memory.
        """
        self._source = source
        number = 0
        pending: list[bytes] = []
        pending_bytes = 0
        # True while inside a line already known to be too long: its bytes are dropped.
        dropping = False
        for chunk in chunks:
            parts = chunk.split(b"\n")
            tail = parts.pop()
            for part in parts:
                number += 1
                self._line = number
                if dropping:
                    dropping = False
                    self._too_long(None)
                    continue
                line = part
                if pending:
                    pending.append(part)
                    line = b"".join(pending)
                    pending = []
                    pending_bytes = 0
                if len(line) > MAX_LINE_BYTES:
                    self._too_long(len(line))
                else:
                    self._check_line(line)
            if tail and not dropping:
                pending.append(tail)
                pending_bytes += len(tail)
                if pending_bytes > MAX_LINE_BYTES:
                    pending = []
                    pending_bytes = 0
                    dropping = True
        if dropping or pending:
            number += 1
            self._line = number
            if dropping:
                self._too_long(None)
            else:
                self._check_line(b"".join(pending))
        self._sources.append((source, number))

    def add_file_finding(self, source: str, rule: str, message: str) -> None:
        """Record a finding about a whole file (its name, say); kept like dataset findings."""
        if rule not in RULES:
            raise ValueError(f"unknown rule id {rule!r}; use one of: {', '.join(RULES)}")
        self._counts[rule] += 1
        self._total += 1
        self._file_findings.append(Finding(0, "", rule, message, source))

    def finish(self) -> Report:
        """Run the dataset-level rules and return the report; the validator itself is unchanged."""
        dataset = list(self._file_findings)
        counts = Counter(self._counts)
        total = self._total

        def add(rule: str, message: str, at: tuple[str, int] | None = None, path: str = "") -> None:
            nonlocal total
            source, line = at if at else ("", 0)
            dataset.append(Finding(line, path, rule, message, source))
            counts[rule] += 1
            total += 1

        samples = self._samples
        if samples < MIN_SAMPLES:
            add(
                "samples.min",
                f"the dataset has {samples} samples; a training job needs at least {MIN_SAMPLES} "
                f"(2,000 to 10,000 are recommended): add samples",
            )
        if samples > MAX_SAMPLES:
            add(
                "samples.max",
                f"the dataset has {samples} samples; a training job accepts at most "
                f"{MAX_SAMPLES}: remove samples or split the data across runs",
            )
        if samples < self.global_batch_size:
            add(
                "samples.batch_size",
                f"the dataset has {samples} samples, fewer than GlobalBatchSize "
                f"{self.global_batch_size}: add samples or lower GlobalBatchSize",
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
                    _PART_PATHS[part],
                )
        return Report(
            samples=samples,
            findings=tuple(dataset) + tuple(self._findings),
            counts_by_rule=dict(counts),
            total_findings=total,
            parts={part: self._parts[part].used for part in PARTS},
            media_kind=self._media_kind,
            sources=tuple(self._sources),
            settings={
                "global_batch_size": self.global_batch_size,
                "reasoning_enabled": self.reasoning_enabled,
                "dataset_bucket": self.dataset_bucket,
                "max_findings": self.max_findings,
                "min_samples": MIN_SAMPLES,
                "max_samples": MAX_SAMPLES,
            },
        )

    # Lines -----------------------------------------------------------------------------------

    def _add(self, rule: str, path: str, message: str) -> None:
        self._counts[rule] += 1
        self._total += 1
        if len(self._findings) < self.max_findings:
            self._findings.append(Finding(self._line, path, rule, message, self._source))

    def _too_long(self, size: int | None) -> None:
        self._samples += 1
        shown = f"{size} bytes" if size is not None else f"more than {MAX_LINE_BYTES} bytes"
        self._add(
            "line.too_long",
            "$",
            f"the line is {shown}, over the {MAX_LINE_BYTES}-byte limit: a sample this large "
            "cannot fit the context; check that each sample is on its own line",
        )

    def _check_line(self, raw: str | bytes) -> None:
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            obj = _DECODER.decode(text)
        except UnicodeDecodeError as exc:
            self._samples += 1
            self._add(
                "json.invalid",
                "$",
                f"the line is not UTF-8 (byte {exc.start}): save the file as UTF-8",
            )
            return
        except ValueError as exc:  # JSONDecodeError, NaN/Infinity
            if not raw.strip():
                self._add(
                    "line.blank",
                    "$",
                    "the line is empty: remove blank lines; every line must hold one sample",
                )
                return
            self._samples += 1
            self._add("json.invalid", "$", _json_error_message(text, exc))
            return
        except RecursionError:
            self._samples += 1
            self._add(
                "json.invalid", "$", "the line nests JSON too deeply to parse: flatten the sample"
            )
            return
        self._samples += 1
        if type(obj) is not dict:
            self._add(
                "json.not_object",
                "$",
                f"the line is a JSON {_json_type(obj)}; each line must be one JSON object with "
                '"schemaVersion" and "messages"',
            )
            return
        self._objects += 1
        self._check_sample(obj)

    # Samples ---------------------------------------------------------------------------------

    def _keys(
        self,
        obj: dict[str, Any],
        allowed: frozenset[str],
        required: Iterable[str],
        path: str,
    ) -> None:
        for key in required:
            if key not in obj:
                self._add("field.missing", f"{path}.{key}", f"add the required field {key!r}")
        if not obj.keys() <= allowed:
            expected = ", ".join(sorted(allowed))
            for key in obj:
                if key not in allowed:
                    self._add(
                        "field.unknown",
                        path,
                        f"field {_quote(key)} is not part of the format here (expected only "
                        f"{expected}): remove or rename it",
                    )

    def _type(self, path: str, value: object, expected: str) -> None:
        self._add("field.type", path, f"expected a JSON {expected}, found a {_json_type(value)}")

    def _check_sample(self, obj: dict[str, Any]) -> None:
        if not obj.keys() <= _TOP_KEYS or "messages" not in obj:
            self._keys(obj, _TOP_KEYS, ("messages",), "$")
        version = obj.get("schemaVersion")
        if version != SCHEMA_VERSION:
            found = "it is missing" if version is None else f"found {_quote(version)}"
            self._add(
                "schema.version",
                "$.schemaVersion",
                f'set "schemaVersion": "{SCHEMA_VERSION}" ({found})',
            )
        has_system = "system" in obj
        if has_system:
            self._check_system(obj["system"])
        has_tools = "toolConfig" in obj
        sample = _Sample(self._check_tool_config(obj["toolConfig"]) if has_tools else None)
        messages = obj.get("messages")
        if messages is not None:
            if type(messages) is not list:
                self._type("$.messages", messages, "array")
            elif not messages:
                self._add(
                    "list.empty",
                    "$.messages",
                    "messages is empty: add a user turn and an assistant turn",
                )
            else:
                self._check_messages(messages, sample)
        self._check_sample_media(sample)
        self._check_sample_reasoning(sample)
        self._tally("system", has_system)
        self._tally("tools", has_tools)
        self._tally("reasoning", bool(sample.reasoning_path))
        self._tally("media", bool(sample.media))

    def _check_sample_media(self, sample: _Sample) -> None:
        media = sample.media
        if len(media) > 1:
            self._add(
                "media.mixed",
                sample.media_path,
                f"the sample mixes {' and '.join(sorted(media))}: a dataset may use one media "
                "kind only; split the data by kind",
            )
        elif media:
            kind = next(iter(media))
            if self._media_kind is None:
                self._media_kind = kind
                self._media_kind_at = (self._source, self._line)
            elif kind != self._media_kind:
                source, line = self._media_kind_at
                where = f"line {line}" if source == self._source else f"{source} line {line}"
                self._add(
                    "media.mixed",
                    sample.media_path,
                    f"the sample uses {kind} but the dataset uses {self._media_kind} (first at "
                    f"{where}): a dataset may use one media kind only",
                )
        for kind, count in media.items():
            limit = MAX_MEDIA_PER_SAMPLE[kind]
            if count > limit:
                self._add(
                    "media.count",
                    "$.messages",
                    f"the sample has {count} {kind}s; at most {limit} allowed: split the sample",
                )

    def _check_sample_reasoning(self, sample: _Sample) -> None:
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

    def _tally(self, part: str, used: bool) -> None:
        tally = self._parts[part]
        if used:
            tally.used += 1
            if tally.first_with is None:
                tally.first_with = (self._source, self._line)
        elif tally.first_without is None:
            tally.first_without = (self._source, self._line)

    def _check_text(self, text: object, path: str) -> None:
        problem = _text_problem(text)
        if problem is not None:
            self._add(problem[0], path, problem[1])

    def _check_system(self, system: object) -> None:
        if type(system) is not list:
            self._type("$.system", system, "array")
            return
        if not system:
            self._add(
                "list.empty",
                "$.system",
                'system is empty: give it one {"text": ...} block, or leave "system" out',
            )
            return
        for index, block in enumerate(system):
            path = f"$.system[{index}]"
            if type(block) is not dict:
                self._type(path, block, "object")
                continue
            if len(block) != 1 or "text" not in block:
                self._keys(block, _SYSTEM_KEYS, ("text",), path)
            if "text" in block:
                self._check_text(block["text"], f"{path}.text")

    # Tools -----------------------------------------------------------------------------------

    def _check_tool_config(self, config: object) -> set[str]:
        """The declared tool names (those that could be read, even from a broken spec)."""
        names: set[str] = set()
        if type(config) is not dict:
            self._type("$.toolConfig", config, "object")
            return names
        self._keys(config, _TOOL_CONFIG_KEYS, ("tools",), "$.toolConfig")
        tools = config.get("tools")
        if tools is None:
            return names
        if type(tools) is not list:
            self._type("$.toolConfig.tools", tools, "array")
            return names
        if not tools:
            self._add(
                "list.empty",
                "$.toolConfig.tools",
                'tools is empty: declare the tools the sample uses, or leave "toolConfig" out',
            )
        for index, tool in enumerate(tools):
            path = f"$.toolConfig.tools[{index}]"
            if type(tool) is not dict:
                self._type(path, tool, "object")
                continue
            self._keys(tool, _TOOL_KEYS, ("toolSpec",), path)
            spec = tool.get("toolSpec")
            if spec is not None:
                self._check_tool_spec(spec, f"{path}.toolSpec", names)
        return names

    def _check_tool_spec(self, spec: object, path: str, names: set[str]) -> None:
        if type(spec) is not dict:
            self._type(path, spec, "object")
            return
        self._keys(spec, _TOOL_SPEC_KEYS, ("name", "description", "inputSchema"), path)
        name = spec.get("name")
        if type(name) is str:
            if not _TOOL_NAME.fullmatch(name):
                self._add(
                    "tools.spec",
                    f"{path}.name",
                    f"tool name {_quote(name)} must be 1 to 64 letters, digits, '_' or '-': "
                    "rename the tool here and in its toolUse blocks",
                )
            if name in names:
                self._add(
                    "tools.duplicate_name",
                    f"{path}.name",
                    f"tool {_quote(name)} is declared twice: keep one declaration",
                )
            names.add(name)
        elif name is not None:
            self._type(f"{path}.name", name, "string")
        if "description" in spec:
            self._check_text(spec["description"], f"{path}.description")
        schema = spec.get("inputSchema")
        if schema is not None:
            self._check_input_schema(schema, f"{path}.inputSchema")

    def _check_input_schema(self, schema: object, path: str) -> None:
        if type(schema) is not dict:
            self._type(path, schema, "object")
            return
        self._keys(schema, _INPUT_SCHEMA_KEYS, ("json",), path)
        body = schema.get("json")
        if body is None:
            return
        if type(body) is not dict:
            self._type(f"{path}.json", body, "object")
        elif "type" not in body:
            self._add(
                "tools.spec",
                f"{path}.json",
                'the input schema has no "type": give it a JSON Schema such as '
                '{"type": "object", "properties": {...}}',
            )

    def _check_tool_use(self, value: object, path: str, sample: _Sample) -> str | None:
        """Checks one toolUse block; returns its id when it has a usable one."""
        if type(value) is not dict:
            self._type(path, value, "object")
            return None
        if len(value) != 3 or not value.keys() <= _TOOL_USE_KEYS:
            self._keys(value, _TOOL_USE_KEYS, ("toolUseId", "name", "input"), path)
        name = value.get("name")
        if name is not None:
            if type(name) is not str:
                self._type(f"{path}.name", name, "string")
            elif sample.tools is None:
                self._add(
                    "tools.undeclared",
                    f"{path}.name",
                    f"tool {_quote(name)} is used but the sample has no toolConfig: declare it "
                    "in toolConfig.tools",
                )
            elif name not in sample.tools:
                self._add(
                    "tools.undeclared",
                    f"{path}.name",
                    f"tool {_quote(name)} is not declared in toolConfig.tools: declare it or fix "
                    "the name",
                )
        if "input" in value and type(value["input"]) is not dict:
            self._type(f"{path}.input", value["input"], "object")
        use_id = value.get("toolUseId")
        if use_id is None:
            return None
        if type(use_id) is not str:
            self._type(f"{path}.toolUseId", use_id, "string")
            return None
        if not _TOOL_USE_ID.fullmatch(use_id):
            self._add(
                "tools.id",
                f"{path}.toolUseId",
                f"toolUseId {_quote(use_id)} must be 1 to 64 letters, digits, '_' or '-'",
            )
        if use_id in sample.tool_use_ids:
            self._add(
                "tools.duplicate_id",
                f"{path}.toolUseId",
                f"toolUseId {_quote(use_id)} is used twice in the sample: give each toolUse its "
                "own id",
            )
            return None
        sample.tool_use_ids.add(use_id)
        return use_id

    def _check_tool_result(self, value: object, path: str) -> str | None:
        """Checks one toolResult block; returns the id it answers when it has a usable one."""
        if type(value) is not dict:
            self._type(path, value, "object")
            return None
        if (
            not value.keys() <= _TOOL_RESULT_KEYS
            or "toolUseId" not in value
            or "content" not in value
        ):
            self._keys(value, _TOOL_RESULT_KEYS, _TOOL_RESULT_REQUIRED, path)
        status = value.get("status")
        if "status" in value and (type(status) is not str or status not in _TOOL_RESULT_STATUS):
            self._add(
                "field.value",
                f"{path}.status",
                f"status {_quote(status)} must be 'success' or 'error' (or left out)",
            )
        content = value.get("content")
        if content is not None:
            if type(content) is not list:
                self._type(f"{path}.content", content, "array")
            elif not content:
                self._add(
                    "list.empty",
                    f"{path}.content",
                    'the tool result is empty: give it a {"text": ...} or {"json": {...}} block',
                )
            else:
                for index, block in enumerate(content):
                    self._check_result_block(block, f"{path}.content[{index}]")
        use_id = value.get("toolUseId")
        if use_id is None:
            return None
        if type(use_id) is not str:
            self._type(f"{path}.toolUseId", use_id, "string")
            return None
        return use_id

    def _check_result_block(self, block: object, path: str) -> None:
        if type(block) is not dict:
            self._type(path, block, "object")
            return
        if len(block) != 1 or ("text" not in block and "json" not in block):
            keys = ", ".join(_quote(key) for key in block) or "nothing"
            self._add(
                "content.block",
                path,
                f"a tool result block holds exactly one of text or json; this one has {keys}",
            )
            return
        if "text" in block:
            self._check_text(block["text"], f"{path}.text")
        elif type(block["json"]) is not dict:
            self._type(f"{path}.json", block["json"], "object")

    # Messages --------------------------------------------------------------------------------

    def _check_messages(self, messages: list[Any], sample: _Sample) -> None:
        last_role: object = None
        for index, message in enumerate(messages):
            path = f"$.messages[{index}]"
            if type(message) is not dict:
                self._type(path, message, "object")
                last_role = None
                continue
            if len(message) != 2 or "role" not in message or "content" not in message:
                self._keys(message, _MESSAGE_KEYS, ("role", "content"), path)
            last_role = role = message.get("role")
            self._check_role(role, index, path, sample)
            content = message.get("content")
            if content is not None:
                self._check_content(content, f"{path}.content", role, sample)
            if role == "user":
                # The user turn after an assistant turn must answer all of its toolUse blocks.
                self._report_unanswered(sample.open_uses)
                sample.open_uses = {}
        if not sample.order_reported and last_role != "assistant":
            self._add(
                "roles.order",
                f"$.messages[{len(messages) - 1}].role",
                f"the last turn is {_quote(last_role)}: a sample ends with the assistant turn "
                "it teaches; add one or drop the trailing turn",
            )
        # toolUse blocks in the final assistant turn may stay unanswered: they teach the call.

    def _check_role(self, role: object, index: int, path: str, sample: _Sample) -> None:
        if role not in ("user", "assistant"):
            if role is not None:
                hint = ': move system prompts to the top-level "system"' if role == "system" else ""
                self._add(
                    "roles.invalid",
                    f"{path}.role",
                    f"role {_quote(role)} is not 'user' or 'assistant'{hint}",
                )
            sample.order_reported = True  # the order cannot be judged past an unknown role
            return
        expected = "user" if index % 2 == 0 else "assistant"
        if role != expected and not sample.order_reported:
            sample.order_reported = True
            self._add(
                "roles.order",
                f"{path}.role",
                f"turn {index} is {role!r} but {expected!r} was expected: turns alternate "
                "user, assistant, ... starting with user",
            )

    def _check_content(self, content: object, path: str, role: object, sample: _Sample) -> None:
        if type(content) is not list:
            self._type(path, content, "array")
            return
        if not content:
            self._add(
                "list.empty", path, "the turn has no content: add a text block or remove the turn"
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
                problem = _text_problem(block["text"])
                if problem is not None:
                    self._add(problem[0], f"{path}[{position}].text", problem[1])
            elif self._check_block(block, f"{path}[{position}]", role, sample):
                reasoning_blocks += 1
        if reasoning_blocks == len(content):
            self._add(
                "content.reasoning_only",
                path,
                "the turn has reasoning but no text: add the answer as a text block after the "
                "reasoningContent",
            )

    def _check_block(self, block: object, path: str, role: object, sample: _Sample) -> bool:
        """Checks one content block; True when it is a reasoningContent block."""
        if type(block) is not dict:
            self._type(path, block, "object")
            return False
        if len(block) != 1:
            keys = ", ".join(_quote(key) for key in block) or "nothing"
            self._add(
                "content.block",
                path,
                f"a content block holds exactly one of {_BLOCK_KINDS}; this one has {keys}: "
                "split it into one block per kind",
            )
            return False
        ((kind, value),) = block.items()
        kind_path = f"{path}.{kind}"
        allowed_role = _ROLE_OF_KIND.get(kind)
        if allowed_role is not None and role != allowed_role and role in ("user", "assistant"):
            self._add(
                "content.role",
                kind_path,
                f"{kind} blocks belong in {allowed_role} turns only: move the block to a "
                f"{allowed_role} turn",
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
        elif kind == "toolResult":
            result_id = self._check_tool_result(value, kind_path)
            if result_id is not None:
                self._pair_result(result_id, f"{kind_path}.toolUseId", sample)
        else:
            self._add(
                "content.block",
                path,
                f"unknown content block kind {_quote(kind)}: use one of {_BLOCK_KINDS}",
            )
        return False

    def _pair_result(self, result_id: str, path: str, sample: _Sample) -> None:
        if result_id in sample.open_uses:
            del sample.open_uses[result_id]
            sample.answered.add(result_id)
        elif result_id in sample.answered:
            self._add(
                "tools.duplicate_result",
                path,
                f"toolUse {_quote(result_id)} is answered more than once: keep one toolResult "
                "per toolUse",
            )
        else:
            self._add(
                "tools.result_unmatched",
                path,
                f"toolResult {_quote(result_id)} answers no toolUse of the previous assistant "
                "turn: fix the id or add the toolUse",
            )

    def _report_unanswered(self, open_uses: dict[str, str]) -> None:
        for use_id, path in open_uses.items():
            self._add(
                "tools.unanswered",
                f"{path}.toolUseId",
                f"toolUse {_quote(use_id)} is not answered by a toolResult in the next user turn: "
                "add the result there, or end the sample with this assistant turn",
            )

    def _check_reasoning(self, value: object, path: str, sample: _Sample) -> None:
        if not sample.reasoning_path:
            sample.reasoning_path = path
        if type(value) is not dict:
            self._type(path, value, "object")
            return
        if len(value) != 1 or "reasoningText" not in value:
            self._keys(value, _REASONING_KEYS, ("reasoningText",), path)
        inner = value.get("reasoningText")
        if inner is None:
            return
        path += ".reasoningText"
        if type(inner) is not dict:
            self._type(path, inner, "object")
            return
        if len(inner) != 1 or "text" not in inner:
            self._keys(inner, _REASONING_TEXT_KEYS, ("text",), path)
        if "text" in inner:
            self._check_text(inner["text"], f"{path}.text")

    def _check_media(self, kind: str, value: object, path: str, sample: _Sample) -> None:
        sample.media[kind] = sample.media.get(kind, 0) + 1
        if not sample.media_path:
            sample.media_path = path
        if type(value) is not dict:
            self._type(path, value, "object")
            return
        if len(value) != 2 or not value.keys() <= _MEDIA_KEYS:
            self._keys(value, _MEDIA_KEYS, ("format", "source"), path)
        fmt = value.get("format")
        allowed = MEDIA_FORMATS[kind]
        # A format must be a string before the set lookup: a list or object is unhashable.
        if fmt is not None and (type(fmt) is not str or fmt not in allowed):
            hint = _FORMAT_HINTS.get(fmt) if type(fmt) is str else None
            self._add(
                "media.format",
                f"{path}.format",
                f"{kind} format {_quote(fmt)} is not accepted; use one of "
                f"{', '.join(sorted(allowed))}" + (f" (write {hint!r})" if hint else ""),
            )
        source = value.get("source")
        if source is None:
            return
        path += ".source"
        if type(source) is not dict:
            self._type(path, source, "object")
            return
        if len(source) != 1 or "s3Location" not in source:
            self._add(
                "media.source",
                path,
                "media must be referenced as source.s3Location {uri, bucketOwner?} and nothing "
                "else (inline bytes are not accepted for training): upload the file to S3",
            )
            return
        self._check_s3_location(source["s3Location"], f"{path}.s3Location")

    def _check_s3_location(self, location: object, path: str) -> None:
        if type(location) is not dict:
            self._type(path, location, "object")
            return
        if not location.keys() <= _S3_LOCATION_KEYS or "uri" not in location:
            self._keys(location, _S3_LOCATION_KEYS, ("uri",), path)
        owner = location.get("bucketOwner")
        if owner is not None and (type(owner) is not str or not _ACCOUNT_ID.fullmatch(owner)):
            self._add(
                "media.source",
                f"{path}.bucketOwner",
                "bucketOwner must be the 12-digit account id that owns the bucket, or left out",
            )
        uri = location.get("uri")
        if uri is None:
            return
        if type(uri) is not str:
            self._type(f"{path}.uri", uri, "string")
            return
        match = _S3_URI.fullmatch(uri)
        if match is None:
            self._add(
                "media.uri",
                f"{path}.uri",
                "the uri must be s3://<bucket>/<key> with a key of letters, digits, '_', '-', "
                "'/' and '.' only: rename the object",
            )
        elif self.dataset_bucket is not None and match.group(1) != self.dataset_bucket:
            self._add(
                "media.bucket",
                f"{path}.uri",
                f"the media is in bucket {_quote(match.group(1))} but the dataset is in "
                f"{_quote(self.dataset_bucket)}: copy the media into the dataset's bucket",
            )


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
_PART_PATHS = {
    "system": "$.system",
    "reasoning": "$.messages",
    "tools": "$.toolConfig",
    "media": "$.messages",
}


# Every reserved string ends in ':' after a word, or starts with '<' or '['. Jumping between
# those characters with str.find and lower-casing only the few characters around each is several
# times faster than lower-casing the whole text and scanning it once per reserved string.
_COLON_WORDS = tuple(token[:-1] for token in RESERVED_STRINGS if token.endswith(":"))
_OPENERS = {
    opener: tuple(token for token in RESERVED_STRINGS if token.startswith(opener))
    for opener in ("<", "[")
}
_LONGEST_WORD = max(map(len, _COLON_WORDS))
_LONGEST_OPENED = max(len(token) for tokens in _OPENERS.values() for token in tokens)


def _reserved_in(text: str) -> list[str]:
    """The reserved strings in `text`, matched in any case, in `RESERVED_STRINGS` order."""
    found: set[str] = set()
    at = text.find(":")
    while at >= 0:
        before = text[max(0, at - _LONGEST_WORD) : at].lower()
        if before.endswith(_COLON_WORDS):
            found.update(word + ":" for word in _COLON_WORDS if before.endswith(word))
        at = text.find(":", at + 1)
    for opener, tokens in _OPENERS.items():
        at = text.find(opener)
        while at >= 0:
            window = text[at : at + _LONGEST_OPENED].lower()
            if window.startswith(tokens):
                found.update(token for token in tokens if window.startswith(token))
            at = text.find(opener, at + 1)
    return [token for token in RESERVED_STRINGS if token in found] if found else []


def _text_problem(text: object) -> tuple[str, str] | None:
    """(rule, message) for a text that breaks a rule, or None."""
    if type(text) is not str:
        return "field.type", f"expected a JSON string, found a {_json_type(text)}"
    if not text or text.isspace():
        return "text.empty", "the text is empty: write the text or drop the block"
    found = _reserved_in(text)
    if found:
        return (
            "text.reserved",
            f"the text contains the reserved string(s) {', '.join(map(repr, found))} (matched "
            "in any case), which fail the training job: reword them (for example 'Customer -', "
            "'Agent -')",
        )
    return None


def _json_error_message(text: str, exc: ValueError) -> str:
    if text.startswith("\ufeff"):
        return "the line starts with a UTF-8 byte order mark: save the file as UTF-8 without BOM"
    if isinstance(exc, json.JSONDecodeError):
        return (
            f"not valid JSON ({exc.msg} at column {exc.colno}): each line must be one complete "
            "JSON object; check for unescaped quotes or newlines, or a trailing comma"
        )
    return f"not valid JSON ({exc}): write numbers as finite values"


def check_object_key(key: str) -> str | None:
    """Why an S3 object key cannot be a dataset file, or None when it can.

    AWS accepts dataset file names of letters, digits, '_', '-', '/' and '.', ending in .jsonl.
    """
    if not key.endswith(".jsonl"):
        return f"the file {_quote(key)} does not end in .jsonl: rename it (JSON Lines only)"
    if not _FILE_KEY.fullmatch(key):
        return (
            f"the file name {_quote(key)} has characters other than letters, digits, '_', '-', "
            "'/' and '.': rename it"
        )
    return None


def validate_lines(
    lines: Iterable[str | bytes],
    *,
    global_batch_size: int,
    reasoning_enabled: bool | None,
    dataset_bucket: str | None = None,
    max_findings: int = 1000,
    source: str = "",
) -> Report:
    """Validate one dataset file given as lines (`str` or `bytes`, line endings optional).

    See `Validator` for the arguments; ValueError for an invalid argument.
    """
    validator = Validator(
        global_batch_size=global_batch_size,
        reasoning_enabled=reasoning_enabled,
        dataset_bucket=dataset_bucket,
        max_findings=max_findings,
    )
    validator.feed_lines(lines, source=source)
    return validator.finish()
