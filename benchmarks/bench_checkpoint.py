"""Registering a checkpoint from a large output.tar.gz, against gunzip on the same file.

Generates, in a temporary folder, an output.tar.gz of at least `--gib` GiB (default 1) laid out
as the worst case for the reader: the metrics first, then shards of half-incompressible data
(tensorboard-like binaries and log text), and `manifest.json` as the very last member, so the
whole archive must be inflated before the checkpoint is known. A small archive is generated too.

It serves moto on 127.0.0.1 from this process (`pipeline.rehearsal.endpoint.LocalEndpoint`: S3 and
SageMaker over real HTTP), stages both runs the way the pipeline leaves them (recipe from the
prepare step, outputs under the job's folder), then measures in the same run:

- baselines: `gzip -dc FILE > /dev/null` (the target's reference) and `gzip -dc FILE | tar t`,
  each run before and after the measured process; the fastest run counts;
- `register_checkpoint` end to end (group check, idempotency lookup, recipe read, the archive
  streamed from S3, CreateModelPackage), then the same call again (found, nothing created);
- `read_job_output` on the local file (the streaming core alone, without HTTP);
- `read_job_output` on the file read as over a slower link (`--link-mb-s`, default 100 MB/s,
  nearer to S3 than loopback), without and with `ReadAhead`: what overlapping the download
  with the decompression saves.

The measured calls run in a fresh child process, so the server's memory (it holds the uploaded
archives) counts in none of their figures. The child first registers the small archive (loading
every client and code path), then resets its peak-RSS mark (/proc/self/clear_refs) before each
measured call, so "peak memory growth" is the peak resident set during the call minus the
resident set just before it: what the archive's size costs, not what importing boto3 costs.

Run: .venv/bin/python benchmarks/bench_checkpoint.py [--gib 1.0] [--repeat 1]
Targets (issue 2): registration time <= 1.25 x `gzip -dc`, peak memory growth <= 64 MiB.
Exit status 1 when a target is missed. Linux only (/proc). Figures vary with machine load; the
ratio to the baseline measured in the same run is the stable figure.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any, BinaryIO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_TIME_RATIO = 1.25
TARGET_MEMORY_MIB = 64.0
MIB = 1024 * 1024
GIB = 1024 * MIB
SHARD_BYTES = 256 * MIB  # one "tensorboard" member; the manifest comes after all of them
BLOCK_BYTES = 64 * 1024
RANDOM_SHARE = 40 * 1024  # of each 64 KiB block: the rest is log text, which deflates ~5x
BUCKET = "bench-artifacts"
GROUP = "bench-checkpoints"
REGION = "us-east-1"
BIG_JOB = "bench-big-job"
SMALL_JOB = "bench-warm-up-job"
METRICS = b"step_number,training_loss\n" + b"".join(
    f"{step},{2.0 / step:.6f}\n".encode() for step in range(1, 101)
)


def escrow(job: str) -> str:
    return f"s3://customer-escrow-123456789012-smtj-bench/{job}/step_100"


# -- archive generation -------------------------------------------------------------------------


class _GzipWriter:
    """A file object that gzips what tarfile writes, at level 1 (as fast as a job would)."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._deflate = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS | 16)
        self.written = 0  # compressed bytes
        self.raw = 0  # tar bytes

    def write(self, data: bytes) -> int:
        self.raw += len(data)
        self.written += self._out.write(self._deflate.compress(data))
        return len(data)

    def finish(self) -> None:
        self.written += self._out.write(self._deflate.flush())


class _ShardData:
    """`size` bytes of blocks that are part random (incompressible), part log text."""

    def __init__(self, size: int, pools: tuple[bytes, bytes], rng: random.Random) -> None:
        self._left = size
        self._random, self._text = pools
        self._rng = rng
        self._pending = bytearray()  # the rest of the last block: tarfile reads in small pieces

    def _block(self) -> bytes:
        # Slices at random offsets of 8 MiB pools: deflate's 32 KiB window never sees a repeat.
        a = self._rng.randrange(len(self._random) - RANDOM_SHARE)
        b = self._rng.randrange(len(self._text) - (BLOCK_BYTES - RANDOM_SHARE))
        return self._random[a : a + RANDOM_SHARE] + self._text[b : b + BLOCK_BYTES - RANDOM_SHARE]

    def read(self, size: int = -1) -> bytes:
        want = self._left if size < 0 else min(size, self._left)
        while len(self._pending) < want:
            self._pending += self._block()
        out, self._pending = self._pending[:want], self._pending[want:]
        self._left -= want
        return bytes(out)


def _pools(rng: random.Random) -> tuple[bytes, bytes]:
    random_pool = rng.randbytes(8 * MIB)
    lines: list[str] = []
    size = 0
    while size < 8 * MIB:
        step = rng.randrange(1, 100_000)
        line = (
            f"[rank {rng.randrange(32)}] global_step={step} reduced_train_loss="
            f"{rng.random() * 3:.5f} lr={rng.random() * 1e-5:.3e} "
            f"tokens_per_sec={rng.randrange(10_000, 90_000)}\n"
        )
        lines.append(line)
        size += len(line)
    return random_pool, "".join(lines).encode()


def _add(archive: tarfile.TarFile, name: str, data: Any, size: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 1_700_000_000
    archive.addfile(info, data)


def make_archive(path: Path, *, min_bytes: int, job: str, seed: int = 7) -> tuple[int, int]:
    """Write an output.tar.gz of at least `min_bytes`, manifest last; (members, tar bytes)."""

    rng = random.Random(seed)  # noqa: S311 - repeatable synthetic data, not a secret
    pools = _pools(rng) if min_bytes > 0 else (b"", b"")
    manifest = json.dumps({"checkpoint_s3_bucket": escrow(job)}).encode()
    members = 0
    with path.open("wb") as out:
        gz = _GzipWriter(out)
        with tarfile.open(  # type: ignore[call-overload]
            fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT, copybufsize=MIB
        ) as archive:
            _add(archive, "./step_wise_training_metrics.csv", io.BytesIO(METRICS), len(METRICS))
            members += 1
            while gz.written < min_bytes:
                name = f"./tensorboard/events.out.tfevents.{members:04d}"
                _add(archive, name, _ShardData(SHARD_BYTES, pools, rng), SHARD_BYTES)
                members += 1
            _add(archive, "./manifest.json", io.BytesIO(manifest), len(manifest))
            members += 1
        gz.finish()
    return members, gz.raw


# -- staging, in moto's server -------------------------------------------------------------------


def _environment(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def stage(url: str, archives: dict[str, Path]) -> dict[str, dict[str, str]]:
    """Create the bucket and group, and stage each job's recipe and outputs; their events."""
    import boto3
    from boto3.s3.transfer import TransferConfig

    from lambdas.prepare_recipe import prepare_recipe

    os.environ.update(_environment(url))
    session = boto3.Session(region_name=REGION)
    s3 = session.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    session.client("sagemaker").create_model_package_group(ModelPackageGroupName=GROUP)
    events: dict[str, dict[str, str]] = {}
    for job, archive in archives.items():
        recipe = prepare_recipe(
            s3,
            {
                "Technique": "LoRA",
                "ModelNameOrPath": "nova-lite-2/prod",
                "TrainingInstanceType": "ml.p5.48xlarge",
                "TrainingInstanceCount": "4",
                "RunName": job,
                "RecipeS3Prefix": f"s3://{BUCKET}/runs/{job}/recipe/",
            },
        )
        folder = f"runs/{job}/training/{job}/output"
        s3.put_object(Bucket=BUCKET, Key=f"{folder}/model.tar.gz", Body=b"")
        s3.upload_file(
            str(archive),
            BUCKET,
            f"{folder}/output.tar.gz",
            Config=TransferConfig(multipart_chunksize=64 * MIB, max_concurrency=2),
        )
        events[job] = {
            "TrainingJobName": job,
            "ModelArtifactsS3Uri": f"s3://{BUCKET}/{folder}/model.tar.gz",
            "ModelPackageGroupName": GROUP,
            "ModelNameOrPath": "nova-lite-2/prod",
            "Technique": "LoRA",
            "RecipeS3Uri": recipe["RecipeS3Uri"],
        }
    return events


# -- the measured child -------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"/proc/self/status has no {field}: this benchmark needs Linux")


def _measure(call: Any) -> tuple[Any, float, float]:
    """(result, seconds, peak RSS growth in MiB) of one call."""
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0 and later).
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kib("VmRSS")
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    return result, seconds, (_status_kib("VmHWM") - before) / 1024


class _Link:
    """A file read as if over a network link of `bytes_per_second` (the wait releases the GIL,
    as a socket read does)."""

    def __init__(self, raw: BinaryIO, bytes_per_second: float) -> None:
        self._raw = raw
        self._rate = bytes_per_second

    def read(self, size: int = -1, /) -> bytes:
        data = self._raw.read(size)
        time.sleep(len(data) / self._rate)
        return data


def _require(condition: bool, message: str) -> None:
    # Not assert: the figures are only worth printing if these hold, even under python -O.
    if not condition:
        raise SystemExit(f"benchmark check failed: {message}")


def child(arguments: dict[str, Any]) -> None:
    import boto3

    from lambdas.checkpoint import ReadAhead, read_job_output
    from lambdas.registry import RegistrationRequest, register_checkpoint

    session = boto3.Session(region_name=REGION)
    sm, s3 = session.client("sagemaker"), session.client("s3")
    events = arguments["events"]
    warm = register_checkpoint(sm, s3, RegistrationRequest.from_event(events[SMALL_JOB]))
    _require(warm.created, "the warm-up job was registered before this run")

    # Registration first, right after the warm-up: its growth is measured from the resident set
    # of a process that has not yet inflated anything large.
    request = RegistrationRequest.from_event(events[BIG_JOB])
    registered, seconds, growth = _measure(lambda: register_checkpoint(sm, s3, request))
    _require(registered.created, "the big job was registered before this run")
    _require(registered.record.checkpoint_uri == escrow(BIG_JOB), "wrong checkpoint registered")
    figures: dict[str, Any] = {"register": [seconds, growth], "local": []}
    again, seconds, growth = _measure(lambda: register_checkpoint(sm, s3, request))
    _require(not again.created, "the second registration created a version")
    _require(
        again.record.model_package_arn == registered.record.model_package_arn,
        "the second registration returned another version",
    )
    figures["again"] = [seconds, growth]
    listed = sm.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    figures["versions"] = len(listed)

    def read_local() -> str:
        with open(arguments["archive"], "rb") as handle:
            return read_job_output(handle, source=arguments["archive"]).checkpoint_uri

    for _ in range(arguments["repeat"]):
        uri, seconds, growth = _measure(read_local)
        _require(uri == escrow(BIG_JOB), f"read {uri} from the local file")
        figures["local"].append([seconds, growth])

    # A slower link than loopback, as from S3: does downloading overlap with inflating?
    def read_link(ahead: bool) -> str:
        with open(arguments["archive"], "rb") as handle:
            link = _Link(handle, arguments["link_mb_s"] * 1e6)
            if not ahead:
                return read_job_output(link, source=arguments["archive"]).checkpoint_uri
            with ReadAhead(link) as stream:
                return read_job_output(stream, source=arguments["archive"]).checkpoint_uri

    for ahead in (False, True):
        uri, seconds, growth = _measure(lambda ahead=ahead: read_link(ahead))
        _require(uri == escrow(BIG_JOB), f"read {uri} over the simulated link")
        figures["ahead" if ahead else "sequential"] = [seconds, growth]
    print(json.dumps(figures))


# -- the run ------------------------------------------------------------------------------------


def timed_shell(command: str) -> float:
    start = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=1.0, help="least archive size (default 1)")
    parser.add_argument("--repeat", type=int, default=1, help="local reads and baselines")
    parser.add_argument(
        "--link-mb-s", type=float, default=100.0, help="simulated link speed, MB/s (default 100)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(json.loads(options.child))
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-checkpoint-") as folder:
        big, small = Path(folder) / "output.tar.gz", Path(folder) / "small-output.tar.gz"
        start = time.perf_counter()
        members, tar_bytes = make_archive(big, min_bytes=int(options.gib * GIB), job=BIG_JOB)
        make_archive(small, min_bytes=0, job=SMALL_JOB)
        size = big.stat().st_size
        print(
            f"archive: {size / GIB:.3f} GiB gzip ({size} bytes), {tar_bytes / GIB:.3f} GiB tar, "
            f"{members} members, manifest.json last; generated in "
            f"{time.perf_counter() - start:.1f} s"
        )
        # moto runs in this process; the measured calls run in a child, whose memory is apart.
        from pipeline.rehearsal.endpoint import LocalEndpoint

        with LocalEndpoint() as endpoint:
            url = endpoint.url
            start = time.perf_counter()
            events = stage(url, {SMALL_JOB: small, BIG_JOB: big})
            print(f"staged in moto's server over HTTP in {time.perf_counter() - start:.1f} s")
            gunzip: list[float] = []
            gunzip_tar: list[float] = []

            def baselines() -> None:
                for _ in range(options.repeat):
                    gunzip.append(timed_shell(f"gzip -dc '{big}' > /dev/null"))
                    gunzip_tar.append(timed_shell(f"gzip -dc '{big}' | tar t > /dev/null"))

            # Baselines before and after the measured child, so that a change of machine load
            # during the run does not favour either side; the fastest of each is reported.
            baselines()
            arguments = {
                "events": events,
                "archive": str(big),
                "repeat": options.repeat,
                "link_mb_s": options.link_mb_s,
            }
            done = subprocess.run(
                [sys.executable, __file__, "--child", json.dumps(arguments)],
                check=True,
                capture_output=True,
                text=True,
                env=_environment(url),
            )
            baselines()
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return report(size, min(gunzip), min(gunzip_tar), figures, options.link_mb_s)


def report(
    size: int, gunzip: float, gunzip_tar: float, figures: dict[str, Any], link_mb_s: float
) -> int:
    def rate(seconds: float) -> str:
        return f"{size / MIB / seconds:7.1f} MiB/s of gzip"

    local_seconds = min(seconds for seconds, _ in figures["local"])
    local_growth = max(growth for _, growth in figures["local"])
    register_seconds, register_growth = figures["register"]
    again_seconds, _ = figures["again"]
    print(f"gzip -dc FILE > /dev/null       {gunzip:7.2f} s  {rate(gunzip)}  (baseline)")
    print(f"gzip -dc FILE | tar t           {gunzip_tar:7.2f} s  {rate(gunzip_tar)}")
    print(
        f"read_job_output, local file     {local_seconds:7.2f} s  {rate(local_seconds)}  "
        f"x{local_seconds / gunzip:.2f}  peak RSS growth {local_growth:.1f} MiB"
    )
    print(
        f"register_checkpoint, via S3     {register_seconds:7.2f} s  {rate(register_seconds)}  "
        f"x{register_seconds / gunzip:.2f}  peak RSS growth {register_growth:.1f} MiB"
    )
    print(
        f"register_checkpoint, again      {again_seconds:7.2f} s  (found, nothing created; "
        f"{figures['versions']} versions in the group)"
    )
    sequential, _ = figures["sequential"]
    ahead, ahead_growth = figures["ahead"]
    print(
        f"read_job_output, {link_mb_s:.0f} MB/s link   {sequential:7.2f} s  {rate(sequential)}  "
        "download and inflate in turn"
    )
    print(
        f"  the same, with ReadAhead     {ahead:7.2f} s  {rate(ahead)}  "
        f"x{ahead / sequential:.2f} of in turn  peak RSS growth {ahead_growth:.1f} MiB"
    )
    ratio = register_seconds / gunzip
    time_ok = ratio <= TARGET_TIME_RATIO
    memory_ok = max(register_growth, local_growth, ahead_growth) <= TARGET_MEMORY_MIB
    growth = max(register_growth, local_growth, ahead_growth)
    print(
        f"target time <= {TARGET_TIME_RATIO} x gzip: x{ratio:.2f} "
        f"{'met' if time_ok else 'MISSED'}; target memory growth <= {TARGET_MEMORY_MIB:.0f} MiB: "
        f"{growth:.1f} MiB {'met' if memory_ok else 'MISSED'}"
    )
    return 0 if time_ok and memory_ok else 1


if __name__ == "__main__":
    sys.exit(main())
