"""`python -m pipeline metrics`: the training loss of one or more runs, optionally plotted.

A run's loss curve is `step_wise_training_metrics.csv` in the job's output.tar.gz, beside its
model artifacts; the archive is streamed and only that member is read. The local rehearsal
reads its stand-in runs' curves with the same functions. A run named by its model package also
shows the evaluation score the package records (lambdas.evaluation.scorecard_of) next to its
loss, and the plot gains a panel of those scores.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from lambdas.aws_errors import error_code
from lambdas.checkpoint import (
    LOSS_COLUMN,
    MAX_METRICS_BYTES,
    METRICS,
    STEP_COLUMN,
    GunzipStream,
    LossSummary,
    OutputArchiveError,
    summarize_metrics,
)
from lambdas.evaluation import ScoreCard, scorecard_of
from lambdas.recipe import SAGEMAKER_NAME
from pipeline.commands import common, mlflow_runs
from pipeline.commands.aws import PackageRef, Sessions, describe_package, resolve_package

_HELP = "training loss of one or more runs, optionally plotted"
_DESCRIPTION = (
    "Read step_wise_training_metrics.csv from each run's output.tar.gz, print a summary "
    "(steps, first, final and lowest training loss, and the evaluation score a package "
    "records) and, with --plot, draw training loss against step with the runs overlaid, "
    "beside the runs' scores. A run is named by its model package (ARN, or version number "
    "with --env) or by its training job name."
)


def add_parser(subparsers: common.Subparsers) -> None:
    parser = common.add_command(subparsers, "metrics", _HELP, _DESCRIPTION)
    parser.add_argument("runs", nargs="+", metavar="PACKAGE|JOB", help="one or more runs")
    common.add_env_arguments(parser, env_help="environment of version numbers and job names")
    common.add_aws_arguments(parser)
    parser.add_argument("--plot", metavar="FILE.png", type=Path, help="write a PNG here")
    mlflow_runs.add_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise common.UsageError(f"--plot {args.plot}: the file name must end in .png")
    project, default_env = common.environment(args)
    sessions = Sessions()
    account = functools.partial(sessions.account, args.profile, default_env.region)
    # Every run is checked before the first AWS call (an ARN resolves without one).
    refs: dict[str, PackageRef] = {}
    for given in args.runs:
        if given.startswith("arn:"):
            refs[given] = resolve_package(project, given, default_env, account)
        elif not (given.isdigit() or is_job_name(given)):
            raise common.UsageError(
                f"{given!r} is neither a model package ARN, a version nor a job name"
            )
    curves = []
    # The MLflow run of each curve, where its environment tracks experiments.
    finder = mlflow_runs.RunFinder(links=args.mlflow_links)
    beside: list[tuple[mlflow_runs.MlflowRuns | None, dict[str, Any] | None]] = []
    for given in args.runs:
        if given.startswith("arn:") or given.isdigit():
            ref = refs.get(given) or resolve_package(project, given, default_env, account)
            session = sessions.connect(args.profile, ref.env)
            record = describe_package(session.client("sagemaker"), ref)
            job, label = record.training_job_name, f"v{record.version} {record.technique}"
            if not job:
                raise common.UsageError(f"{ref.arn} records no training job: name the job instead")
            beside.append(finder.find(ref.env, session, account, record=record))
            score = scorecard_of(record.metadata)
        else:
            session, job, label = sessions.connect(args.profile, default_env), given, given
            beside.append(finder.find(default_env, session, account, job=job))
            score = None
        curve = read_loss_curve(session.client("sagemaker"), session.client("s3"), job, label)
        curves.append(dataclasses.replace(curve, score=score))
    plot = plot_curves(curves, args.plot) if args.plot is not None else None
    if args.json:
        runs = [
            {**c.to_dict(), **({"mlflow": view.to_dict(run)} if view is not None else {})}
            for c, (view, run) in zip(curves, beside, strict=True)
        ]
        common.emit_json({"runs": runs, "plot": str(plot) if plot else None})
        return common.EXIT_OK
    for curve, (view, run) in zip(curves, beside, strict=True):
        s = curve.summary
        scored = f"; score {curve.score.describe()}" if curve.score is not None else ""
        note = view.note(run) if view is not None else ""
        common.print_text(
            f"{curve.label} ({curve.training_job}): {s.steps} steps, training loss "
            f"{s.first_loss:.4f} -> {s.final_loss:.4f} (lowest {s.min_loss:.4f}){scored}"
            + (f"  {note}" if note else "")
        )
    for line in finder.headers():
        common.print_text(line)
    if plot is not None:
        common.print_text(f"Plot: {plot}")
    return common.EXIT_OK


@dataclass(frozen=True)
class LossCurve:
    """A run's training loss by step, read from its step_wise_training_metrics.csv."""

    label: str
    training_job: str
    source: str
    points: tuple[tuple[int, float], ...]
    summary: LossSummary
    score: ScoreCard | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "training_job": self.training_job,
            "source": self.source,
            "steps": self.summary.steps,
            "first_loss": self.summary.first_loss,
            "final_loss": self.summary.final_loss,
            "min_loss": self.summary.min_loss,
            "points": [list(point) for point in self.points],
            "evaluation": None
            if self.score is None
            else {
                "task": self.score.task,
                "metric": self.score.metric,
                "score": self.score.score,
                "change": self.score.change,
                "gate_verdict": self.score.verdict or None,
            },
        }


def output_archive_uri(sm: Any, job: str) -> str:
    """s3://.../<job>/output/output.tar.gz, beside the job's model artifacts."""
    try:
        described = sm.describe_training_job(TrainingJobName=job)
    except ClientError as error:
        raise common.OperationError(f"cannot describe training job {job}: {error}") from error
    artifacts = str(described.get("ModelArtifacts", {}).get("S3ModelArtifacts", ""))
    if not artifacts.startswith("s3://"):
        status = described.get("TrainingJobStatus", "unknown")
        raise common.OperationError(
            f"training job {job} ({status}) has no output to read metrics from"
        )
    return artifacts.rsplit("/", 1)[0] + "/output.tar.gz"


def _metrics_bytes(stream: Any, uri: str) -> bytes:
    gunzip = GunzipStream(stream, source=uri)
    try:
        with tarfile.open(fileobj=gunzip, mode="r|") as archive:  # type: ignore[call-overload]
            for member in archive:
                archive.members.clear()
                if member.name.removeprefix("./") != METRICS:
                    continue
                if not member.isfile() or member.size > MAX_METRICS_BYTES:
                    raise common.OperationError(
                        f"{METRICS} in {uri} is not a regular file of at most "
                        f"{MAX_METRICS_BYTES} bytes"
                    )
                handle = archive.extractfile(member)
                return b"" if handle is None else bytes(handle.read())
    except tarfile.TarError as error:
        raise common.OperationError(f"{uri} is not a readable tar archive ({error})") from None
    except OutputArchiveError as error:
        raise common.OperationError(str(error)) from None
    raise common.OperationError(f"no {METRICS} in {uri}: the job wrote no training metrics")


def parse_curve(text: str, source: str) -> tuple[tuple[tuple[int, float], ...], LossSummary]:
    """The (step, loss) points, ordered by step, and their summary; OperationError if unusable."""
    lines = text.removeprefix("\ufeff").splitlines()
    summary, problem = summarize_metrics(lines)
    if summary is None:
        raise common.OperationError(f"{METRICS} in {source}: {problem}")
    rows = csv.reader(lines)
    header = [name.strip() for name in next(rows)]
    step_at, loss_at = header.index(STEP_COLUMN), header.index(LOSS_COLUMN)
    points = sorted(
        (int(float(row[step_at])), float(row[loss_at]))
        for row in rows
        if any(cell.strip() for cell in row)
    )
    return tuple(points), summary


def read_loss_curve(sm: Any, s3: Any, job: str, label: str) -> LossCurve:
    """Stream the job's output.tar.gz and read its loss curve (only that member is read)."""
    uri = output_archive_uri(sm, job)
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as error:
        raise common.OperationError(f"cannot read {uri}: {error_code(error) or error}") from error
    try:
        data = _metrics_bytes(body, uri)
    finally:
        body.close()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise common.OperationError(f"{METRICS} in {uri} is not UTF-8 ({error})") from None
    points, summary = parse_curve(text, uri)
    return LossCurve(label, job, uri, points, summary)


def is_job_name(text: str) -> bool:
    return bool(SAGEMAKER_NAME.fullmatch(text)) and not text.isdigit()


def plot_curves(curves: Iterable[LossCurve], path: Path) -> Path:
    """Training loss against step, one line per run, overlaid, as a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = list(curves)
    scored = [c for c in curves if c.score is not None and c.score.score is not None]
    if scored:
        figure, (axes, bars) = plt.subplots(
            1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [2, 1]}
        )
    else:
        figure, axes = plt.subplots(figsize=(8, 4.5))
    try:
        if scored:
            plot_scores(bars, scored)
        for curve in curves:
            axes.plot([s for s, _ in curve.points], [v for _, v in curve.points], label=curve.label)
        axes.set_xlabel("training step")
        axes.set_ylabel("training loss")
        axes.set_title("Nova 2 Lite SFT training loss")
        axes.grid(alpha=0.3)
        axes.legend()
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100)
    finally:
        plt.close(figure)
    return path


def plot_scores(axes: Any, curves: list[LossCurve]) -> None:
    """One bar per scored run: its recorded score, labelled with the metric and the change."""
    labels: list[str] = []
    values: list[float] = []
    notes: list[str] = []
    for curve in curves:
        card = curve.score
        if card is None or card.score is None:
            continue
        labels.append(f"{curve.label}\n{card.task} {card.metric}")
        values.append(card.score)
        notes.append("" if card.change is None else f"{card.change:+.3g}")
    bars = axes.bar(range(len(values)), values, color="tab:green")
    for bar, note, value in zip(bars, notes, values, strict=True):
        axes.annotate(
            f"{value:.3g} {note}".strip(),
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
        )
    axes.set_xticks(range(len(values)), labels, fontsize=8)
    axes.set_ylabel("evaluation score")
    axes.set_title("Evaluation score (change vs parent)")
    axes.grid(alpha=0.3, axis="y")
