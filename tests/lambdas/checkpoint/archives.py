"""Archive builders and readers shared by the checkpoint tests and the registration tests."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

import pytest

from lambdas.checkpoint import LossSummary, OutputArchiveError, read_job_output

CHECKPOINT = "s3://customer-escrow-111122223333-smtj-a1b2c3d4/job-1/step_100"
SOURCE = "s3://artifacts/runs/exec-1/training/job-1/output/output.tar.gz"
METRICS_CSV = b"step_number,training_loss\n1,2.40\n2,2.10\n3,1.95\n4,2.00\n"
BIG = 200 * 1024 * 1024


def manifest(checkpoint: object = CHECKPOINT, **extra: object) -> bytes:
    return json.dumps({"checkpoint_s3_bucket": checkpoint, **extra}).encode()


@dataclass
class Member:
    """One archive member: a file with `data` (or `size` bytes of zeros), a link or a folder."""

    name: str
    data: bytes = b""
    size: int | None = None
    kind: bytes = tarfile.REGTYPE
    linkname: str = ""


class Zeros(io.RawIOBase):
    """`size` zero bytes, produced as they are read."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def write_tar_gz(target: BinaryIO, members: Iterable[Member]) -> None:
    """A gzip-compressed tar of `members`, in order, written to a binary file object."""
    with tarfile.open(fileobj=target, mode="w:gz", compresslevel=1) as archive:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.type = member.kind
            info.linkname = member.linkname
            info.mtime = 0
            if member.kind == tarfile.REGTYPE:
                info.size = member.size if member.size is not None else len(member.data)
                body = Zeros(member.size) if member.size is not None else io.BytesIO(member.data)
                archive.addfile(info, body)
            else:
                archive.addfile(info)


def tar_gz(*members: Member) -> bytes:
    buffer = io.BytesIO()
    write_tar_gz(buffer, members)
    return buffer.getvalue()


def job_archive(*, manifest_last: bool = False, prefix: str = "./") -> bytes:
    """A realistic output.tar.gz: a log, the metrics and the manifest."""
    members = [
        Member(f"{prefix}manifest.json", manifest()),
        Member(f"{prefix}step_wise_training_metrics.csv", METRICS_CSV),
        Member(f"{prefix}training.log", b"step 1 loss 2.4\n" * 1000),
    ]
    if manifest_last:
        members = members[::-1]
    return tar_gz(*members)


class CountingStream:
    """A binary stream that counts what was read from it."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.read_bytes = 0

    def read(self, size: int = -1, /) -> bytes:
        chunk = self._data.read(size)
        self.read_bytes += len(chunk)
        return chunk


def read(data: bytes) -> object:
    return read_job_output(io.BytesIO(data), source=SOURCE)


def error_of(data: bytes) -> str:
    with pytest.raises(OutputArchiveError) as caught:
        read_job_output(io.BytesIO(data), source=SOURCE)
    message = str(caught.value)
    assert SOURCE in message
    return message


def tar_bytes(*members: Member) -> bytes:
    return gzip.decompress(tar_gz(*members))


def metrics_of(*members: Member) -> tuple[LossSummary | None, str]:
    output = read_job_output(
        io.BytesIO(tar_gz(Member("manifest.json", manifest()), *members)), source=SOURCE
    )
    assert output.checkpoint_uri == CHECKPOINT
    return output.metrics, output.metrics_problem
