"""The entry point: every command in the help, exit statuses and one-line errors, usage errors
found before any AWS call, and `python -m pipeline` as a module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.commands.cli import build_parser, main
from tests.pipeline.commands.helpers import run_cli

ROOT = Path(__file__).resolve().parents[3]
COMMANDS = (
    "definition",
    "start",
    "watch",
    "lineage",
    "metrics",
    "approve",
    "reject",
    "evaluate",
    "validate-data",
    "promote",
)


def test_a_broken_cdk_json_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "cdk.json"
    broken.write_text("{", encoding="utf-8")
    status, _, err = run_cli(capsys, "lineage", "--cdk-json", str(broken))
    assert status == 1
    assert f"{broken} is not valid JSON" in err


def test_no_command_and_an_unknown_command_are_usage_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_cli(capsys)[0] == 2
    status, _, err = run_cli(capsys, "destroy")
    assert status == 2
    assert "invalid choice: 'destroy'" in err


def test_every_command_is_listed_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    for command in COMMANDS:
        assert f"    {command}" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_a_description_and_documents_its_options(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    subparsers = next(action for action in build_parser()._actions if action.dest == "command")
    parser = subparsers.choices[command]  # type: ignore[index]
    assert len(parser.description or "") > 60
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"{command} {action.option_strings} has no help text"
            assert action.option_strings[-1] in out


def test_python_m_pipeline_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "validate-data", "missing.jsonl"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "python -m pipeline: usage error: missing.jsonl not found: give a .jsonl file or an "
        "s3:// URI\n"
    )


DEV_PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/nova-sft-dev-checkpoints/1"
USAGE_ERRORS = (
    (("start", "--env", "dev", "--from", "yesterday"), "--from 'yesterday': use one of base"),
    (("start", "--env", "dev", "--from", "s3://bucket"), "is not an s3://bucket/key checkpoint"),
    (
        ("start", "--env", "dev", "--from", "latest", "--set", "ModelNameOrPath=s3://b/k"),
        "--from and --set ModelNameOrPath=... both given",
    ),
    (("promote", DEV_PACKAGE, "--to", "dev"), "--to dev is the package's own environment"),
    (("promote", "1", "--env", "sandbox", "--to", "sandbox"), "--to sandbox is the package's own"),
    (("promote", DEV_PACKAGE, "--to", "staging", "--from", "yesterday"), "--from 'yesterday'"),
    (
        ("promote", DEV_PACKAGE, "--to", "staging", "--set", "ModelNameOrPath=s3://b/k"),
        "use --from instead",
    ),
    (("lineage", "latest", "--env", "dev"), "'latest' is not a model package"),
    (("lineage", "4", "--env", "sandbox", "--profile", "nobody"), "could not be found"),
    (("metrics", "job-one", "bad name!", "--env", "dev"), "'bad name!' is neither a model"),
    (("approve", "latest", "--env", "dev"), "'latest' is not a model package"),
    (("watch", "not-an-arn"), "'not-an-arn' is not a pipeline execution ARN"),
)


@pytest.mark.usefixtures("aws")  # up, so that a call made before the check would be recorded
@pytest.mark.parametrize(("argv", "message"), USAGE_ERRORS)
def test_a_usage_error_is_found_before_any_aws_call(
    aws_calls: list[str],
    cdk_json: Path,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    message: str,
) -> None:
    status, out, err = run_cli(capsys, *argv, "--cdk-json", str(cdk_json))
    assert (status, out) == (2, "")
    assert message in err, err
    assert err.startswith("python -m pipeline: usage error: ")
    assert aws_calls == []
