"""The command line of the rehearsal (`pipeline.rehearsal.command_line`): one line and a non-zero
exit when it cannot run, a clear refusal of a bad option."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.rehearsal.command_line import main


def test_the_command_exits_non_zero_with_one_line_when_cdk_out_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--cdk-out", str(tmp_path / "nothing"), "--no-plot"])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ")
    assert "run `make synth` first" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("share", ["1", "1.5", "-0.1", "most"])
def test_a_fault_rate_outside_zero_to_below_one_is_refused_by_name(
    share: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--s3-error-rate", share])

    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"{share!r} is not a share of calls from 0 to below 1" in err
    assert "Traceback" not in err
