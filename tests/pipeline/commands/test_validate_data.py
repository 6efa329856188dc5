"""`validate-data` checks a dataset with the pipeline's validator (exit 0 valid, 1 invalid)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from tests.pipeline.commands.helpers import run_cli

SAMPLE = (
    Path(__file__).resolve().parents[3] / "pipeline" / "rehearsal" / "sample_data" / "train.jsonl"
)


def sample(text: str = "Hello", answer: str = "Hi there") -> str:
    return json.dumps(
        {
            "schemaVersion": "bedrock-conversation-2024",
            "messages": [
                {"role": "user", "content": [{"text": text}]},
                {"role": "assistant", "content": [{"text": answer}]},
            ],
        }
    )


def dataset(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_sample_dataset_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run_cli(capsys, "validate-data", str(SAMPLE))
    assert (status, out, err) == (0, "valid: 64 samples, no findings\n", "")


def test_an_invalid_file_exits_1_with_findings_by_line_rule_and_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [sample()] * 40
    lines[4] = sample(answer="Bot: hi")
    lines[9] = "{not json"
    status, out, _ = run_cli(capsys, "validate-data", str(dataset(tmp_path, lines)))
    assert status == 1
    assert out.startswith("invalid: 2 error(s), 0 warning(s) in 40 samples\nerrors by rule:\n")
    assert "  text.reserved: 1" in out
    assert "  json.invalid: 1" in out
    assert "line 5 $.messages[1].content[0].text [text.reserved]:" in out
    assert "line 10 $ [json.invalid]:" in out


def test_json_output_is_the_full_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = dataset(tmp_path, [sample()] * 20)
    status, out, _ = run_cli(
        capsys, "validate-data", str(path), "--global-batch-size", "64", "--json"
    )
    report = json.loads(out)
    assert status == 1
    assert report["data"] == str(path)
    assert report["counts_by_rule"] == {"samples.batch_size": 1}
    assert report["settings"]["global_batch_size"] == 64
    assert report["findings"][0]["rule"] == "samples.batch_size"


def test_reasoning_true_requires_reasoning_in_every_sample(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run_cli(capsys, "validate-data", str(SAMPLE), "--reasoning", "true")
    assert status == 1
    assert "reasoning.enabled: 64" in out


def test_show_limits_the_findings_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [sample(answer="User: again")] * 10
    status, out, _ = run_cli(
        capsys,
        "validate-data",
        str(dataset(tmp_path, lines)),
        "--show",
        "3",
        "--global-batch-size",
        "8",
    )
    assert status == 1
    assert out.count("[text.reserved]") == 3
    assert "... and 7 more" in out


def test_warnings_are_printed_and_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [sample()] * 10
    lines[3] = ""  # a blank line inside the file
    lines[6] = json.dumps({**json.loads(sample()), "metadata": {"id": 6}})
    status, out, err = run_cli(
        capsys, "validate-data", str(dataset(tmp_path, lines)), "--global-batch-size", "8"
    )
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        "valid: 0 error(s), 2 warning(s) in 9 samples",
        "warnings by rule:",
        "  field.unknown: 1",
        "  line.blank: 1",
        "warnings:",
        "  line 4 $ [warning line.blank]: the line is empty: remove blank lines; every line must "
        "hold one sample",
        "  line 7 $ [warning field.unknown]: field 'metadata' is not part of the format here "
        "(expected only messages, schemaVersion, system, toolConfig): remove or rename it",
    ]


def test_strict_turns_warnings_into_errors_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = dataset(tmp_path, [sample()] * 4 + [""] + [sample()] * 4)
    size = ("--global-batch-size", "8")
    status, out, _ = run_cli(capsys, "validate-data", str(path), *size, "--strict", "--json")
    report = json.loads(out)
    assert status == 1
    assert (report["ok"], report["errors_total"], report["settings"]["strict"]) == (False, 1, True)
    assert [(f["rule"], f["severity"]) for f in report["findings"]] == [("line.blank", "error")]
    status, out, _ = run_cli(capsys, "validate-data", str(path), *size)
    assert status == 0


def test_errors_and_warnings_are_listed_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [sample()] * 9
    lines[1] = sample(answer="[EOS]")
    lines[2] = ""
    status, out, _ = run_cli(capsys, "validate-data", str(dataset(tmp_path, lines)))
    assert status == 1
    errors_at, warnings_at = out.index("\nerrors:\n"), out.index("\nwarnings:\n")
    assert (
        errors_at < out.index("[text.reserved]") < warnings_at < out.index("[warning line.blank]")
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("missing.jsonl",), "missing.jsonl not found: give a .jsonl file or an s3:// URI"),
        ((str(SAMPLE), "--global-batch-size", "0"), "'0' is not a positive integer"),
        ((str(SAMPLE), "--reasoning", "maybe"), "invalid choice: 'maybe'"),
        (("s3://bucket-only",), "TrainDataS3Uri must be an s3://bucket/key URI"),
        ((), "the following arguments are required: FILE_OR_S3_URI"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    status, out, err = run_cli(capsys, "validate-data", *argv)
    assert (status, out) == (2, "")
    assert message in err


def test_an_s3_dataset_is_streamed_from_the_endpoint(
    aws: boto3.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="data-dev")
    s3.upload_file(str(SAMPLE), "data-dev", "datasets/train.jsonl")
    status, out, _ = run_cli(capsys, "validate-data", "s3://data-dev/datasets/train.jsonl")
    assert (status, out) == (0, "valid: 64 samples, no findings\n")

    status, _, err = run_cli(capsys, "validate-data", "s3://data-dev/datasets/other.jsonl")
    assert status == 1
    assert "s3://data-dev/datasets/other.jsonl: the object does not exist" in err


def test_gen_qa_checks_evaluation_data_with_the_evaluation_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    questions = SAMPLE.parent / "gen_qa.jsonl"
    status, out, _ = run_cli(capsys, "validate-data", str(questions), "--format", "gen_qa")
    assert (status, out) == (0, "valid: 20 samples, no findings\n")
    # The training format refuses the same file: the rules differ.
    status, _, _ = run_cli(capsys, "validate-data", str(questions))
    assert status == 1
    broken = dataset(tmp_path, ['{"query": "q"}'])
    status, out, _ = run_cli(capsys, "validate-data", str(broken), "--format", "gen_qa")
    assert status == 1
    assert "line 1 $.response [field.missing]" in out


def test_gen_qa_data_in_s3_is_streamed_too(
    aws: boto3.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="data-dev")
    s3.upload_file(str(SAMPLE.parent / "gen_qa.jsonl"), "data-dev", "eval/gen_qa.jsonl")
    status, out, _ = run_cli(
        capsys, "validate-data", "s3://data-dev/eval/gen_qa.jsonl", "--format", "gen_qa"
    )
    assert (status, out) == (0, "valid: 20 samples, no findings\n")
