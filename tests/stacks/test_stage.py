"""The Stage of each environment: where its stacks go, what they are called, and the nag gate."""

from __future__ import annotations

import json

import pytest

from pipeline.config import read_cdk_json
from tests.cloud_assembly import ENVIRONMENTS, Assembly


def test_one_stage_per_environment_named_after_it(assembly: Assembly) -> None:
    assert sorted(assembly.stages) == sorted(ENVIRONMENTS)
    # The sandbox is deployed by hand at the top of the app; the others by the toolchain.
    assert {env: stage.node.path for env, stage in assembly.stages.items()} == {
        "sandbox": "sandbox",
        "dev": "Toolchain/dev",
        "staging": "Toolchain/staging",
        "prod": "Toolchain/prod",
    }
    assert sorted(p.name for p in assembly.outdir.glob("assembly-*")) == [
        "assembly-Toolchain-dev",
        "assembly-Toolchain-prod",
        "assembly-Toolchain-staging",
        "assembly-sandbox",
    ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_stacks_go_to_the_environments_account_and_region(assembly: Assembly, env: str) -> None:
    config = read_cdk_json().environment(env)
    stacks = assembly.stack_artifacts(env)
    account = config.account or "unknown-account"  # the sandbox follows the credentials
    stage = assembly.stages[env]
    path = stage.node.path
    for name, suffix in ((f"{path}/Data", "data"), (f"{path}/Training", "training")):
        assert stacks[name]["environment"] == f"aws://{account}/{config.region}"
        assert stacks[name]["properties"]["stackName"] == f"nova-sft-{env}-{suffix}"
    # The training stack imports the data stack's exports: it must deploy second.
    assert stage.data.artifact_id in stacks[f"{path}/Training"]["dependencies"]


def test_synth_left_no_unacknowledged_cdk_nag_finding(assembly: Assembly) -> None:
    # The fixture's synth would have raised on a finding; the report says the same in writing.
    report = json.loads((assembly.outdir / "policy-validation-report.json").read_text())
    violations = [v for plugin in report["pluginReports"] for v in plugin.get("violations", [])]
    assert violations == []
