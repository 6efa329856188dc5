"""Time of the local rehearsal's two rounds (issue target: under 5 seconds).

Needs a synthesized cdk.out (`make synth`); install and synth are not timed. Each repetition
creates the sandbox stage in a fresh local endpoint, then runs the two executions (run 1 from
the base model, run 2 from run 1's checkpoint). Printed per repetition and as the median:

- deploy: creating the stage's resources from the templates (not part of the target);
- rounds: the two executions, end to end (the target);
- the baseline, measured in the same run: the same number of S3 and SageMaker requests as the
  rounds made, sent as the cheapest calls (HeadBucket, ListModelPackageGroups) to the same
  endpoint. rounds minus baseline is what the interpretation, the handlers and the stand-in
  trainer cost on top of the endpoint's round trips.

Run: .venv/bin/python benchmarks/bench_rehearsal.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.config import read_cdk_json
from pipeline.rehearsal.endpoint import LocalEndpoint
from pipeline.rehearsal.in_process import environment, local_credentials
from pipeline.rehearsal.options import ROOT, Options
from pipeline.rehearsal.run import rehearse

TARGET_SECONDS = 5.0


def baseline(requests: dict[str, int], region: str) -> float:
    """Seconds for the same number of the cheapest S3 and SageMaker calls to a fresh endpoint."""
    with LocalEndpoint() as endpoint, environment(local_credentials(endpoint.url, region)):
        session = boto3.Session(region_name=region)
        s3, sm = session.client("s3"), session.client("sagemaker")
        s3.create_bucket(Bucket="baseline")
        started = time.perf_counter()
        for _ in range(requests["s3"]):
            s3.head_bucket(Bucket="baseline")
        for _ in range(requests["sagemaker"]):
            sm.list_model_package_groups()
        return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cdk-out", type=Path, default=ROOT / "cdk.out")
    args = parser.parse_args()
    region = read_cdk_json().environment("sandbox").region
    rounds, deploys, floors = [], [], []
    for repetition in range(1, args.repeat + 1):
        started = time.perf_counter()
        result = rehearse(
            Options(cdk_out=args.cdk_out, plot=False, other_technique_round=False),
            log=lambda _line: None,
        )
        total = time.perf_counter() - started
        if not result.succeeded or result.faults is None:
            sys.stderr.write("error: the rehearsal did not succeed; run it to see why\n")
            return 1
        floor = baseline(result.faults.seen, region)
        rounds.append(result.seconds)
        deploys.append(total - result.seconds)
        floors.append(floor)
        sys.stdout.write(
            f"repetition {repetition}: deploy {deploys[-1]:.2f} s, two rounds "
            f"{result.seconds:.2f} s ({result.faults.seen['s3']} S3 + "
            f"{result.faults.seen['sagemaker']} SageMaker requests); baseline {floor:.2f} s\n"
        )
    median = statistics.median(rounds)
    floor = statistics.median(floors)
    sys.stdout.write(
        f"median of {args.repeat}: two rounds {median:.2f} s (target < {TARGET_SECONDS:.0f} s: "
        f"{'met' if median < TARGET_SECONDS else 'NOT met'}); baseline of the same requests "
        f"{floor:.2f} s; rounds / baseline = {median / floor:.1f}x; "
        f"deploy {statistics.median(deploys):.2f} s (not in the target)\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
