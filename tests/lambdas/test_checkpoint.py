"""Reading output.tar.gz (lambdas/checkpoint.py) from local streams. No AWS.

The archive builders here are also used by the registration tests.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import tracemalloc
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest

from lambdas.checkpoint import (
    CHUNK_BYTES,
    MAX_MANIFEST_BYTES,
    MAX_METRICS_BYTES,
    RERUN_HINT,
    GunzipStream,
    LossSummary,
    OutputArchiveError,
    ReadAhead,
    read_job_output,
    summarize_metrics,
)

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


# -- found ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["./", ""])
@pytest.mark.parametrize("manifest_last", [False, True])
def test_reads_the_checkpoint_and_summarizes_the_loss(prefix: str, manifest_last: bool) -> None:
    output = read_job_output(
        io.BytesIO(job_archive(manifest_last=manifest_last, prefix=prefix)), source=SOURCE
    )
    assert output.checkpoint_uri == CHECKPOINT
    assert output.manifest == {"checkpoint_s3_bucket": CHECKPOINT}
    assert output.metrics == LossSummary(steps=4, first_loss=2.4, final_loss=2.0, min_loss=1.95)
    assert output.metrics_problem == ""


def test_stops_reading_once_both_members_are_found() -> None:
    noise = os.urandom(4 * CHUNK_BYTES)  # incompressible: 4 MiB in the archive
    data = tar_gz(
        Member("./manifest.json", manifest()),
        Member("./step_wise_training_metrics.csv", METRICS_CSV),
        Member("./tensorboard/events", noise),
        Member("./training.log", noise),
    )
    stream = CountingStream(data)
    output = read_job_output(stream, source=SOURCE)
    assert output.members_seen == 2
    assert output.checkpoint_uri == CHECKPOINT
    assert stream.read_bytes <= CHUNK_BYTES < len(data)


@pytest.fixture(scope="module")
def manifest_behind_200_mb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("archives") / "output.tar.gz"
    with path.open("wb") as target:
        write_tar_gz(
            target,
            [
                Member("./training.log", size=BIG),
                Member("./step_wise_training_metrics.csv", METRICS_CSV),
                Member("./manifest.json", manifest()),
            ],
        )
    return path


def test_finds_the_manifest_behind_a_200_mb_member_in_bounded_memory(
    manifest_behind_200_mb: Path,
) -> None:
    tracemalloc.start()
    try:
        with manifest_behind_200_mb.open("rb") as stream:
            output = read_job_output(stream, source=SOURCE)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert output.checkpoint_uri == CHECKPOINT
    assert output.members_seen == 3
    # Zeros compress about 1000:1; a reader that inflated whole input chunks would peak near
    # a gigabyte here, and one that kept the member would hold 200 MB.
    assert peak < 8 * CHUNK_BYTES


def test_the_first_manifest_wins() -> None:
    other = "s3://customer-escrow-111122223333-smtj-a1b2c3d4/job-1/step_50"
    data = tar_gz(Member("manifest.json", manifest()), Member("./manifest.json", manifest(other)))
    assert read_job_output(io.BytesIO(data), source=SOURCE).checkpoint_uri == CHECKPOINT


def test_other_manifest_keys_are_kept() -> None:
    data = tar_gz(Member("manifest.json", manifest(step=100)))
    output = read_job_output(io.BytesIO(data), source=SOURCE)
    assert output.manifest == {"checkpoint_s3_bucket": CHECKPOINT, "step": 100}
    assert output.metrics is None
    assert output.metrics_problem == "step_wise_training_metrics.csv not found"


def test_a_manifest_of_exactly_the_limit_is_read() -> None:
    body = manifest()
    body = body[:-1] + b" " * (MAX_MANIFEST_BYTES - len(body)) + b"}"
    assert len(body) == MAX_MANIFEST_BYTES
    data = tar_gz(Member("manifest.json", body))
    assert read_job_output(io.BytesIO(data), source=SOURCE).checkpoint_uri == CHECKPOINT


def test_many_small_members_are_skipped() -> None:
    members = [Member(f"./events/{n}", b"x") for n in range(3000)]
    data = tar_gz(*members, Member("./manifest.json", manifest()))
    output = read_job_output(io.BytesIO(data), source=SOURCE)
    assert output.members_seen == 3001
    assert output.checkpoint_uri == CHECKPOINT


# -- refused -------------------------------------------------------------------------------------


def error_of(data: bytes) -> str:
    with pytest.raises(OutputArchiveError) as caught:
        read_job_output(io.BytesIO(data), source=SOURCE)
    message = str(caught.value)
    assert SOURCE in message
    return message


def test_no_manifest_lists_the_members() -> None:
    message = error_of(
        tar_gz(Member("./training.log", b"x"), Member("./step_wise_training_metrics.csv", b""))
    )
    assert message.startswith(f"manifest.json not found in {SOURCE} (members: './training.log'")
    assert "check that the job completed" in message


def test_the_member_list_in_the_message_is_bounded() -> None:
    message = error_of(tar_gz(*(Member(f"f{n}", b"") for n in range(50))))
    assert "'f19'" in message
    assert "'f20'" not in message
    assert "and 30 more" in message


@pytest.mark.parametrize(
    "name",
    [
        "../manifest.json",
        "/manifest.json",
        "a/../manifest.json",
        "logs/manifest.json",
        ".manifest.json",
    ],
)
def test_path_traversal_and_nested_names_are_not_the_manifest(name: str) -> None:
    elsewhere = "s3://attacker-bucket/elsewhere"
    message = error_of(tar_gz(Member(name, manifest(elsewhere))))
    assert "manifest.json not found" in message
    other = "s3://customer-escrow-111122223333-smtj-a1b2c3d4/job-1/step_7"
    data = tar_gz(Member(name, manifest(elsewhere)), Member("./manifest.json", manifest(other)))
    assert read_job_output(io.BytesIO(data), source=SOURCE).checkpoint_uri == other


@pytest.mark.parametrize(
    ("kind", "linkname", "what"),
    [
        (tarfile.SYMTYPE, "/etc/passwd", "a symbolic link to '/etc/passwd'"),
        (tarfile.LNKTYPE, "training.log", "a hard link to 'training.log'"),
        (tarfile.DIRTYPE, "", "a directory"),
        (tarfile.FIFOTYPE, "", "a special file"),
    ],
)
def test_a_manifest_that_is_not_a_regular_file_is_refused(
    kind: bytes, linkname: str, what: str
) -> None:
    data = tar_gz(
        Member("training.log", manifest()),
        Member("./manifest.json", kind=kind, linkname=linkname),
    )
    message = error_of(data)
    assert f"'./manifest.json' in {SOURCE} is {what}" in message
    assert "links are never followed" in message


def test_an_oversize_manifest_is_refused() -> None:
    message = error_of(tar_gz(Member("manifest.json", size=MAX_MANIFEST_BYTES + 1)))
    assert f"is {MAX_MANIFEST_BYTES + 1} bytes, over the {MAX_MANIFEST_BYTES} byte limit" in message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"checkpoint_s3_bucket": "s3://b/k"', "is not valid JSON"),
        (b"\xff\xfe{}", "is not valid JSON"),
        (b"[1, 2]", "must be a JSON object, got list"),
        (
            b'{"checkpoint": "s3://bucket/k"}',
            "has no 'checkpoint_s3_bucket' key (keys: checkpoint)",
        ),
        (manifest("https://bucket.s3.amazonaws.com/k"), "must be an s3://bucket/key URI"),
        (manifest("s3://bucket-only"), "must be an s3://bucket/key URI"),
        (manifest(42), "got 42"),
        (manifest("s3://b/" + "k" * 300), "at most 256 characters"),
    ],
)
def test_a_bad_manifest_is_refused(body: bytes, expected: str) -> None:
    message = error_of(tar_gz(Member("./manifest.json", body)))
    assert message.startswith(f"manifest.json in {SOURCE}")
    assert expected in message


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


def test_gzip_of_something_that_is_not_tar_is_refused() -> None:
    message = error_of(gzip.compress(b"just some text, not a tar archive\n" * 100))
    assert "is not a readable tar archive after 0 member(s)" in message


def tar_bytes(*members: Member) -> bytes:
    return gzip.decompress(tar_gz(*members))


def test_a_tar_cut_inside_a_member_is_refused() -> None:
    raw = tar_bytes(Member("./training.log", b"x" * 5000), Member("./manifest.json", manifest()))
    message = error_of(gzip.compress(raw[:2048]))
    assert "is not a readable tar archive after 1 member(s) (unexpected end of data)" in message


def test_a_tar_cut_between_members_is_refused() -> None:
    raw = tar_bytes(Member("./training.log", b"x" * 1024), Member("./other.log", b"y"))
    message = error_of(gzip.compress(raw[: 512 + 1024]))
    assert "is truncated: the tar data ends after 1 member(s)" in message


def _damaged_archives() -> list[bytes]:
    whole = job_archive(manifest_last=True)
    corrupt = bytearray(whole)
    corrupt[len(corrupt) // 2 : len(corrupt) // 2 + 64] = bytes(64)
    raw = tar_bytes(Member("./training.log", b"x" * 1024), Member("./other.log", b"y"))
    return [
        b"",
        b"not gzip" * 10,
        bytes(corrupt),
        whole[: len(whole) // 2],
        gzip.compress(b"not a tar archive\n" * 100),
        gzip.compress(raw[: 512 + 1024]),
    ]


@pytest.mark.parametrize("data", _damaged_archives())
def test_every_damaged_archive_message_ends_with_the_fix(data: bytes) -> None:
    message = error_of(data)
    assert message.startswith(SOURCE)
    assert message.endswith("; " + RERUN_HINT)


# -- metrics -------------------------------------------------------------------------------------


def metrics_of(*members: Member) -> tuple[LossSummary | None, str]:
    output = read_job_output(
        io.BytesIO(tar_gz(Member("manifest.json", manifest()), *members)), source=SOURCE
    )
    assert output.checkpoint_uri == CHECKPOINT
    return output.metrics, output.metrics_problem


def test_metrics_with_more_columns_a_bom_and_crlf_are_read() -> None:
    csv_text = (
        "\ufeffstep_number , learning_rate, training_loss\r\n"
        "3,1e-5,1.5\r\n1,1e-5,2.5\r\n\r\n2,1e-5,1.25\r\n"
    )
    summary, problem = metrics_of(
        Member("step_wise_training_metrics.csv", csv_text.encode("utf-8"))
    )
    assert problem == ""
    # first and final follow the step numbers, not the row order
    assert summary == LossSummary(steps=3, first_loss=2.5, final_loss=1.5, min_loss=1.25)


@pytest.mark.parametrize(
    ("csv_bytes", "expected"),
    [
        (b"", "the metrics file is empty"),
        (b"step,loss\n1,2.0\n", "the metrics header lacks step_number or training_loss"),
        (b"step_number,training_loss\n", "the metrics file has a header but no rows"),
        (b"step_number,training_loss\n1,2.0\n2\n", "metrics row 3 has 1 columns"),
        (b"step_number,training_loss\n1,abc\n", "metrics row 2 is not a step number and a"),
        (b"step_number,training_loss\n1.5,2.0\n", "metrics row 2 is not a step number"),
        (b"step_number,training_loss\n1,nan\n", "metrics row 2 is not a step number and a finite"),
        (b"step_number,training_loss\n1,2.0\n\xff\xfe\n", "is not UTF-8 CSV"),
    ],
)
def test_malformed_metrics_are_unavailable_not_fatal(csv_bytes: bytes, expected: str) -> None:
    summary, problem = metrics_of(Member("./step_wise_training_metrics.csv", csv_bytes))
    assert summary is None
    assert expected in problem


def test_linked_metrics_are_not_read() -> None:
    summary, problem = metrics_of(
        Member("./step_wise_training_metrics.csv", kind=tarfile.SYMTYPE, linkname="/etc/passwd")
    )
    assert summary is None
    assert (
        problem
        == "step_wise_training_metrics.csv is a symbolic link to '/etc/passwd'; it was not read"
    )


def test_oversize_metrics_are_not_read() -> None:
    summary, problem = metrics_of(
        Member("step_wise_training_metrics.csv", size=MAX_METRICS_BYTES + 1)
    )
    assert summary is None
    assert f"{MAX_METRICS_BYTES + 1} bytes, over the {MAX_METRICS_BYTES} byte limit" in problem


def test_summarize_metrics_takes_any_lines() -> None:
    summary, problem = summarize_metrics(["step_number,training_loss\n", "7,0.5\n"])
    assert (summary, problem) == (LossSummary(7, 0.5, 0.5, 0.5), "")


# -- the gunzip stream ---------------------------------------------------------------------------


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


# -- read-ahead ----------------------------------------------------------------------------------


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
