"""The deployed code run in this process (`pipeline.rehearsal.in_process`): a handler runs with
its function's environment and leaves the process's as it was; a stale asset is refused."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from pipeline.rehearsal.execution_record import DefinitionError
from pipeline.rehearsal.in_process import environment, load_handler, require_current_asset
from pipeline.rehearsal.options import ROOT
from pipeline.rehearsal.resources import DeployedFunction

PROBE = "NOVA_SFT_REHEARSAL_PROBE"


def probe(event: dict[str, Any], _context: Any) -> dict[str, Any]:
    """A handler that reports the environment variable it is asked for."""
    return {"value": os.environ.get(event["name"])}


def test_a_handler_runs_with_its_function_environment_only_while_it_runs(tmp_path: Path) -> None:
    function = DeployedFunction(
        arn="arn:aws:lambda:us-east-1:123456789012:function:probe",
        handler=f"{__name__}.probe",
        asset_dir=tmp_path,
        environment={PROBE: "deployed"},
    )
    assert PROBE not in os.environ

    assert load_handler(function)({"name": PROBE}, None) == {"value": "deployed"}
    assert PROBE not in os.environ


def test_the_environment_is_restored_after_the_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROBE, "before")
    with environment({PROBE: "during", f"{PROBE}_NEW": "added"}):
        assert os.environ[PROBE] == "during"
        assert os.environ[f"{PROBE}_NEW"] == "added"
    assert os.environ[PROBE] == "before"
    assert f"{PROBE}_NEW" not in os.environ


def test_an_asset_that_differs_from_lambdas_is_refused_by_file(tmp_path: Path) -> None:
    asset = tmp_path / "asset.current"
    shutil.copytree(
        ROOT / "lambdas", asset / "lambdas", ignore=shutil.ignore_patterns("__pycache__")
    )
    require_current_asset(asset)  # the same code: accepted

    (asset / "lambdas" / "checkpoint.py").write_text("# changed\n", encoding="utf-8")
    with pytest.raises(DefinitionError, match=r"differs from lambdas/ \(checkpoint\.py\)"):
        require_current_asset(asset)
