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


def test_serving_that_did_not_take_its_checkpoint_down_fails_with_its_own_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.rehearsal import command_line
    from pipeline.rehearsal.run import Rehearsal
    from pipeline.rehearsal.serving import ServingRehearsal

    # Trained rounds that succeeded, and serving that recorded nothing.
    half_served = Rehearsal(serving=ServingRehearsal(package_arn="arn:p"))
    monkeypatch.setattr(command_line, "rehearse", lambda _options: half_served)
    assert main(["--cdk-out", str(tmp_path), "--no-plot"]) == 1
    err = capsys.readouterr().err
    assert "serving did not deploy, answer and take down round 2's checkpoint" in err
