"""How long `cdk synth` of the whole app takes, against a one-bucket app synthesized the same way.

Both are synthesized by the project's pinned CDK CLI (`node_modules/.bin/cdk synth --quiet`),
with the project's Python, offline, into temporary folders, alternating so that machine load
hits both alike. The baseline is a throwaway app with one S3 bucket in one stack, written to a
temporary folder in the same run: it measures the fixed cost of any CDK Python app (Python,
jsii and Node start-up, writing the cloud assembly). The whole app adds four environments of two
stacks each, cdk-nag, and the SageMaker SDK that builds the pipeline definition.

Run: .venv/bin/python benchmarks/bench_synth.py [--repeat 3]
Target: whole app / baseline <= 1.5 (medians). Figures vary with machine load; the ratio, measured
in the same run, is the stable figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CDK = ROOT / "node_modules" / ".bin" / "cdk"
PYTHON = ROOT / ".venv" / "bin" / "python"
TARGET_RATIO = 1.5

BASELINE_APP = """\
import aws_cdk as cdk
from aws_cdk import aws_s3 as s3

app = cdk.App()
stack = cdk.Stack(app, "Baseline")
s3.Bucket(stack, "Bucket")
app.synth()
"""


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AWS_EC2_METADATA_DISABLED": "true",
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "CDK_DISABLE_VERSION_CHECK": "true",
        }
    )
    return env


def _synth(workdir: Path, outdir: Path) -> float:
    """Seconds for one `cdk synth --quiet` in `workdir`, into a fresh `outdir`."""
    started = time.perf_counter()
    result = subprocess.run(
        [str(CDK), "synth", "--quiet", "--output", str(outdir)],
        cwd=workdir,
        env=_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"cdk synth failed in {workdir}:\n{result.stderr[-3000:]}")
    return elapsed


def _baseline_dir(parent: Path) -> Path:
    workdir = parent / "baseline"
    workdir.mkdir()
    (workdir / "app.py").write_text(BASELINE_APP, encoding="utf-8")
    # The same CLI settings as the project's cdk.json: no telemetry, no notices.
    cdk_json = {"app": f"{PYTHON} app.py", "context": {"cli-telemetry": False, "notices": False}}
    (workdir / "cdk.json").write_text(json.dumps(cdk_json), encoding="utf-8")
    return workdir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=3, help="synths of each app (default 3)")
    args = parser.parse_args()
    for tool in (CDK, PYTHON):
        if not tool.exists():
            sys.exit(f"{tool} not found: run `make install` first")

    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        parent = Path(tmp)
        baseline_dir = _baseline_dir(parent)
        # One untimed synth of each warms the file cache (jsii's unpacked modules, Python's
        # bytecode) so that the first timed run is not an outlier.
        _synth(baseline_dir, parent / "warm-baseline")
        _synth(ROOT, parent / "warm-app")
        baseline: list[float] = []
        whole: list[float] = []
        for run in range(args.repeat):
            baseline.append(_synth(baseline_dir, parent / f"baseline-{run}"))
            whole.append(_synth(ROOT, parent / f"app-{run}"))

    base, app = statistics.median(baseline), statistics.median(whole)
    ratio = app / base
    print(f"one-bucket app : median {base:5.2f} s  runs {', '.join(f'{t:.2f}' for t in baseline)}")
    print(f"whole app      : median {app:5.2f} s  runs {', '.join(f'{t:.2f}' for t in whole)}")
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    print(f"ratio          : {ratio:.2f} ({verdict} the target of {TARGET_RATIO})")


if __name__ == "__main__":
    main()
