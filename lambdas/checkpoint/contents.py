"""What the two wanted members of output.tar.gz say: the manifest and the loss curve.

`parse_manifest(data, source=...)` takes the checkpoint URI from `manifest.json`;
`summarize_metrics(lines)` reads `step_wise_training_metrics.csv` into a `LossSummary`, or says
why it cannot be trusted. Pure: bytes and lines in, no I/O. Standard library only.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lambdas.checkpoint.errors import RERUN_HINT, OutputArchiveError
from lambdas.recipe import MAX_URI_CHARS, is_s3_uri

MANIFEST = "manifest.json"
METRICS = "step_wise_training_metrics.csv"
# A manifest is a few hundred bytes; anything near this limit is not a manifest.
MAX_MANIFEST_BYTES = 1024 * 1024
# 100,000 steps (the documented maximum) of a few columns each fit well inside this.
MAX_METRICS_BYTES = 16 * 1024 * 1024
CHECKPOINT_KEY = "checkpoint_s3_bucket"
STEP_COLUMN = "step_number"
LOSS_COLUMN = "training_loss"
# Member names quoted when the manifest is missing (the archive may hold thousands).
SHOWN_MEMBERS = 20


@dataclass(frozen=True)
class LossSummary:
    """The training loss curve in four numbers. `steps` is the largest step_number."""

    steps: int
    first_loss: float
    final_loss: float
    min_loss: float


def parse_manifest(data: bytes, *, source: str) -> tuple[dict[str, Any], str]:
    """The manifest as a dict and its checkpoint URI; OutputArchiveError says what is wrong."""
    where = f"{MANIFEST} in {source}"
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise OutputArchiveError(f"{where} is not valid JSON ({error}); {RERUN_HINT}") from None
    if not isinstance(manifest, dict):
        raise OutputArchiveError(
            f"{where} must be a JSON object, got {type(manifest).__name__}; {RERUN_HINT}"
        )
    if CHECKPOINT_KEY not in manifest:
        keys = ", ".join(sorted(map(str, manifest))[:SHOWN_MEMBERS]) or "none"
        raise OutputArchiveError(
            f"{where} has no {CHECKPOINT_KEY!r} key (keys: {keys}); the job wrote no checkpoint "
            "location: check that it completed, and whether the container's manifest format changed"
        )
    checkpoint = manifest[CHECKPOINT_KEY]
    if not isinstance(checkpoint, str) or not is_s3_uri(checkpoint, object_key_required=True):
        shown = repr(checkpoint)[:200]
        raise OutputArchiveError(
            f"{where}: {CHECKPOINT_KEY} must be an s3://bucket/key URI of the checkpoint "
            f"(at most {MAX_URI_CHARS} characters), got {shown}"
        )
    return manifest, checkpoint


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def summarize_metrics(lines: Iterable[str]) -> tuple[LossSummary | None, str]:
    """Summarize step_wise_training_metrics.csv; (None, why) when it cannot be trusted."""
    rows = csv.reader(lines)
    header = next(rows, None)
    if header is None:
        return None, "the metrics file is empty"
    columns = [name.strip() for name in header]
    if STEP_COLUMN not in columns or LOSS_COLUMN not in columns:
        shown = ", ".join(columns)[:200]
        return None, f"the metrics header lacks {STEP_COLUMN} or {LOSS_COLUMN} (got: {shown})"
    step_at, loss_at = columns.index(STEP_COLUMN), columns.index(LOSS_COLUMN)
    first: tuple[float, float] | None = None  # (step, loss) at the smallest step
    final: tuple[float, float] | None = None  # (step, loss) at the largest step
    lowest = math.inf
    for row in rows:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(step_at, loss_at):
            return None, f"metrics row {rows.line_num} has {len(row)} columns"
        step, loss = _number(row[step_at]), _number(row[loss_at])
        if step is None or not step.is_integer() or loss is None:
            return None, f"metrics row {rows.line_num} is not a step number and a finite loss"
        if first is None or step < first[0]:
            first = (step, loss)
        if final is None or step >= final[0]:
            final = (step, loss)
        lowest = min(lowest, loss)
    if first is None or final is None:
        return None, "the metrics file has a header but no rows"
    return LossSummary(int(final[0]), first[1], final[1], lowest), ""
