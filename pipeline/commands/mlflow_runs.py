"""The MLflow run beside each checkpoint, for `lineage` and `metrics`.

Where the environment tracks experiments (cdk.json `tracking`), every training run is an MLflow
run of the experiment named after the pipeline, with the execution's run name (which the
registry records, `KEY_RUN_NAME`) and the training job and lineage as tags (lambdas.tracking).
`load` reads that experiment's runs once (SigV4-signed with the command's credentials; the
endpoint follows `SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT` when set, as for the rehearsal), and the
commands print the run found for each version. A tracker that cannot be read is one line of
output, never a failed command: the registry is the record.

`--mlflow-links` adds a presigned URL of the tracking server's UI
(`CreatePresignedMlflowTrackingServerUrl`; single use, valid five minutes). moto has no MLflow
API, so that call is only checked against botocore's model here, never made locally.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.registry import KEY_RUN_NAME, CheckpointRecord
from lambdas.tracking import (
    TAG_TRAINING_JOB,
    TrackingAddressError,
    TrackingClient,
    TrackingError,
    list_runs,
    sigv4_signer,
    tracking_address,
)
from pipeline.commands import common
from pipeline.config import EnvironmentConfig

# A presigned UI URL is usable once; five minutes is enough to open it.
LINK_SECONDS = 300


def add_arguments(parser: Any) -> None:
    """The MLflow option of a command that prints runs."""
    parser.add_argument(
        "--mlflow-links",
        action="store_true",
        help="also print a presigned URL of the MLflow tracking server's UI (single use, "
        f"{LINK_SECONDS // 60} minutes; needs sagemaker:CreatePresignedMlflowTrackingServerUrl)",
    )


def tracking_server_arn(env: EnvironmentConfig, account: Callable[[], str]) -> str | None:
    """The environment's tracking server ARN (None when tracking is off). For a server the
    stack creates, the account is the environment's, or the credentials' for the sandbox."""
    if not env.tracking_enabled:
        return None
    if not env.creates_tracking_server:
        return env.tracking
    owner = env.account or account()
    return (
        f"arn:aws:sagemaker:{env.region}:{owner}:mlflow-tracking-server/{env.tracking_server_name}"
    )


@dataclass
class MlflowRuns:
    """An environment's experiment as read once: its runs, or why they could not be read."""

    arn: str
    experiment: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    link: str = ""
    link_error: str = ""

    def for_record(self, record: CheckpointRecord) -> dict[str, Any] | None:
        """The run of a registered checkpoint: by its recorded run name, else by its job."""
        name = record.metadata.get(KEY_RUN_NAME, "")
        for run in reversed(self.runs):  # the newest run of a name wins
            if name and run.get("info", {}).get("run_name") == name:
                return dict(run)
        return self.for_job(record.training_job_name)

    def for_job(self, job: str) -> dict[str, Any] | None:
        """The run whose training job tag is `job`."""
        for run in reversed(self.runs):
            tags = {t["key"]: t["value"] for t in run.get("data", {}).get("tags", []) or []}
            if job and tags.get(TAG_TRAINING_JOB) == job:
                return dict(run)
        return None

    def note(self, run: dict[str, Any] | None) -> str:
        """What to print beside a version: its MLflow run, or that there is none."""
        if self.error:
            return ""
        if run is None:
            return "mlflow: no run"
        info = run.get("info", {})
        return f"mlflow: {info.get('run_name', '?')} ({info.get('run_id', '?')})"

    def header(self) -> list[str]:
        """The lines that say where the runs are (and the UI link, when asked)."""
        lines = [f"MLflow: experiment {self.experiment} on {self.arn}"]
        if self.error:
            lines.append(f"  runs not read: {self.error}")
        if self.link:
            lines.append(f"  UI (single use, {LINK_SECONDS // 60} minutes): {self.link}")
        if self.link_error:
            lines.append(f"  no UI link: {self.link_error}")
        return lines

    def to_dict(self, run: dict[str, Any] | None) -> dict[str, Any] | None:
        """A run for `--json`: its id, name and status (None when there is none)."""
        if run is None:
            return None
        info = run.get("info", {})
        return {k: info.get(k) for k in ("run_id", "run_name", "status", "experiment_id")}

    def summary(self) -> dict[str, Any]:
        return {
            "tracking_server": self.arn,
            "experiment": self.experiment,
            "error": self.error or None,
            "ui_link": self.link or None,
            "ui_link_error": self.link_error or None,
        }


def load(
    env: EnvironmentConfig, session: Any, account: Callable[[], str], *, links: bool = False
) -> MlflowRuns | None:
    """The environment's experiment through `session`'s credentials; None when it does not
    track. `links` asks SageMaker for a presigned UI URL."""
    arn = tracking_server_arn(env, account)
    if arn is None:
        if links:
            raise common.UsageError(
                f"--mlflow-links: environment {env.name} does not track experiments "
                "(cdk.json tracking is off)"
            )
        return None
    view = MlflowRuns(arn=arn, experiment=env.pipeline_name)
    try:
        address = tracking_address(arn, os.environ)
        signer = sigv4_signer(address, session.get_credentials())
        view.runs = list_runs(TrackingClient(address, signer=signer), env.pipeline_name)
    except (TrackingError, TrackingAddressError) as error:
        view.error = " ".join(str(error).split())
    if links:
        try:
            answer = session.client("sagemaker").create_presigned_mlflow_tracking_server_url(
                TrackingServerName=arn.rsplit("/", 1)[-1],
                ExpiresInSeconds=LINK_SECONDS,
            )
            view.link = str(answer["AuthorizedUrl"])
        except (ClientError, BotoCoreError) as error:
            view.link_error = " ".join(str(error).split())
    return view


@dataclass
class RunFinder:
    """Reads each environment's experiment once, for commands that name runs of several."""

    links: bool = False
    views: dict[str, MlflowRuns | None] = field(default_factory=dict)

    def find(
        self,
        env: EnvironmentConfig,
        session: Any,
        account: Callable[[], str],
        *,
        record: CheckpointRecord | None = None,
        job: str = "",
    ) -> tuple[MlflowRuns | None, dict[str, Any] | None]:
        """The environment's experiment (None when it does not track) and the run of `record`
        (or of the training job `job`), None when there is none."""
        if env.name not in self.views:
            self.views[env.name] = load(env, session, account, links=self.links)
        view = self.views[env.name]
        if view is None:
            return None, None
        return view, view.for_record(record) if record is not None else view.for_job(job)

    def headers(self) -> list[str]:
        return [line for view in self.views.values() if view is not None for line in view.header()]
