"""Reading an evaluation job's scores from its output.tar.gz (lambdas/evaluation/results.py)."""

from __future__ import annotations

import gzip
import io

import pytest

from lambdas.evaluation import EvaluationResultsError, read_evaluation_results
from tests.lambdas.checkpoint.archives import Member, tar_gz
from tests.lambdas.evaluation.archives import (
    GEN_QA,
    RUN_NAME,
    eval_archive,
    results_json,
    results_member,
)

SOURCE = "s3://artifacts/runs/exec-1/evaluation/eval-job-1/output/output.tar.gz"


def read(data: bytes, run_name: str = RUN_NAME):  # type: ignore[no-untyped-def]
    return read_evaluation_results(io.BytesIO(data), source=SOURCE, run_name=run_name)


def error_of(data: bytes, run_name: str = RUN_NAME) -> str:
    with pytest.raises(EvaluationResultsError) as caught:
        read(data, run_name)
    return str(caught.value)


def test_reads_every_metric_with_its_stderr() -> None:
    results = read(eval_archive())
    assert results.metrics == {k: v for k, v in GEN_QA.items() if not k.endswith("_stderr")}
    assert len(results.metrics) == 8
    assert results.stderr["rougeL"] == 0.0118
    assert results.stderr["f1_score_quasi"] == 0.0099
    assert results.member == results_member()
    assert results.ignored == ()
    assert results.note() == ""


@pytest.mark.parametrize("prefix", ["./", ""])
def test_member_names_with_or_without_dot_slash(prefix: str) -> None:
    data = tar_gz(Member(results_member(prefix=prefix), results_json()))
    assert read(data).metrics["rougeL"] == 0.4301


def test_a_large_member_before_the_results_is_skipped() -> None:
    data = tar_gz(
        Member("./inference_output.jsonl", size=64 * 1024 * 1024),
        Member(results_member(), results_json()),
    )
    assert read(data).metrics["bleu"] == 21.734


def test_several_results_files_take_the_latest_timestamp_and_say_so() -> None:
    newer = results_member(stamp="2026-12-03T11-00-00.000000")
    older = results_member(stamp="2026-12-03T09-00-00.000000")
    data = tar_gz(
        Member(newer, results_json({"rougeL": 0.5})),
        Member(older, results_json({"rougeL": 0.1})),
    )
    results = read(data)
    assert results.metrics == {"rougeL": 0.5}
    assert results.member == newer
    assert results.ignored == (older,)
    assert "2 results files" in results.note()
    assert older in results.note()


def test_results_of_another_run_name_name_the_fix() -> None:
    message = error_of(eval_archive(), run_name="other-run")
    assert SOURCE in message
    assert results_member() in message
    assert "EvaluationRunName" in message


def test_no_results_file_names_the_members_and_the_fix() -> None:
    message = error_of(tar_gz(Member("./inference_output.jsonl", b"{}\n")))
    assert f"no {RUN_NAME}/eval_results/results_<timestamp>.json in {SOURCE}" in message
    assert "inference_output.jsonl" in message
    assert "evaluation job completed" in message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "is not valid JSON"),
        (b'{"results": {}}', "has no results.all object"),
        (b'{"results": {"all": []}}', "has no results.all object"),
        (b'{"results": {"all": {"rougeL": "high"}}}', "not finite numbers (rougeL='high')"),
        (b'{"results": {"all": {"rougeL": true}}}', "not finite numbers"),
        (b'{"results": {"all": {"rougeL": NaN}}}', "not finite numbers"),
        (b'{"results": {"all": {"rougeL_stderr": 0.1}}}', "holds no metric"),
    ],
)
def test_malformed_results_fail_with_the_object(body: bytes, expected: str) -> None:
    message = error_of(tar_gz(Member(results_member(), body)))
    assert expected in message
    assert SOURCE in message
    assert results_member() in message


def test_a_linked_results_file_is_refused() -> None:
    import tarfile

    data = tar_gz(Member(results_member(), kind=tarfile.SYMTYPE, linkname="/etc/passwd"))
    assert "not a regular file" in error_of(data)


def test_a_truncated_archive_fails() -> None:
    data = eval_archive()
    message = error_of(data[: len(data) // 2])
    assert "truncated" in message
    assert "evaluation job completed" in message
    assert "training job" not in message


def test_not_gzip_fails() -> None:
    assert "not gzip-compressed" in error_of(gzip.decompress(eval_archive()))
