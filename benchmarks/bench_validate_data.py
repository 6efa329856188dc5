"""Throughput and peak memory of the dataset validator (lambdas/dataset/validator.py).

Generates synthetic bedrock-conversation-2024 files in a temporary folder (20,000 samples of
about 100 MB, plus a quarter-size one and an all-invalid one), then measures on one core:

- the baseline: read the file in 1 MiB chunks, split lines, `json.loads` every line;
- the validator: `Validator.feed_chunks` over the same chunks, every rule included;
- with `--aws-validator PATH`: AWS's sample validator (aws-samples/amazon-nova-samples,
  customization/bedrock-finetuning/understanding/dataset_validation/nova_ft_dataset_validator.py)
  on the same file, for Nova 2 Lite SFT, in a subprocess of `--aws-python` (an interpreter with
  pydantic; fetch the file into a temporary folder, never into this repository);
- peak traced memory (tracemalloc) of the validator for both sizes and for the invalid file,
  to show that memory does not grow with the file or with the number of findings.

Run: .venv/bin/python benchmarks/bench_validate_data.py [--samples 20000] [--repeat 3]
       [--aws-validator /tmp/awsval/nova_ft_dataset_validator.py
        --aws-python /tmp/awsval/bin/python]
The targets: at least 50 MB/s, and at least 5 times AWS's validator's speed. Figures vary with
machine load; the baselines are measured in the same run, so the ratios are the stable figures.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lambdas.dataset.validator import CHUNK_BYTES, Validator

TARGET_MB_S = 50.0
TARGET_AWS_RATIO = 5.0

# Runs in the interpreter given by --aws-python: times AWS's validator on one file, the way its
# command line validates a training file (every line, Nova 2 Lite, SFT), and prints JSON.
_AWS_RUNNER = """
import importlib.util, json, sys, time, warnings
warnings.simplefilter("ignore")
validator_path, data_path, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
spec = importlib.util.spec_from_file_location("aws_nova_validator", validator_path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
best = float("inf")
for _ in range(repeat):
    start = time.perf_counter()
    report = module.validate_jsonl_file(
        data_path, "lite-2.0", module.TaskType.SFT, platform="sagemaker", skip_bad_samples=True
    )
    best = min(best, time.perf_counter() - start)
print(json.dumps({"seconds": best, "valid": report.valid_samples, "failed": report.failed_samples}))
"""
SAMPLE_BYTES = 5_000  # 20,000 samples of about 5 kB make the 100 MB file

_VOCABULARY = (
    "the order shipment invoice customer account refund policy warehouse delivery "
    "schedule meeting report summary quarterly revenue forecast budget team project "
    "deadline review approval request ticket priority status update incident outage "
    "database query index latency throughput cache region replica backup restore "
    "contract clause payment term notice renewal vendor supplier product catalogue "
    "price discount tax currency exchange rate balance statement audit compliance "
    "please could you explain why how when where which what list compare translate "
    "because however therefore although meanwhile finally first second third next"
)
WORDS = tuple(_VOCABULARY.split())
PUNCTUATION = (".", ",", ".", "?", ";", ": ", " (see above)", " - ")


def _text(rng: random.Random, length: int) -> str:
    parts: list[str] = []
    size = 0
    while size < length:
        word = rng.choice(WORDS)
        if rng.random() < 0.08:
            word += rng.choice(PUNCTUATION)
        parts.append(word)
        size += len(word) + 1
    return " ".join(parts).capitalize() + "."


def make_sample(rng: random.Random, invalid: bool = False) -> dict[str, object]:
    """One realistic text sample of about SAMPLE_BYTES; `invalid` breaks three rules."""
    turns = rng.choice((2, 4, 6))
    budget = SAMPLE_BYTES - 300
    messages: list[dict[str, object]] = []
    for index in range(turns):
        role = "user" if index % 2 == 0 else "assistant"
        share = budget // turns
        length = share // 2 if role == "user" else share * 3 // 2
        messages.append({"role": role, "content": [{"text": _text(rng, length)}]})
    if invalid:
        messages[0]["content"] = [{"text": "User: " + _text(rng, 200)}]  # text.reserved
        messages[-1]["role"] = "user"  # roles.order
        messages[-1]["content"] = [{"text": ""}]  # text.empty
    return {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "You are a concise assistant for an operations team. " * 2}],
        "messages": messages,
    }


def write_dataset(path: Path, samples: int, *, invalid: bool = False, seed: int = 7) -> int:
    rng = random.Random(seed)  # noqa: S311 (reproducible test data, not secrets)
    with path.open("w", encoding="utf-8") as handle:
        for _ in range(samples):
            handle.write(json.dumps(make_sample(rng, invalid), ensure_ascii=False))
            handle.write("\n")
    return path.stat().st_size


def chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


def baseline(path: Path) -> int:
    """Plain parsing: the floor any validator pays."""
    lines = 0
    pending = b""
    for chunk in chunks(path):
        parts = (pending + chunk).split(b"\n")
        pending = parts.pop()
        for part in parts:
            json.loads(part)
            lines += 1
    if pending:
        json.loads(pending)
        lines += 1
    return lines


def validate(path: Path) -> Validator:
    validator = Validator(global_batch_size=32, reasoning_enabled=False, dataset_bucket="bench")
    validator.feed_chunks(chunks(path), source=str(path))
    return validator


def best_seconds(run: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def aws_seconds(validator: Path, python: str, path: Path, repeat: int) -> dict[str, float]:
    """Best time of AWS's validator on `path`, run by `python`; SystemExit says what is wrong."""
    if not validator.is_file():
        raise SystemExit(f"--aws-validator {validator}: no such file")
    done = subprocess.run(
        [python, "-c", _AWS_RUNNER, str(validator), str(path), str(repeat)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(
            f"AWS's validator did not run ({last}); give --aws-python an interpreter with "
            "pydantic 2, e.g. python3 -m venv /tmp/awsval && /tmp/awsval/bin/pip install pydantic"
        )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def peak_memory(path: Path) -> tuple[int, int, int]:
    """(peak traced bytes, findings counted, findings kept) for one validation."""
    tracemalloc.start()
    validator = validate(path)
    report = validator.finish()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, report.total_findings, len(report.findings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--aws-validator", type=Path, help="path of AWS's nova_ft_dataset_validator.py to compare"
    )
    parser.add_argument(
        "--aws-python", default=sys.executable, help="interpreter with pydantic for it"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-validate-") as folder:
        big = Path(folder) / "train.jsonl"
        small = Path(folder) / "train-quarter.jsonl"
        bad = Path(folder) / "train-invalid.jsonl"
        big_bytes = write_dataset(big, args.samples)
        small_bytes = write_dataset(small, args.samples // 4)
        bad_bytes = write_dataset(bad, args.samples, invalid=True)
        megabytes = big_bytes / 1e6
        print(f"file: {args.samples} samples, {megabytes:.1f} MB ({big_bytes} bytes)")

        report = validate(big).finish()
        if not report.ok:
            print("the generated file should be valid:\n" + report.summary(limit=5))
            return 1

        base = best_seconds(lambda: baseline(big), args.repeat)
        full = best_seconds(lambda: validate(big), args.repeat)
        print(f"baseline json.loads per line: {megabytes / base:7.1f} MB/s ({base:.2f} s)")
        print(
            f"validator, every rule:        {megabytes / full:7.1f} MB/s ({full:.2f} s), "
            f"{full / base:.2f}x the baseline time"
        )
        if args.aws_validator is not None:
            aws = aws_seconds(args.aws_validator, args.aws_python, big, args.repeat)
            if aws["failed"]:
                print(f"AWS's validator refused {aws['failed']:.0f} samples of the valid file")
            ratio = aws["seconds"] / full
            print(
                f"AWS's validator (pydantic):    {megabytes / aws['seconds']:7.1f} MB/s "
                f"({aws['seconds']:.2f} s), {aws['seconds'] / base:.2f}x the baseline time"
            )
            verdict = "meets" if ratio >= TARGET_AWS_RATIO else "MISSES"
            print(
                f"validator speed / AWS's:       {ratio:7.2f}x "
                f"(target {TARGET_AWS_RATIO:.0f}x: {verdict})"
            )
        bad_seconds = best_seconds(lambda: validate(bad), 1)
        print(f"validator, all-invalid file:  {bad_bytes / 1e6 / bad_seconds:7.1f} MB/s")

        print("peak traced memory of one validation (tracemalloc):")
        for label, path, size in (
            ("quarter-size valid", small, small_bytes),
            ("full-size valid", big, big_bytes),
            ("full-size, every line invalid", bad, bad_bytes),
        ):
            peak, counted, kept = peak_memory(path)
            print(
                f"  {label:30s} {size / 1e6:6.1f} MB file -> peak {peak / 1e6:5.2f} MB "
                f"({counted} findings counted, {kept} kept)"
            )
        verdict = "meets" if megabytes / full >= TARGET_MB_S else "MISSES"
        print(f"target {TARGET_MB_S:.0f} MB/s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
