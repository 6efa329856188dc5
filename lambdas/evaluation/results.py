"""Reading an evaluation job's scores from its `output.tar.gz`, streamed in one pass.

The Nova evaluation container writes `<run name>/eval_results/results_<timestamp>.json` into the
archive beside `inference_output.jsonl` and `details/*.parquet` (shared NOVA_FACTS section 7).
`read_evaluation_results(stream, source=..., run_name=...)` reads the stream with the checkpoint
reader's bounded gunzip (`lambdas.checkpoint.GunzipStream`), walks every member in tar stream
mode, skipping the others whatever their size, and keeps the results files of `run_name`
(member names with or without `./`, in any order). Several results files: the latest timestamp
is taken and the others are named in `ignored`. The whole archive is read, because a later
member may hold a later timestamp; memory stays a few MiB.

`results.all` must be an object of finite numbers: every `<metric>` with its `<metric>_stderr`
where given. Anything else (no results file, a link, an oversize file, bad JSON, no
`results.all`, a non-numeric value, no metric at all) raises `EvaluationResultsError` naming the
object and the fix; nothing partial is returned. Standard library only.
"""

from __future__ import annotations

import json
import math
import re
import tarfile
from dataclasses import dataclass, field
from typing import Any

from lambdas.checkpoint import (
    CHUNK_BYTES,
    RERUN_HINT,
    BinaryStream,
    GunzipStream,
    OutputArchiveError,
)

# A results file is a few KB (one number per metric and subtask); this bounds a broken one.
MAX_RESULTS_BYTES = 16 * 1024 * 1024
STDERR_SUFFIX = "_stderr"
_RESULTS_MEMBER = re.compile(r"(?:\./)?(?P<run>[^/]+)/eval_results/results_(?P<stamp>[^/]+)\.json")
_TAR_BLOCK = 512
_SHOWN = 10
FIX = (
    "check that the evaluation job completed and that EvaluationRunName is the run.name of its "
    "recipe; if it did, run the evaluation again to rewrite its output"
)


class EvaluationResultsError(ValueError):
    """The evaluation output holds no usable results; the message names the object and the fix."""


@dataclass(frozen=True)
class EvaluationResults:
    """The scores of one evaluation: `metrics` by name, `stderr` by metric name where given.

    `member` is the results file read; `ignored` the older results files of the same run.
    """

    source: str
    member: str
    timestamp: str
    metrics: dict[str, float]
    stderr: dict[str, float]
    ignored: tuple[str, ...] = field(default=())

    def note(self) -> str:
        """What the reader chose, for the decision and the report ("" when nothing to say)."""
        if not self.ignored:
            return ""
        return (
            f"{len(self.ignored) + 1} results files in {self.source}; took the latest, "
            f"{self.member}, and ignored {', '.join(self.ignored[:_SHOWN])}"
        )


def results_member(name: str, run_name: str) -> str | None:
    """The timestamp of a results file of `run_name`, or None when `name` is not one."""
    match = _RESULTS_MEMBER.fullmatch(name)
    if match is None or match.group("run") != run_name:
        return None
    return match.group("stamp")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def parse_results(data: bytes, *, where: str) -> tuple[dict[str, float], dict[str, float]]:
    """`results.all` of a results file as (metrics, stderr); EvaluationResultsError if unusable."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EvaluationResultsError(f"{where} is not valid JSON ({error}); {FIX}") from None
    results = document.get("results") if isinstance(document, dict) else None
    scores = results.get("all") if isinstance(results, dict) else None
    if not isinstance(scores, dict):
        raise EvaluationResultsError(
            f"{where} has no results.all object; the evaluation container writes "
            '{"results": {"all": {"<metric>": value, ...}}}: ' + FIX
        )
    bad = [f"{key}={value!r}"[:80] for key, value in scores.items() if _number(value) is None]
    if bad:
        raise EvaluationResultsError(
            f"{where}: results.all holds values that are not finite numbers "
            f"({', '.join(bad[:5])}); {FIX}"
        )
    metrics = {str(k): float(v) for k, v in scores.items() if not str(k).endswith(STDERR_SUFFIX)}
    stderr = {
        str(k).removesuffix(STDERR_SUFFIX): float(v)
        for k, v in scores.items()
        if str(k).endswith(STDERR_SUFFIX) and str(k).removesuffix(STDERR_SUFFIX) in metrics
    }
    if not metrics:
        raise EvaluationResultsError(f"{where}: results.all holds no metric; {FIX}")
    return metrics, stderr


def _read_member(archive: tarfile.TarFile, member: tarfile.TarInfo, source: str) -> bytes:
    where = f"{member.name!r} in {source}"
    if not member.isfile():
        raise EvaluationResultsError(
            f"{where} is not a regular file (a link or a folder); links are never followed: {FIX}"
        )
    if member.size > MAX_RESULTS_BYTES:
        raise EvaluationResultsError(
            f"{where} is {member.size} bytes, over the {MAX_RESULTS_BYTES} byte limit for a "
            f"results file; {FIX}"
        )
    handle = archive.extractfile(member)
    return b"" if handle is None else handle.read()


@dataclass
class _Scan:
    run_name: str
    source: str
    best: tuple[str, str, bytes] | None = None  # (timestamp, member name, data)
    ignored: list[str] = field(default_factory=list)
    other_runs: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    count: int = 0

    def visit(self, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        self.count += 1
        if len(self.names) < _SHOWN:
            self.names.append(member.name[:200])
        stamp = results_member(member.name, self.run_name)
        if stamp is None:
            if _RESULTS_MEMBER.fullmatch(member.name) and len(self.other_runs) < _SHOWN:
                self.other_runs.append(member.name[:200])
            return
        # ISO-like timestamps sort as text; the name breaks a tie, so the choice is stable.
        if self.best is not None and (stamp, member.name) <= self.best[:2]:
            self.ignored.append(member.name)
            return
        data = _read_member(archive, member, self.source)
        if self.best is not None:
            self.ignored.append(self.best[1])
        self.best = (stamp, member.name, data)

    def missing(self) -> EvaluationResultsError:
        expected = f"{self.run_name}/eval_results/results_<timestamp>.json"
        if self.other_runs:
            return EvaluationResultsError(
                f"no {expected} in {self.source}, but results of another run name: "
                f"{', '.join(self.other_runs)}; pass the evaluation recipe's run.name as "
                "EvaluationRunName"
            )
        shown = ", ".join(repr(n) for n in self.names) or "none"
        more = f" and {self.count - len(self.names)} more" if self.count > len(self.names) else ""
        return EvaluationResultsError(
            f"no {expected} in {self.source} (members: {shown}{more}); {FIX}"
        )


def read_evaluation_results(
    stream: BinaryStream, *, source: str, run_name: str
) -> EvaluationResults:
    """The scores in an evaluation output.tar.gz stream (see the module docstring)."""
    gunzip = GunzipStream(stream, source=source)
    scan = _Scan(run_name, source)
    try:
        with tarfile.open(fileobj=gunzip, mode="r|", bufsize=CHUNK_BYTES) as archive:  # type: ignore[call-overload]
            for member in archive:
                # Stream mode remembers every header; forget them so memory stays flat.
                archive.members.clear()
                scan.visit(archive, member)
            end_of_tar = archive.offset
        gunzip.drain()
    except tarfile.TarError as error:
        raise EvaluationResultsError(
            f"{source} is not a readable tar archive after {scan.count} member(s) ({error}); {FIX}"
        ) from None
    except OutputArchiveError as error:
        # The gunzip layer's messages carry the training job's fix; this is the evaluation's.
        raise EvaluationResultsError(str(error).replace(RERUN_HINT, FIX)) from None
    if gunzip.decompressed_bytes < end_of_tar + 2 * _TAR_BLOCK:
        raise EvaluationResultsError(
            f"{source} is truncated: the tar data ends after {scan.count} member(s) without its "
            f"end-of-archive marker; {FIX}"
        )
    if scan.best is None:
        raise scan.missing()
    stamp, name, data = scan.best
    metrics, stderr = parse_results(data, where=f"{name!r} in {source}")
    return EvaluationResults(source, name, stamp, metrics, stderr, tuple(sorted(scan.ignored)))
