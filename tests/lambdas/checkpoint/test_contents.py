"""The manifest and the metrics (lambdas/checkpoint/contents.py), from local archives. No AWS."""

from __future__ import annotations

import tarfile

import pytest

from lambdas.checkpoint import MAX_METRICS_BYTES, LossSummary, summarize_metrics
from tests.lambdas.checkpoint.archives import SOURCE, Member, error_of, manifest, metrics_of, tar_gz


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
