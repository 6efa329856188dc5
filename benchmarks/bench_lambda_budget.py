"""The validate and register handlers on the largest inputs, against their deployed budgets.

Each handler runs as the rehearsal runs it
(`pipeline.rehearsal.lambda_budget.budgeted`: its deployed timeout as a wall-clock limit, a context
counting down), in a child process pinned to one core (`os.sched_setaffinity`; the deployed
functions have 1769 MB, one vCPU), against moto's server on 127.0.0.1 over HTTP, served by this
process from another core where there is one. Budgets come from `stacks/functions.py`, the specs
the stacks synthesize.

Inputs, generated with the other benchmarks' generators:
- validate: 20,000 samples (the most a training job takes, NOVA_FACTS section 5) of
  `--sample-kib` each; the default 5 KiB makes about 100 MB. A sample may hold up to 32k tokens
  of context; at about 4 bytes a token that is 128 KiB a sample, 2.6 GB in all (`--full`).
- register: an output.tar.gz of at least `--gib` GiB (default 0.5) with `manifest.json` last,
  so the whole archive is inflated (`--full`: 4 GiB).

Printed per handler: input size, seconds, the headroom left of its timeout, and the process's
peak resident set against its memory size (Lambda counts the whole process). Exit status 1
when a handler fails or times out.

Run: .venv/bin/python benchmarks/bench_lambda_budget.py [--full] [--sample-kib N] [--gib G]
Default run: about two minutes on the project's machines. Linux only (/proc, sched_setaffinity).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_checkpoint  # noqa: E402 - the archive generator and staging
import bench_validate_data  # noqa: E402 - the dataset generator

SAMPLES = 20_000
FULL_SAMPLE_KIB = 128  # 32k tokens of about 4 bytes
FULL_GIB = 4.0
DATA_KEY = "datasets/bench/train.jsonl"
MIB = 1024 * 1024


def budgets() -> dict[str, dict[str, Any]]:
    """Timeout and memory of the validate and register functions, as the stacks declare them."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from stacks.functions import REGISTER, VALIDATE

    return {
        name: {
            "handler": spec.handler,
            "timeout": spec.timeout.to_seconds(),
            "memory_mb": spec.memory_mb,
        }
        for name, spec in (("validate", VALIDATE), ("register", REGISTER))
    }


# -- the measured child -------------------------------------------------------------------------


def _vm_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"/proc/self/status has no {field}: this benchmark needs Linux")


def child(arguments: dict[str, Any]) -> None:
    import importlib

    from pipeline.rehearsal.lambda_budget import Budget, FunctionTimedOut, budgeted

    os.sched_setaffinity(0, {arguments["core"]})
    figures: dict[str, Any] = {}
    for name, event in arguments["events"].items():
        spec = arguments["budgets"][name]
        module, _, attribute = spec["handler"].rpartition(".")
        handler = getattr(importlib.import_module(module), attribute)
        arn = f"arn:aws:lambda:{bench_checkpoint.REGION}:123456789012:function:{name}"
        call = budgeted(handler, arn, Budget(spec["timeout"], spec["memory_mb"]))
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM from here: this handler's peak
        start = time.perf_counter()
        try:
            result: Any = call(event, None)
        except FunctionTimedOut as err:
            result = f"timed out: {err}"
        except Exception as err:  # noqa: BLE001 - reported, the exit status says it failed
            result = f"failed: {type(err).__name__}: {err}"
        figures[name] = {
            "seconds": time.perf_counter() - start,
            "peak_mib": _vm_kib("VmHWM") / 1024,
            "result": result,
        }
    print(json.dumps(figures))


# -- the run ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the largest sizes (2.6 GB, 4 GiB)")
    parser.add_argument("--sample-kib", type=float, default=5.0, help="dataset sample size")
    parser.add_argument("--gib", type=float, default=0.5, help="least archive size, GiB")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(json.loads(options.child))
        return 0
    if options.full:
        options.sample_kib, options.gib = FULL_SAMPLE_KIB, FULL_GIB
    cores = sorted(os.sched_getaffinity(0))
    measured = cores[0]
    if len(cores) > 1:
        os.sched_setaffinity(0, set(cores[1:]))  # moto's server off the measured core
    limits = budgets()

    with tempfile.TemporaryDirectory(prefix="bench-lambda-budget-") as folder:
        dataset = Path(folder) / "train.jsonl"
        archive = Path(folder) / "output.tar.gz"
        small = Path(folder) / "small-output.tar.gz"
        start = time.perf_counter()
        # The generator's sample size is a module constant: set it for this run.
        bench_validate_data.SAMPLE_BYTES = int(options.sample_kib * 1024)
        data_bytes = bench_validate_data.write_dataset(dataset, SAMPLES)
        bench_checkpoint.make_archive(
            archive, min_bytes=int(options.gib * bench_checkpoint.GIB), job=bench_checkpoint.BIG_JOB
        )
        bench_checkpoint.make_archive(small, min_bytes=0, job=bench_checkpoint.SMALL_JOB)
        archive_bytes = archive.stat().st_size
        print(
            f"inputs: {SAMPLES} samples, {data_bytes / 1e6:.1f} MB; output.tar.gz "
            f"{archive_bytes / bench_checkpoint.GIB:.2f} GiB; generated in "
            f"{time.perf_counter() - start:.0f} s"
        )
        from pipeline.rehearsal.endpoint import LocalEndpoint

        with LocalEndpoint() as endpoint:
            # Staged with the small archive, then the big one uploaded over it by a client that
            # waits long enough for moto to assemble gigabytes at CompleteMultipartUpload (its
            # default 60 s read timeout retries the call after moto already finished it).
            events = bench_checkpoint.stage(
                endpoint.url, {bench_checkpoint.SMALL_JOB: small, bench_checkpoint.BIG_JOB: small}
            )
            import boto3
            from boto3.s3.transfer import TransferConfig
            from botocore.config import Config

            s3 = boto3.client(
                "s3", region_name=bench_checkpoint.REGION, config=Config(read_timeout=1800)
            )
            big_uri = events[bench_checkpoint.BIG_JOB]["ModelArtifactsS3Uri"]
            big_key = big_uri.split("/", 3)[3].rsplit("/", 1)[0] + "/output.tar.gz"
            transfer = TransferConfig(multipart_chunksize=64 * MIB, max_concurrency=2)
            s3.upload_file(str(archive), bench_checkpoint.BUCKET, big_key, Config=transfer)
            s3.upload_file(str(dataset), bench_checkpoint.BUCKET, DATA_KEY, Config=transfer)
            bucket = bench_checkpoint.BUCKET
            arguments = {
                "core": measured,
                "budgets": limits,
                "events": {
                    "validate": {
                        "TrainDataS3Uri": f"s3://{bucket}/{DATA_KEY}",
                        "GlobalBatchSize": "32",
                        "ReasoningEnabled": "false",
                        "ReportS3Uri": f"s3://{bucket}/reports/validation.json",
                    },
                    "register": events[bench_checkpoint.BIG_JOB],
                },
            }
            done = subprocess.run(
                [sys.executable, __file__, "--child", json.dumps(arguments)],
                check=True,
                capture_output=True,
                text=True,
                env=bench_checkpoint._environment(endpoint.url),
            )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"pinned to core {measured}; budgets from stacks/functions.py")
    return report(figures, limits, {"validate": data_bytes, "register": archive_bytes})


def report(figures: dict[str, Any], limits: dict[str, Any], sizes: dict[str, int]) -> int:
    """Print each handler's headroom; 1 if one failed, timed out or read the wrong archive."""
    failed = False
    for name, figure in figures.items():
        limit = limits[name]
        seconds, timeout = figure["seconds"], limit["timeout"]
        ok = isinstance(figure["result"], dict)
        if ok and name == "register":  # it read the big archive, not the staged placeholder
            checkpoint = figure["result"].get("CheckpointS3Uri")
            ok = checkpoint == bench_checkpoint.escrow(bench_checkpoint.BIG_JOB)
            figure["result"] = figure["result"] if ok else f"registered {checkpoint}"
        failed |= not ok
        print(
            f"{name:9s} {sizes[name] / MIB:9.1f} MiB in {seconds:7.2f} s of {timeout:.0f} s: "
            f"headroom {timeout - seconds:7.1f} s ({(1 - seconds / timeout) * 100:5.1f} %), "
            f"x{timeout / seconds:.1f}; peak RSS {figure['peak_mib']:6.0f} MiB of "
            f"{limit['memory_mb']} MB" + ("" if ok else f"; {figure['result']}")
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
