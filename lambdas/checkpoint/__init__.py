"""Read what a Nova training job leaves in its `output.tar.gz`: the checkpoint and the loss curve.

`read_job_output(stream, source=...)` takes any binary stream with `read(size)` (an S3 object
body, an open file) and reads it once, front to back, in `CHUNK_BYTES` pieces: nothing is written
to disk and memory does not grow with the archive. It looks only at `manifest.json` and
`step_wise_training_metrics.csv` at the top of the archive (with or without a `./` prefix),
skips every other member whatever its size, and stops reading as soon as both are found.

- The manifest must be a regular file of at most `MAX_MANIFEST_BYTES` holding a JSON object
  whose `checkpoint_s3_bucket` is an s3:// URI; otherwise `OutputArchiveError` says what is wrong
  with which object. A link named `manifest.json` is refused, never followed.
- The metrics are summarized (`LossSummary`); a missing, linked, oversize (over
  `MAX_METRICS_BYTES`) or malformed metrics file does not fail the read: `metrics` is None and
  `metrics_problem` says why.
- A stream that is not gzip, not tar, or ends early raises `OutputArchiveError`. When the
  manifest is missing the whole stream is read, so its gzip checksum is verified too.

Decompression is done here with a bounded output size per read (not by tarfile's "r|gz"), so a
highly compressible member cannot make one read expand into gigabytes; tarfile reads the
decompressed stream in stream mode ("r|"). `ReadAhead` wraps a network stream so that the
download of the next chunks overlaps the decompression of this one (registration uses it for
the S3 body). Standard library only.

The package's public API, re-exported from its modules: `errors` (`OutputArchiveError`), `stream`
(reading and gunzipping the stream: `ReadAhead`, `GunzipStream`), `contents` (the manifest and the
metrics: `parse_manifest`, `summarize_metrics`, `LossSummary`) and `archive` (the one pass over
the tar members: `read_job_output`, `JobOutput`).
"""

from lambdas.checkpoint.archive import JobOutput, read_job_output
from lambdas.checkpoint.contents import (
    CHECKPOINT_KEY,
    LOSS_COLUMN,
    MANIFEST,
    MAX_MANIFEST_BYTES,
    MAX_METRICS_BYTES,
    METRICS,
    SHOWN_MEMBERS,
    STEP_COLUMN,
    LossSummary,
    parse_manifest,
    summarize_metrics,
)
from lambdas.checkpoint.errors import RERUN_HINT, OutputArchiveError
from lambdas.checkpoint.stream import CHUNK_BYTES, BinaryStream, GunzipStream, ReadAhead

__all__ = [
    "CHECKPOINT_KEY",
    "CHUNK_BYTES",
    "LOSS_COLUMN",
    "MANIFEST",
    "MAX_MANIFEST_BYTES",
    "MAX_METRICS_BYTES",
    "METRICS",
    "RERUN_HINT",
    "SHOWN_MEMBERS",
    "STEP_COLUMN",
    "BinaryStream",
    "GunzipStream",
    "JobOutput",
    "LossSummary",
    "OutputArchiveError",
    "ReadAhead",
    "parse_manifest",
    "read_job_output",
    "summarize_metrics",
]
