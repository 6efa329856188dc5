"""Reading a job's output.tar.gz in one pass: find the manifest and the metrics, skip the rest.

`read_job_output(stream, source=...)` gunzips the stream (`lambdas.checkpoint.stream`), walks the
tar members in stream mode ("r|"), reads the two wanted members (`lambdas.checkpoint.contents`)
and stops as soon as both are found. Standard library only.
"""

from __future__ import annotations

import csv
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lambdas.checkpoint.contents import (
    MANIFEST,
    MAX_MANIFEST_BYTES,
    MAX_METRICS_BYTES,
    METRICS,
    SHOWN_MEMBERS,
    LossSummary,
    parse_manifest,
    summarize_metrics,
)
from lambdas.checkpoint.errors import RERUN_HINT, OutputArchiveError
from lambdas.checkpoint.stream import CHUNK_BYTES, BinaryStream, GunzipStream

_TAR_BLOCK = 512


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
