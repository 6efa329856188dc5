"""Reading output.tar.gz in one pass (lambdas/checkpoint/archive.py) from local streams. No AWS."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from lambdas.checkpoint import (
    CHUNK_BYTES,
    MAX_MANIFEST_BYTES,
    RERUN_HINT,
    LossSummary,
    read_job_output,
)
from tests.lambdas.checkpoint.archives import (
    BIG,
    CHECKPOINT,
    METRICS_CSV,
    SOURCE,
    CountingStream,
    Member,
    error_of,
    job_archive,
    manifest,
    tar_bytes,
    tar_gz,
    write_tar_gz,
)

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


def test_gzip_of_something_that_is_not_tar_is_refused() -> None:
    message = error_of(gzip.compress(b"just some text, not a tar archive\n" * 100))
    assert "is not a readable tar archive after 0 member(s)" in message


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
        # mtime=0: the same bytes on every collection (pytest-xdist workers compare test ids).
        gzip.compress(b"not a tar archive\n" * 100, mtime=0),
        gzip.compress(raw[: 512 + 1024], mtime=0),
    ]


@pytest.mark.parametrize(
    "data",
    _damaged_archives(),
    ids=["empty", "not-gzip", "corrupt", "truncated", "gzip-not-tar", "gzip-truncated-tar"],
)
def test_every_damaged_archive_message_ends_with_the_fix(data: bytes) -> None:
    message = error_of(data)
    assert message.startswith(SOURCE)
    assert message.endswith("; " + RERUN_HINT)
