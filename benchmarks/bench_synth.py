"""How long `cdk synth` of the whole app takes, against a one-bucket app synthesized the same way.

Every synth runs the project's pinned CDK CLI (`node_modules/.bin/cdk synth --quiet`) with the
project's Python, offline, into a fresh folder; the variants alternate within each round so that
machine load hits them alike. The baseline is a throwaway app with one S3 bucket in one stack,
written to a temporary folder: the fixed cost of any CDK Python app (Python, jsii and Node
start-up, CDK's built-in CloudFormation validation, writing the cloud assembly). The whole app adds
four environments of two stacks each, the toolchain, cdk-nag, and the pipeline definitions.

The whole app is timed twice: with its definitions cached (a synth after one with the same
definition inputs: the common case while working on the stacks) and with the cache off (a synth
after a change to pipeline/, lambdas/, cdk.json or the installed packages: each definition is
built with the SageMaker SDK). A second baseline and a third app variant turn CDK's built-in
validation off (`CDK_VALIDATION=false`), to show what it costs in each; the project keeps it on.
docs/decisions/0010-synth-time.md discusses the figures.

Run: .venv/bin/python benchmarks/bench_synth.py [--repeat 3]
Target: whole app (definitions cached) / baseline <= 1.5 (medians). Figures vary with machine
load; the ratios, measured in the same run, are the stable figures.
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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CDK = ROOT / "node_modules" / ".bin" / "cdk"
PYTHON = ROOT / ".venv" / "bin" / "python"
TARGET_RATIO = 1.5
sys.path.insert(0, str(ROOT))

from pipeline.definition_cache import DEFINITION_CACHE_CONTEXT  # noqa: E402  (after the path)

BASELINE = "one-bucket app"
CACHED = "whole app, definitions cached"
BUILT = "whole app, definitions built"

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


@dataclass(frozen=True)
class Variant:
    label: str
    workdir: Path
    arguments: tuple[str, ...] = ()
    builtin_validation: bool = True


def _synth(variant: Variant, outdir: Path) -> float:
    """Seconds for one `cdk synth --quiet` of `variant`, into a fresh `outdir`."""
    env = _environment()
    if not variant.builtin_validation:
        env["CDK_VALIDATION"] = "false"
    started = time.perf_counter()
    result = subprocess.run(
        [str(CDK), "synth", "--quiet", "--output", str(outdir), *variant.arguments],
        cwd=variant.workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"cdk synth failed ({variant.label}):\n{result.stderr[-3000:]}")
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
        # The benchmark's own definition cache: the project's is neither read nor changed.
        cached = ("--context", f"{DEFINITION_CACHE_CONTEXT}={parent / 'definitions'}")
        variants = (
            Variant(BASELINE, baseline_dir),
            Variant(CACHED, ROOT, cached),
            Variant(BUILT, ROOT, ("--context", f"{DEFINITION_CACHE_CONTEXT}=false")),
            Variant("one-bucket app, no built-in validation", baseline_dir, (), False),
            Variant("whole app, cached, no built-in validation", ROOT, cached, False),
        )
        # One untimed synth of each warms the file cache (jsii's unpacked modules, Python's
        # bytecode) so that the first timed run is not an outlier, and fills the definitions.
        for number, variant in enumerate(variants):
            _synth(variant, parent / f"warm-{number}")
        times: dict[str, list[float]] = {variant.label: [] for variant in variants}
        for run in range(args.repeat):
            for number, variant in enumerate(variants):
                times[variant.label].append(_synth(variant, parent / f"run-{run}-{number}"))

    medians = {label: statistics.median(runs) for label, runs in times.items()}
    width = max(len(label) for label in times)
    for label, runs in times.items():
        listed = ", ".join(f"{t:.2f}" for t in runs)
        print(f"{label:<{width}} : median {medians[label]:5.2f} s  runs {listed}")
    for label in (CACHED, BUILT):
        ratio = medians[label] / medians[BASELINE]
        verdict = "meets" if ratio <= TARGET_RATIO else "misses"
        target = f" ({verdict} the target of {TARGET_RATIO})" if label == CACHED else ""
        print(f"ratio, {label} / one-bucket app : {ratio:.2f}{target}")


if __name__ == "__main__":
    main()
