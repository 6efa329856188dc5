"""Experiment tracking in the rehearsal: a real local MLflow server stands in for SageMaker's.

When the synthesized stage tracks experiments (its TrainingStack has the output
`MlflowTrackingServerArn`; `make demo` synthesizes the sandbox with
`-c nova-sft:tracking=sandbox=create`), `local_tracking` starts `mlflow server` on 127.0.0.1
(`pipeline.rehearsal.mlflow_server`) and maps the tracking ARN to it for everything the rehearsal
runs in this process: the stand-in trainer logs its loss curve, the register step its lineage,
through the same client (`lambdas.tracking`) and the same ARN as in AWS. The server is stopped
when the block ends, whatever happened. `experiment_lines` prints the experiment's runs side by
side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lambdas.tracking import (
    ENDPOINT_OVERRIDE,
    TAG_CHECKPOINT,
    TAG_MODEL_PACKAGE,
    TAG_PARENT,
    TrackingClient,
    list_runs,
    tracking_address,
)
from pipeline.rehearsal.in_process import environment
from pipeline.rehearsal.mlflow_server import LocalMlflowServer
from pipeline.rehearsal.resources import LocalStage

TRACKING_OUTPUT = "MlflowTrackingServerArn"


def stage_tracking_arn(stage: LocalStage) -> str | None:
    """The tracking server ARN the stage's pipeline logs to, or None when tracking is off."""
    try:
        return stage.output(TRACKING_OUTPUT)
    except KeyError:
        return None


@contextmanager
def local_tracking(
    stage: LocalStage, python: Path, log: Callable[[str], None], url: str | None = None
) -> Iterator[TrackingClient | None]:
    """A client of the local server that the stage's tracking ARN is mapped to while the block
    runs (None, and no server, when the stage does not track). With `url`, that running server
    is used (and left running); otherwise one is started here and stopped at the end."""
    arn = stage_tracking_arn(stage)
    if arn is None:
        yield None
        return
    server = LocalMlflowServer(python) if url is None else None
    try:
        if server is not None:
            url = server.start().wait_ready().url
            log(f"MLflow: {arn} -> mlflow server at {url} (pid {server.pid})")
        mapping = {ENDPOINT_OVERRIDE: str(url)}
        with environment(mapping):
            yield TrackingClient(tracking_address(arn, mapping))
    finally:
        if server is not None:
            server.stop()
            log("MLflow: local server stopped")


def _cell(run: dict[str, Any], kind: str, key: str) -> str:
    for item in run.get("data", {}).get(kind, []) or []:
        if item.get("key") == key:
            return str(item.get("value", ""))
    return ""


def experiment_lines(client: TrackingClient, experiment_name: str) -> list[str]:
    """The experiment's runs, oldest first, one line each: name, status, last training loss
    and its step, the evaluation's score on the gate's metric (logged by the register step),
    the registered package version, and where the run continued from."""
    runs = list_runs(client, experiment_name)
    lines = [f"MLflow experiment {experiment_name}: {len(runs)} run(s)"]
    lines.append(
        f"  {'run':<48} {'status':<9} {'loss':>7} {'steps':>5} {'score':>7}  {'package':<8} parent"
    )
    for run in runs:
        info = run.get("info", {})
        metrics = {m["key"]: m for m in run.get("data", {}).get("metrics", []) or []}
        loss = metrics.get("training_loss")
        package = _cell(run, "tags", TAG_MODEL_PACKAGE)
        parent = _cell(run, "tags", TAG_PARENT)
        checkpoint = _cell(run, "tags", TAG_CHECKPOINT)
        score = metrics.get(_cell(run, "params", "gate_metric"))
        lines.append(
            f"  {info.get('run_name', ''):<48} {info.get('status', ''):<9} "
            f"{(format(float(loss['value']), '.4f') if loss else 'n/a'):>7} "
            f"{(str(loss.get('step', '')) if loss else ''):>5} "
            f"{(format(float(score['value']), '.4f') if score else 'n/a'):>7}  "
            f"{('v' + package.rsplit('/', 1)[-1]) if package else 'n/a':<8} "
            f"{'/'.join(parent.split('/')[-2:]) if parent.startswith('s3://') else parent or 'n/a'}"
        )
        if checkpoint:
            lines.append(f"  {'':<48} checkpoint {checkpoint}")
    return lines
