"""A streaming rule engine for JSONL datasets, and its entry points.

It reads a dataset one line at a time, holding one line (and one read chunk) at a time, so memory
does not grow with the file. The engine owns what every JSONL format shares: splitting chunks into
lines, blank and oversized lines, JSON parsing, counting and keeping findings, severities, and the
report. A *format* owns the per-sample and dataset-level rules: today bedrock-conversation-2024
(`lambdas.dataset.converse.ConverseFormat`, Nova 2 SFT training and validation data); another
format (the evaluation data's gen_qa, say) plugs in through `Validator(data_format=...)` with an
object that has `name`, `check_sample(obj)`, `finish(samples, add)`, `settings()` and
`parts_used()`, and reports through the engine's `add(rule, path, message)`.

Rules, ids and severities: lambdas/dataset/rules.py (`RULE_TABLE`); why each severity, and how
AWS's sample validator behaves on each: docs/dataset-rules.md; the history: decision 0006.

Entry points:
- `validate_lines(lines, ...)` for an iterable of `str` or `bytes` lines (one file);
- `Validator` to check several files as one dataset and to split raw byte chunks into lines
  (`feed_chunks`), as the Lambda handler does with an S3 object body.

Standard library only: the Lambda handler and the operator command both use this module.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from lambdas.dataset.converse import PARTS, ConverseFormat
from lambdas.dataset.converse_parts import MAX_MEDIA_PER_SAMPLE, MEDIA_FORMATS
from lambdas.dataset.report import Finding, Report
from lambdas.dataset.rules import (
    ERROR,
    MAX_LINE_BYTES,
    MAX_SAMPLES,
    MIN_SAMPLES,
    RESERVED_ALTERNATIVES,
    RESERVED_STRINGS,
    RULE_TABLE,
    RULES,
    SCHEMA_VERSION,
    SEVERITY,
    WARNING,
    article,
    json_type,
    quote,
    reserved_in,
)

__all__ = [
    "CHUNK_BYTES",
    "ERROR",
    "MAX_LINE_BYTES",
    "MAX_MEDIA_PER_SAMPLE",
    "MAX_SAMPLES",
    "MEDIA_FORMATS",
    "MIN_SAMPLES",
    "PARTS",
    "RESERVED_ALTERNATIVES",
    "RESERVED_STRINGS",
    "RULES",
    "RULE_TABLE",
    "SCHEMA_VERSION",
    "SEVERITY",
    "WARNING",
    "DataFormat",
    "Finding",
    "Report",
    "Validator",
    "check_object_key",
    "reserved_in",
    "validate_lines",
]

# Read size for `Validator.feed_chunks` callers.
CHUNK_BYTES = 1024 * 1024

# AWS documents dataset file names as alphanumerics, underscores, hyphens, slashes and dots.
_FILE_KEY = re.compile(r"[A-Za-z0-9_./-]+")

Where = tuple[str, int]


class DataFormat(Protocol):
    """The rules of one dataset format, as the engine drives them."""

    name: str

    def check_sample(self, obj: dict[str, Any]) -> None: ...

    def finish(self, samples: int, add: Callable[[str, str, Where | None, str], None]) -> None: ...

    def settings(self) -> dict[str, Any]: ...

    def parts_used(self) -> dict[str, int]: ...


class _RejectConstant(ValueError):
    """NaN or Infinity in a line: Python parses them, JSON does not allow them."""


def _reject_constant(name: str) -> Any:
    raise _RejectConstant(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_RAW_DECODE = _DECODER.raw_decode


def _decode(text: str) -> Any:
    """`json.loads` semantics without NaN/Infinity. A line that starts with its value and ends
    with it, or with whitespace such as a CRLF's "\r", skips `decode`'s two whitespace scans;
    anything else goes through `decode`, which also words the error."""
    try:
        obj, end = _RAW_DECODE(text)
    except ValueError:
        return _DECODER.decode(text)
    if end != len(text) and not text[end:].isspace():
        return _DECODER.decode(text)  # raises "Extra data"
    return obj


class Validator:
    """Checks one dataset, given as one or more line streams (files), in constant memory.

    Feed every file with `feed_lines` or `feed_chunks`, then call `finish` for the report.
    `global_batch_size`, `reasoning_enabled` and `dataset_bucket` configure the default format,
    bedrock-conversation-2024 (see `ConverseFormat`); `data_format`, when given, is a factory
    `sink -> DataFormat` for another format (those three are then ignored). `strict` records every
    warning as an error. `max_findings` caps the line findings kept of each severity (all are
    counted).
    """

    def __init__(
        self,
        *,
        global_batch_size: int,
        reasoning_enabled: bool | None,
        dataset_bucket: str | None = None,
        max_findings: int = 1000,
        strict: bool = False,
        data_format: Callable[[Validator], DataFormat] | None = None,
    ) -> None:
        if isinstance(max_findings, bool) or not isinstance(max_findings, int) or max_findings < 1:
            raise ValueError(f"max_findings must be a positive integer, got {max_findings!r}")
        if strict not in (True, False):
            raise ValueError(f"strict must be True or False, got {strict!r}")
        self.max_findings = max_findings
        self.strict = strict
        self._severity = dict.fromkeys(RULES, ERROR) if strict else SEVERITY
        # Where the line being checked is; set once per line rather than passed everywhere.
        self.current_source = ""
        self.current_line = 0
        self._kept: dict[str, list[Finding]] = {ERROR: [], WARNING: []}
        self._file_findings: list[Finding] = []
        self._counts: Counter[str] = Counter()
        self._total = 0
        self._errors = 0
        self._samples = 0
        self._sources: list[tuple[str, int]] = []
        self.format: DataFormat = (
            data_format(self)
            if data_format is not None
            else ConverseFormat(
                self,
                global_batch_size=global_batch_size,
                reasoning_enabled=reasoning_enabled,
                dataset_bucket=dataset_bucket,
            )
        )
        self._check_sample = self.format.check_sample

    # Feeding -------------------------------------------------------------------------------

    def feed_lines(self, lines: Iterable[str | bytes], *, source: str = "") -> None:
        """Check every line of one file. Lines may keep their line ending."""
        self.current_source = source
        number = 0
        for number, raw in enumerate(lines, 1):
            self.current_line = number
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
        self.current_source = source
        number = 0
        pending: list[bytes] = []
        pending_bytes = 0
        # True while inside a line already known to be too long: its bytes are dropped.
        dropping = False
        check_line = self._check_line
        for chunk in chunks:
            parts = chunk.split(b"\n")
            tail = parts.pop()
            for part in parts:
                number += 1
                self.current_line = number
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
                    check_line(line)
            if tail and not dropping:
                pending.append(tail)
                pending_bytes += len(tail)
                if pending_bytes > MAX_LINE_BYTES:
                    pending = []
                    pending_bytes = 0
                    dropping = True
        if dropping or pending:
            number += 1
            self.current_line = number
            if dropping:
                self._too_long(None)
            else:
                check_line(b"".join(pending))
        self._sources.append((source, number))

    def add_file_finding(self, source: str, rule: str, message: str) -> None:
        """Record a finding about a whole file (its name, say); kept like dataset findings."""
        if rule not in RULES:
            raise ValueError(f"unknown rule id {rule!r}; use one of: {', '.join(RULES)}")
        severity = self._severity[rule]
        self._counts[rule] += 1
        self._total += 1
        self._errors += severity == ERROR
        self._file_findings.append(Finding(0, "", rule, message, source, severity))

    def finish(self) -> Report:
        """Run the dataset-level rules and return the report; the validator itself is unchanged."""
        dataset = list(self._file_findings)
        counts = Counter(self._counts)
        total = self._total
        errors = self._errors

        def add(rule: str, message: str, at: Where | None, path: str) -> None:
            nonlocal total, errors
            severity = self._severity[rule]
            source, line = at if at else ("", 0)
            dataset.append(Finding(line, path, rule, message, source, severity))
            counts[rule] += 1
            total += 1
            errors += severity == ERROR

        self.format.finish(self._samples, add)
        findings = [
            *(finding for finding in dataset if finding.severity == ERROR),
            *self._kept[ERROR],
            *(finding for finding in dataset if finding.severity == WARNING),
            *self._kept[WARNING],
        ]
        return Report(
            samples=self._samples,
            findings=tuple(findings),
            counts_by_rule=dict(counts),
            total_findings=total,
            parts=self.format.parts_used(),
            media_kind=getattr(self.format, "media_kind", None),
            sources=tuple(self._sources),
            errors=errors,
            settings={
                **self.format.settings(),
                "max_findings": self.max_findings,
                "strict": self.strict,
            },
            data_format=self.format.name,
        )

    # Lines -----------------------------------------------------------------------------------

    def add(self, rule: str, path: str, message: str) -> None:
        """Record a finding at the line being checked (formats report through this)."""
        severity = self._severity[rule]
        self._counts[rule] += 1
        self._total += 1
        if severity == ERROR:
            self._errors += 1
        kept = self._kept[severity]
        if len(kept) < self.max_findings:
            kept.append(
                Finding(self.current_line, path, rule, message, self.current_source, severity)
            )

    def _too_long(self, size: int | None) -> None:
        self._samples += 1
        shown = f"{size} bytes" if size is not None else f"more than {MAX_LINE_BYTES} bytes"
        self.add(
            "line.too_long",
            "$",
            f"the line is {shown}, over the {MAX_LINE_BYTES}-byte limit: a sample this large "
            "cannot fit the context; check that each sample is on its own line",
        )

    def _check_line(self, raw: str | bytes) -> None:
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            obj = _decode(text)
        except UnicodeDecodeError as exc:
            self._samples += 1
            self.add(
                "json.invalid", "$", f"the line is not UTF-8 (byte {exc.start}): save it as UTF-8"
            )
            return
        except ValueError as exc:  # JSONDecodeError, NaN/Infinity
            if not raw.strip():
                self.add(
                    "line.blank",
                    "$",
                    "the line is empty: remove blank lines; every line must hold one sample",
                )
                return
            self._samples += 1
            self.add("json.invalid", "$", _json_error_message(text, exc))
            return
        except RecursionError:
            self._samples += 1
            self.add(
                "json.invalid", "$", "the line nests JSON too deeply to parse: flatten the sample"
            )
            return
        self._samples += 1
        if type(obj) is not dict:
            kind = "null" if obj is None else article("JSON " + json_type(obj))
            self.add(
                "json.not_object",
                "$",
                f"the line is {kind}; each line must be one JSON object with "
                + getattr(self.format, "object_fields", '"schemaVersion" and "messages"'),
            )
            return
        self._check_sample(obj)


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
        return f"the file {quote(key)} does not end in .jsonl: rename it (JSON Lines only)"
    if not _FILE_KEY.fullmatch(key):
        return (
            f"the file name {quote(key)} has characters other than letters, digits, '_', '-', "
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
    strict: bool = False,
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
        strict=strict,
    )
    validator.feed_lines(lines, source=source)
    return validator.finish()
