"""The rehearsal of a stage that tracks experiments: two rounds are two runs of one experiment,
with their loss curves and lineage tags, in a real MLflow server (pipeline/rehearsal/tracking.py).
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
import pytest

from lambdas.recipe.spec import BASE_MODEL
from lambdas.tracking import (
    ENDPOINT_OVERRIDE,
    TAG_CHECKPOINT,
    TAG_MODEL_PACKAGE,
    TAG_PARENT,
    TrackingClient,
    list_runs,
    tracking_address,
)
from pipeline.config import override_tracking, read_cdk_json
from pipeline.rehearsal.mlflow_server import LocalMlflowServer
from pipeline.rehearsal.options import Options
from pipeline.rehearsal.run import rehearse
from stacks.stage import NovaSftStage
from tests.cloud_assembly import CLI_CONTEXT, cdk_json_context


@pytest.fixture(scope="module")
def tracked_cdk_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sandbox stage synthesized as `make demo` does: tracking on (`sandbox=create`)."""
    outdir = tmp_path_factory.mktemp("cdk.out-tracked")
    sandbox = override_tracking(read_cdk_json(), "sandbox=create").environment("sandbox")
    app = cdk.App(context=cdk_json_context(CLI_CONTEXT), outdir=str(outdir))
    NovaSftStage(app, "sandbox", config=sandbox)
    app.synth()
    return outdir


def test_two_tracked_rounds_are_two_runs_with_their_curves_and_lineage(
    tracked_cdk_out: Path, tmp_path: Path, mlflow_server: LocalMlflowServer
) -> None:
    lines: list[str] = []
    options = Options(
        cdk_out=tracked_cdk_out,
        out_dir=tmp_path,
        plot=False,
        other_technique_round=False,
        mlflow_url=mlflow_server.url,
    )
    result = rehearse(options, log=lines.append)
    assert result.succeeded
    first, second = result.executions

    # The rehearsal's stage logs to the tracking server its stack created (in moto's account).
    arn = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/nova-sft-sandbox"
    client = TrackingClient(tracking_address(arn, {ENDPOINT_OVERRIDE: mlflow_server.url}))
    runs = list_runs(client, "nova-sft-sandbox")
    assert [r["info"]["run_name"] for r in runs] == [
        f"nova-sft-sandbox-{e.arn.rsplit('/', 1)[-1]}" for e in (first, second)
    ]
    parents = [BASE_MODEL, first.output("CheckpointS3Uri")]
    for run, execution, parent in zip(runs, (first, second), parents, strict=True):
        assert run["info"]["status"] == "FINISHED"
        tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
        assert tags[TAG_CHECKPOINT] == execution.output("CheckpointS3Uri")
        assert tags[TAG_MODEL_PACKAGE] == execution.output("ModelPackageArn")
        assert tags[TAG_PARENT] == parent
        history = client.get(
            "metrics/get-history",
            {"run_id": run["info"]["run_id"], "metric_key": "training_loss"},
        )["metrics"]
        assert len(history) == 100  # the recipe's max_steps, one point a step
        final = max(history, key=lambda m: m["step"])["value"]
        assert f"{final:.4f}" == f"{float(execution.output('FinalTrainingLoss')):.4f}"
        # The register step logged the evaluation beside the lineage: every metric of the
        # results, and the task, the gate's metric and its verdict as params.
        metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
        params = {p["key"]: p["value"] for p in run["data"]["params"]}
        assert metrics["rougeL"] == float(execution.output("EvaluationScore"))
        assert {"rouge1", "rouge2", "bleu"} <= set(metrics)
        assert params["evaluation_task"] == "gen_qa"
        assert params["gate_metric"] == "rougeL"
        assert params["gate_verdict"].startswith("passed")
    # The experiment was printed side by side; the shared server was left running.
    assert result.experiment[0] == "MLflow experiment nova-sft-sandbox: 2 run(s)"
    assert all(line in lines for line in result.experiment)
    assert not any("local server stopped" in line for line in lines)
