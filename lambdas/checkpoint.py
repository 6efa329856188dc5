"""Read what a Nova training job leaves in its `output.tar.gz`: the checkpoint and the loss curve.

`read_job_output(stream, source=...)` takes any binary stream with `read(size)` (an S3 object
body, an open file) and reads it once, front to back, in `CHUNK_BYTES` pieces: nothing is written
to disk and memory does not grow with the archive. It looks only at `manifest.json` and
`step_wise_training_metrics.csv` at the top of the archive (with or without a `./` prefix),
skips every other member whatever its size, and stops reading as soon as both are found.

- The manifest must be a regular file of at most `MAX_MANIFEST_BYTES` holding a JSON object
  whose `checkpoint_s3_bucket` is an s3:// URI; otherwise `OutputArchiveError` says what is wrong
  with which object. A link named `manifest.json` is refused, never followed.
- The metrics are summarized (`LossSummary`); a missing, linked, oversize (over
  `MAX_METRICS_BYTES`) or malformed metrics file does not fail the read: `metrics` is None and
  `metrics_problem` says why.
- A stream that is not gzip, not tar, or ends early raises `OutputArchiveError`. When the
  manifest is missing the whole stream is read, so its gzip checksum is verified too.

Decompression is done here with a bounded output size per read (not by tarfile's "r|gz"), so a
highly compressible member cannot make one read expand into gigabytes; tarfile reads the
decompressed stream in stream mode ("r|"). `ReadAhead` wraps a network stream so that the
download of the next chunks overlaps the decompression of this one (registration uses it for
the S3 body). Standard library only.
"""

from __future__ import annotations

import csv
import json
import math
import queue
import tarfile
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

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
# Read and decompression size: large enough that per-call overhead is negligible next to gunzip,
# small enough that memory stays a few MiB.
CHUNK_BYTES = 1024 * 1024
# Member names quoted when the manifest is missing (the archive may hold thousands).
SHOWN_MEMBERS = 20
_TAR_BLOCK = 512
# What to do about an archive that cannot be read: it is the job's output, not ours to repair.
RERUN_HINT = "check that the training job completed; if it did, run it again to rewrite its output"


class OutputArchiveError(ValueError):
    """The output archive is unreadable or holds no usable manifest; the message says which."""


class BinaryStream(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


@dataclass(frozen=True)
class LossSummary:
    """The training loss curve in four numbers. `steps` is the largest step_number."""

    steps: int
    first_loss: float
    final_loss: float
    min_loss: float


@dataclass(frozen=True)
class JobOutput:
    """What the archive says about the finished job.

    `metrics` is None when the metrics file is missing or unusable, and `metrics_problem` then
    says why ("" otherwise). `members_seen` counts the members looked at before reading stopped.
    """

    checkpoint_uri: str
    manifest: dict[str, Any]
    metrics: LossSummary | None
    metrics_problem: str
    members_seen: int


class ReadAhead:
    """Reads `raw` in a background thread, up to `depth` chunks ahead of the consumer.

    Downloading and decompressing then overlap instead of taking turns: socket reads and zlib
    both release the GIL. `read(size)` returns at most `size` bytes and b"" at the end; an
    exception raised by `raw.read` is raised again by the `read` that reaches it. `close()`
    stops the thread (it does not close `raw`); use it in a `finally`, since the consumer may
    stop long before the end. Memory held: at most `depth + 1` chunks.
    """

    def __init__(
        self, raw: BinaryStream, *, chunk_bytes: int = CHUNK_BYTES, depth: int = 4
    ) -> None:
        self._raw = raw
        self._chunk = chunk_bytes
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._pending = b""
        self._done = False
        self._thread = threading.Thread(target=self._fill, name="read-ahead", daemon=True)
        self._thread.start()

    def _put(self, item: bytes | BaseException) -> bool:
        """Queue an item unless stopped; False once stopped."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def _fill(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._raw.read(self._chunk)
            except BaseException as error:  # noqa: BLE001 - handed to the consumer's thread
                self._put(error)
                return
            if not self._put(data) or not data:
                return

    def read(self, size: int = -1, /) -> bytes:
        if not self._pending and not self._done:
            item = self._queue.get()
            if isinstance(item, BaseException):
                self._done = True
                raise item
            self._pending = item
            self._done = not item
        wanted = len(self._pending) if size is None or size < 0 else size
        out, self._pending = self._pending[:wanted], self._pending[wanted:]
        return out

    def close(self, *, wait_seconds: float = 2.0) -> None:
        """Stop reading ahead. Waits at most `wait_seconds` for a `raw.read` in progress; a thread
        still blocked after that ends when `raw` is closed or its read times out."""
        self._stop.set()
        deadline = time.monotonic() + wait_seconds
        while self._thread.is_alive() and time.monotonic() < deadline:
            # Make room so that a blocked put returns and the thread sees the stop.
            try:
                self._queue.get_nowait()
            except queue.Empty:
                self._thread.join(timeout=0.05)

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class GunzipStream:
    """A gzip stream decompressed on the fly; `read(size)` returns at most `size` bytes.

    Reads every gzip member of a concatenated stream, as gunzip does, and skips zero bytes
    after a member (padding). Raises OutputArchiveError when the input is not gzip, is corrupt,
    or ends inside a member.
    """

    def __init__(self, raw: BinaryStream, *, source: str, chunk_bytes: int = CHUNK_BYTES) -> None:
        self._raw = raw
        self._source = source
        self._chunk = chunk_bytes
        self._inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        self._carry = b""  # input read past a member's end: the start of the next member
        self._finished = False
        self.compressed_bytes = 0
        self.decompressed_bytes = 0

    @property
    def at_end(self) -> bool:
        """True once the stream ended after a complete member (every checksum was verified)."""
        return self._finished

    def _raw_read(self) -> bytes:
        data = self._raw.read(self._chunk)
        self.compressed_bytes += len(data)
        return data

    def _next_member(self) -> bool:
        """After a member's end: True if another member follows, False at the end of input."""
        rest = self._inflater.unused_data
        while True:
            rest = rest.lstrip(b"\0")
            if rest:
                self._inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
                self._carry = rest
                return True
            rest = self._raw_read()
            if not rest:
                return False

    def read(self, size: int = -1, /) -> bytes:
        wanted = self._chunk if size is None or size < 0 else size
        parts: list[bytes] = []
        while wanted > 0 and not self._finished:
            if self._inflater.eof and not self._next_member():
                self._finished = True
                break
            data, self._carry = self._carry or self._inflater.unconsumed_tail, b""
            if not data:
                data = self._raw_read()
                if not data:
                    raise OutputArchiveError(self._ended_early())
            try:
                piece = self._inflater.decompress(data, wanted)
            except zlib.error as error:
                raise OutputArchiveError(self._corrupt(error)) from None
            parts.append(piece)
            wanted -= len(piece)
            self.decompressed_bytes += len(piece)
        return b"".join(parts)

    def drain(self) -> None:
        """Read to the end of the stream, which checks every member's length and CRC."""
        while not self._finished:
            self.read(self._chunk)

    def _ended_early(self) -> str:
        if self.compressed_bytes == 0:
            return f"{self._source} is empty: expected a gzip-compressed tar archive; {RERUN_HINT}"
        return (
            f"{self._source} is truncated: the gzip stream ends after {self.compressed_bytes} "
            f"bytes, before its end marker; {RERUN_HINT}"
        )

    def _corrupt(self, error: zlib.error) -> str:
        if self.decompressed_bytes == 0 and "header" in str(error):
            return (
                f"{self._source} is not gzip-compressed ({error}): expected a .tar.gz archive; "
                f"{RERUN_HINT}"
            )
        return (
            f"{self._source} is corrupt: gzip data error after {self.decompressed_bytes} "
            f"decompressed bytes ({error}); {RERUN_HINT}"
        )


def _role(name: str) -> str | None:
    """Which of the two wanted members a name is, if any. Only top-level names count."""
    bare = name[2:] if name.startswith("./") else name
    if bare == MANIFEST:
        return MANIFEST
    if bare == METRICS:
        return METRICS
    return None


def _link_text(member: tarfile.TarInfo) -> str:
    if member.issym():
        return f"a symbolic link to {member.linkname!r}"
    if member.islnk():
        return f"a hard link to {member.linkname!r}"
    if member.isdir():
        return "a directory"
    return f"a special file (tar type {member.type!r})"


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


def _text_lines(handle: Iterable[bytes]) -> Iterator[str]:
    # io.TextIOWrapper needs a seekable buffer, which a stream-mode member is not.
    for number, line in enumerate(handle):
        text = line.decode("utf-8")
        yield text.removeprefix("\ufeff") if number == 0 else text


def _read_metrics(
    archive: tarfile.TarFile, member: tarfile.TarInfo
) -> tuple[LossSummary | None, str]:
    if not member.isfile():
        return None, f"{METRICS} is {_link_text(member)}; it was not read"
    if member.size > MAX_METRICS_BYTES:
        return None, f"{METRICS} is {member.size} bytes, over the {MAX_METRICS_BYTES} byte limit"
    handle = archive.extractfile(member)
    if handle is None:  # pragma: no cover - isfile() members always have data
        return None, f"{METRICS} has no data"
    try:
        return summarize_metrics(_text_lines(handle))
    except (UnicodeDecodeError, csv.Error) as error:
        return None, f"{METRICS} is not UTF-8 CSV ({error})"


def _read_manifest(archive: tarfile.TarFile, member: tarfile.TarInfo, source: str) -> bytes:
    if not member.isfile():
        raise OutputArchiveError(
            f"{member.name!r} in {source} is {_link_text(member)}; a manifest must be a "
            "regular file, and links are never followed"
        )
    if member.size > MAX_MANIFEST_BYTES:
        raise OutputArchiveError(
            f"{member.name!r} in {source} is {member.size} bytes, over the "
            f"{MAX_MANIFEST_BYTES} byte limit for a manifest"
        )
    handle = archive.extractfile(member)
    if handle is None:  # pragma: no cover - isfile() members always have data
        raise OutputArchiveError(f"{member.name!r} in {source} has no data")
    return handle.read()


def _not_found(source: str, names: list[str], count: int) -> OutputArchiveError:
    shown = ", ".join(repr(name[:100]) for name in names) or "none"
    more = f" and {count - len(names)} more" if count > len(names) else ""
    return OutputArchiveError(
        f"{MANIFEST} not found in {source} (members: {shown}{more}); the training job "
        "writes it at the top of output.tar.gz: check that the job completed"
    )


@dataclass
class _Scan:
    """What one pass over the archive found so far."""

    manifest: bytes | None = None
    metrics: LossSummary | None = None
    metrics_problem: str = f"{METRICS} not found"
    metrics_seen: bool = False
    count: int = 0
    names: list[str] = field(default_factory=list)

    def visit(self, archive: tarfile.TarFile, member: tarfile.TarInfo, source: str) -> None:
        self.count += 1
        if len(self.names) < SHOWN_MEMBERS:
            self.names.append(member.name[:200])
        role = _role(member.name)
        if role == MANIFEST and self.manifest is None:
            self.manifest = _read_manifest(archive, member, source)
        elif role == METRICS and not self.metrics_seen:
            self.metrics_seen = True
            self.metrics, self.metrics_problem = _read_metrics(archive, member)


def read_job_output(stream: BinaryStream, *, source: str) -> JobOutput:
    """Read the manifest and metrics from an output.tar.gz stream (see the module docstring).

    `source` names the archive in every message (e.g. its s3:// URI).
    """
    gunzip = GunzipStream(stream, source=source)
    scan = _Scan()
    try:
        with tarfile.open(fileobj=gunzip, mode="r|", bufsize=CHUNK_BYTES) as archive:  # type: ignore[call-overload]
            while scan.manifest is None or not scan.metrics_seen:
                member = archive.next()
                if member is None:
                    break
                # Stream mode remembers every header it reads; forget them so that an archive
                # of millions of small files does not grow memory.
                archive.members.clear()
                scan.visit(archive, member, source)
            end_of_tar = archive.offset
    except tarfile.TarError as error:
        raise OutputArchiveError(
            f"{source} is not a readable tar archive after {scan.count} member(s) ({error}); "
            f"{RERUN_HINT}"
        ) from None
    if scan.manifest is None:
        gunzip.drain()
        # A complete archive ends with two zero blocks after its last member.
        if gunzip.decompressed_bytes < end_of_tar + 2 * _TAR_BLOCK:
            raise OutputArchiveError(
                f"{source} is truncated: the tar data ends after {scan.count} member(s) "
                f"without its end-of-archive marker; {RERUN_HINT}"
            )
        raise _not_found(source, scan.names, scan.count)
    manifest, checkpoint = parse_manifest(scan.manifest, source=source)
    return JobOutput(
        checkpoint_uri=checkpoint,
        manifest=manifest,
        metrics=scan.metrics,
        metrics_problem=scan.metrics_problem,
        members_seen=scan.count,
    )
