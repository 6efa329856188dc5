"""What a dataset validation found: `Finding` (one problem) and `Report` (the outcome).

A finding is an error (the run must stop) or a warning (reported; the run goes on). A report is
`ok` when it holds no error; warnings never make it fail unless the validation was strict, in
which case every finding was recorded as an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lambdas.dataset.rules import ERROR, RULES, SEVERITY, WARNING


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: where it is, which rule it breaks, how bad it is, and how to fix it.

    `line` is 1-based within `source` (a file path or S3 URI; "" when only one unnamed stream was
    checked); 0 for a dataset-level finding. `path` is a JSON path into the line's object
    (`$` is the whole line; "" for a dataset-level finding). `rule` is a key of `RULES`;
    `severity` is "error" or "warning".
    """

    line: int
    path: str
    rule: str
    message: str
    source: str = ""
    severity: str = ERROR

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "line": self.line,
            "path": self.path,
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
        }

    def __str__(self) -> str:
        return self.describe(with_source=True)

    def describe(self, *, with_source: bool) -> str:
        """One line: [source] line N path [rule]: message (a warning says so before the rule)."""
        where = f"line {self.line}" if self.line else "dataset"
        if with_source and self.source:
            where = f"{self.source} {where}"
        if self.path:
            where = f"{where} {self.path}"
        label = self.rule if self.severity == ERROR else f"warning {self.rule}"
        return f"{where} [{label}]: {self.message}"


def _ranked(counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


@dataclass(frozen=True)
class Report:
    """The outcome of one validation.

    `findings` holds the errors first (dataset-level, then line findings in file order), then the
    warnings in the same order; at most `max_findings` line findings of each severity are kept.
    `counts_by_rule`, `errors`, `warnings` and `total_findings` count every finding,
    kept or not. `samples` counts non-blank lines (what the training job would read). `parts`
    counts the samples that use each optional part.
    """

    samples: int
    findings: tuple[Finding, ...]
    counts_by_rule: dict[str, int]
    total_findings: int
    parts: dict[str, int]
    media_kind: str | None
    sources: tuple[tuple[str, int], ...]
    errors: int
    settings: dict[str, Any] = field(default_factory=dict)
    data_format: str = "bedrock-conversation-2024"

    @property
    def warnings(self) -> int:
        """How many findings are warnings."""
        return self.total_findings - self.errors

    @property
    def ok(self) -> bool:
        """True when no error was found (warnings allowed)."""
        return self.errors == 0

    @property
    def clean(self) -> bool:
        """True when nothing at all was found."""
        return self.total_findings == 0

    @property
    def truncated(self) -> bool:
        """True when more findings were counted than kept."""
        return self.total_findings > len(self.findings)

    def counts_by_severity(self, severity: str) -> dict[str, int]:
        """The per-rule counts of one severity ("error" or "warning")."""
        strict = bool(self.settings.get("strict"))
        return {
            rule: count
            for rule, count in self.counts_by_rule.items()
            if (ERROR if strict else SEVERITY.get(rule, ERROR)) == severity
        }

    def to_dict(self) -> dict[str, Any]:
        """The full report as plain JSON-ready data (the handler writes it to S3)."""
        return {
            "ok": self.ok,
            "format": self.data_format,
            "samples": self.samples,
            "errors_total": self.errors,
            "warnings_total": self.warnings,
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

    def headline(self) -> str:
        """One line: valid or invalid, the samples, and the errors and warnings by count."""
        if self.clean:
            return f"dataset valid: {self.samples} samples, no findings"
        warnings = _plural(self.warnings, "warning")
        if self.ok:
            return f"dataset valid: {self.samples} samples, {warnings}"
        return (
            f"dataset invalid: {_plural(self.errors, 'error')} and {warnings} in "
            f"{self.samples} samples"
        )

    def summary(self, limit: int = 5, max_chars: int = 900) -> str:
        """A short text for a failure reason: the headline with counts by rule (errors first),
        then the first findings.

        At most `limit` findings, one per line, each naming its file only when the file changes;
        never more than `max_chars` characters (whole findings are dropped to stay within it).
        """
        if self.clean:
            return self.headline()
        ranked = _ranked(self.counts_by_severity(ERROR)) + [
            (f"warning {rule}", count) for rule, count in _ranked(self.counts_by_severity(WARNING))
        ]
        counts = ", ".join(f"{rule}: {count}" for rule, count in ranked[:5])
        if len(ranked) > 5:
            counts += ", ..."
        head = f"{self.headline()} ({counts})"
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
