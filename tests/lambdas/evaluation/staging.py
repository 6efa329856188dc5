"""Staging evaluation jobs' outputs in the moto server as the pipeline leaves them."""

from __future__ import annotations

from typing import Any

from tests.lambdas.checkpoint.archives import tar_gz
from tests.lambdas.evaluation.archives import RUN_NAME, eval_archive
from tests.lambdas.test_register_checkpoint import ARTIFACTS, EXECUTION

DATA = "s3://data-bucket/eval/gen_qa.jsonl"
DATA_SHA = "a" * 64
BASELINES = f"s3://{ARTIFACTS}/baselines/"


def stage_evaluation(s3: Any, run: str, *, archive: bytes | None = None) -> dict[str, str]:
    """The evaluation job `<run>-eval`'s outputs; returns its evaluation inputs."""
    job = f"{run}-eval"
    folder = f"runs/{run}/evaluation/{job}/output"
    s3.put_object(Bucket=ARTIFACTS, Key=f"{folder}/model.tar.gz", Body=tar_gz())
    s3.put_object(
        Bucket=ARTIFACTS,
        Key=f"{folder}/output.tar.gz",
        Body=eval_archive() if archive is None else archive,
    )
    return {
        "EvaluationTask": "gen_qa",
        "EvaluationJobName": job,
        "EvaluationModelArtifactsS3Uri": f"s3://{ARTIFACTS}/{folder}/model.tar.gz",
        "EvaluationDataS3Uri": DATA,
        "EvaluationDataSha256": DATA_SHA,
        "EvaluationRunName": RUN_NAME,
        "EvaluationReportS3Uri": f"s3://{ARTIFACTS}/runs/{run}/evaluation/statistics.json",
        "BaselineS3Prefix": BASELINES,
        "PipelineExecutionArn": EXECUTION,
    }


def gate(metric: str = "rougeL", threshold: float = 0.3, improve: bool = False) -> dict[str, Any]:
    return {
        "GateMetric": metric,
        "GateThreshold": threshold,
        "GateRequiresImprovement": improve,
    }


def read_json(s3: Any, uri: str) -> Any:
    import json

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def exists(s3: Any, uri: str) -> bool:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bool(s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount"))
