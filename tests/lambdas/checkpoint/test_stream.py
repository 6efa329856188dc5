"""Streaming output.tar.gz (lambdas/checkpoint/stream.py): gunzip and read-ahead. No AWS."""

from __future__ import annotations

import gzip
import io
import os

import pytest

from lambdas.checkpoint import (
    CHUNK_BYTES,
    RERUN_HINT,
    GunzipStream,
    OutputArchiveError,
    ReadAhead,
    read_job_output,
)
from tests.lambdas.checkpoint.archives import (
    CHECKPOINT,
    METRICS_CSV,
    SOURCE,
    Member,
    error_of,
    job_archive,
    manifest,
    read,
    tar_bytes,
    tar_gz,
)


def test_an_empty_stream_is_refused() -> None:
    message = error_of(b"")
    assert message.startswith(f"{SOURCE} is empty: expected a gzip-compressed tar archive; ")
    assert message.endswith(RERUN_HINT)


def test_a_stream_that_is_not_gzip_is_refused() -> None:
    message = error_of(b"PK\x03\x04 this is a zip file, not a tarball" * 10)
    assert "is not gzip-compressed" in message


def test_corrupt_gzip_data_is_refused() -> None:
    data = bytearray(job_archive(manifest_last=True))
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    message = error_of(bytes(data))
    assert "is corrupt: gzip data error" in message


def test_a_truncated_gzip_stream_is_refused() -> None:
    data = job_archive(manifest_last=True)
    message = error_of(data[: len(data) // 2])
    assert "is truncated: the gzip stream ends" in message


def test_a_bad_gzip_checksum_is_refused_when_the_whole_stream_is_read() -> None:
    data = bytearray(tar_gz(Member("./training.log", b"no manifest here")))
    data[-8] ^= 0xFF  # the CRC32 in the gzip trailer
    assert "is corrupt: gzip data error" in error_of(bytes(data))


def test_gunzip_reads_never_exceed_the_size_asked() -> None:
    data = gzip.compress(bytes(10 * CHUNK_BYTES))
    stream = GunzipStream(io.BytesIO(data), source=SOURCE)
    sizes = []
    while chunk := stream.read(CHUNK_BYTES // 4):
        sizes.append(len(chunk))
    assert max(sizes) == CHUNK_BYTES // 4
    assert sum(sizes) == 10 * CHUNK_BYTES
    assert stream.at_end


def test_a_concatenated_gzip_stream_is_read_through_every_member() -> None:
    raw = tar_bytes(
        Member("./training.log", b"log line\n" * 2000),
        Member("./step_wise_training_metrics.csv", METRICS_CSV),
        Member("./manifest.json", manifest()),
    )
    cut = len(raw) // 3  # inside the log: the manifest is only in the second member
    output = read_job_output(
        io.BytesIO(gzip.compress(raw[:cut]) + gzip.compress(raw[cut:])), source=SOURCE
    )
    assert output.checkpoint_uri == CHECKPOINT
    assert output.metrics is not None


def test_zero_padding_after_the_last_member_is_skipped() -> None:
    data = gzip.compress(b"payload" * 1000) + bytes(4096)
    stream = GunzipStream(io.BytesIO(data), source=SOURCE)
    assert stream.read(10**6) == b"payload" * 1000
    assert stream.read(10) == b""
    assert stream.at_end


def test_garbage_after_a_member_is_refused() -> None:
    stream = GunzipStream(io.BytesIO(gzip.compress(b"x" * 100) + b"garbage!"), source=SOURCE)
    with pytest.raises(OutputArchiveError, match="is corrupt: gzip data error after 100"):
        stream.drain()


class EndlessStream:
    """Returns `size` bytes on every read, forever, and counts the reads."""

    def __init__(self) -> None:
        self.reads = 0

    def read(self, size: int = -1, /) -> bytes:
        self.reads += 1
        return b"z" * size


class FailingStream:
    """Returns `good` bytes, then raises OSError."""

    def __init__(self, good: bytes) -> None:
        self._good = io.BytesIO(good)

    def read(self, size: int = -1, /) -> bytes:
        chunk = self._good.read(size)
        if not chunk:
            raise OSError("connection reset by peer")
        return chunk


def _read_ahead_threads() -> list[str]:
    import threading

    return [thread.name for thread in threading.enumerate() if thread.name == "read-ahead"]


@pytest.mark.parametrize("size", [1, 1000, 4096, -1])
def test_read_ahead_returns_the_stream_unchanged(size: int) -> None:
    data = os.urandom(50_000)
    with ReadAhead(io.BytesIO(data), chunk_bytes=4096, depth=2) as ahead:
        parts = []
        while chunk := ahead.read(size):
            assert size < 0 or len(chunk) <= size
            parts.append(chunk)
        assert ahead.read(size) == b""
    assert b"".join(parts) == data


def test_read_ahead_hands_a_read_error_to_the_consumer() -> None:
    received = bytearray()

    def drain(ahead: ReadAhead) -> None:
        while True:
            received.extend(ahead.read(4096))

    with (
        ReadAhead(FailingStream(b"abc" * 1000), chunk_bytes=1024) as ahead,
        pytest.raises(OSError, match="connection reset by peer"),
    ):
        drain(ahead)
    # Everything read before the error is delivered first.
    assert bytes(received) == b"abc" * 1000


def test_read_ahead_is_bounded_and_stops_on_close() -> None:
    stream = EndlessStream()
    ahead = ReadAhead(stream, chunk_bytes=1024, depth=3)
    assert ahead.read(1024) == b"z" * 1024
    ahead.close()
    # One chunk consumed, `depth` queued, one held by a blocked put: never more.
    assert stream.reads <= 1 + 3 + 1
    assert _read_ahead_threads() == []


def test_an_archive_read_through_read_ahead_gives_the_same_result() -> None:
    data = job_archive(manifest_last=True)
    with ReadAhead(io.BytesIO(data), chunk_bytes=512) as ahead:
        output = read_job_output(ahead, source=SOURCE)
    assert output.checkpoint_uri == CHECKPOINT
    assert output.metrics == read(data).metrics  # type: ignore[attr-defined]
