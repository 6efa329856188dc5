"""Streaming output.tar.gz: a read-ahead over the network body and a bounded gunzip.

`GunzipStream` decompresses with a bounded output size per read (not tarfile's "r|gz"), so a
highly compressible member cannot make one read expand into gigabytes. `ReadAhead` wraps a
network stream so that the download of the next chunks overlaps the decompression of this one
(registration uses it for the S3 body). Standard library only.
"""

from __future__ import annotations

import queue
import threading
import time
import zlib
from typing import Protocol

from lambdas.checkpoint.errors import RERUN_HINT, OutputArchiveError

# Read and decompression size: large enough that per-call overhead is negligible next to gunzip,
# small enough that memory stays a few MiB.
CHUNK_BYTES = 1024 * 1024


class BinaryStream(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class ReadAhead:
    """Reads `raw` in a background thread, up to `depth` chunks ahead of the consumer.

    Downloading and decompressing then overlap instead of taking turns: socket reads and zlib
    both release the GIL. `read(size)` returns at most `size` bytes and b"" at the end; an
    exception raised by `raw.read` is raised again by the `read` that reaches it. `close()`
    stops the thread (it does not close `raw`); use it in a `finally`, since the consumer may
    stop long before the end. Memory held: at most `depth + 1` chunks.
    """

    def __init__(
        self, raw: BinaryStream, *, chunk_bytes: int = CHUNK_BYTES, depth: int = 4
    ) -> None:
        self._raw = raw
        self._chunk = chunk_bytes
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._pending = b""
        self._done = False
        self._thread = threading.Thread(target=self._fill, name="read-ahead", daemon=True)
        self._thread.start()

    def _put(self, item: bytes | BaseException) -> bool:
        """Queue an item unless stopped; False once stopped."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def _fill(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._raw.read(self._chunk)
            except BaseException as error:  # noqa: BLE001 - handed to the consumer's thread
                self._put(error)
                return
            if not self._put(data) or not data:
                return

    def read(self, size: int = -1, /) -> bytes:
        if not self._pending and not self._done:
            item = self._queue.get()
            if isinstance(item, BaseException):
                self._done = True
                raise item
            self._pending = item
            self._done = not item
        wanted = len(self._pending) if size is None or size < 0 else size
        out, self._pending = self._pending[:wanted], self._pending[wanted:]
        return out

    def close(self, *, wait_seconds: float = 2.0) -> None:
        """Stop reading ahead. Waits at most `wait_seconds` for a `raw.read` in progress; a thread
        still blocked after that ends when `raw` is closed or its read times out."""
        self._stop.set()
        deadline = time.monotonic() + wait_seconds
        while self._thread.is_alive() and time.monotonic() < deadline:
            # Make room so that a blocked put returns and the thread sees the stop.
            try:
                self._queue.get_nowait()
            except queue.Empty:
                self._thread.join(timeout=0.05)

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class GunzipStream:
    """A gzip stream decompressed on the fly; `read(size)` returns at most `size` bytes.

    Reads every gzip member of a concatenated stream, as gunzip does, and skips zero bytes
    after a member (padding). Raises OutputArchiveError when the input is not gzip, is corrupt,
    or ends inside a member.
    """

    def __init__(self, raw: BinaryStream, *, source: str, chunk_bytes: int = CHUNK_BYTES) -> None:
        self._raw = raw
        self._source = source
        self._chunk = chunk_bytes
        self._inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        self._carry = b""  # input read past a member's end: the start of the next member
        self._finished = False
        self.compressed_bytes = 0
        self.decompressed_bytes = 0

    @property
    def at_end(self) -> bool:
        """True once the stream ended after a complete member (every checksum was verified)."""
        return self._finished

    def _raw_read(self) -> bytes:
        data = self._raw.read(self._chunk)
        self.compressed_bytes += len(data)
        return data

    def _next_member(self) -> bool:
        """After a member's end: True if another member follows, False at the end of input."""
        rest = self._inflater.unused_data
        while True:
            rest = rest.lstrip(b"\0")
            if rest:
                self._inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
                self._carry = rest
                return True
            rest = self._raw_read()
            if not rest:
                return False

    def read(self, size: int = -1, /) -> bytes:
        wanted = self._chunk if size is None or size < 0 else size
        parts: list[bytes] = []
        while wanted > 0 and not self._finished:
            if self._inflater.eof and not self._next_member():
                self._finished = True
                break
            data, self._carry = self._carry or self._inflater.unconsumed_tail, b""
            if not data:
                data = self._raw_read()
                if not data:
                    raise OutputArchiveError(self._ended_early())
            try:
                piece = self._inflater.decompress(data, wanted)
            except zlib.error as error:
                raise OutputArchiveError(self._corrupt(error)) from None
            parts.append(piece)
            wanted -= len(piece)
            self.decompressed_bytes += len(piece)
        return b"".join(parts)

    def drain(self) -> None:
        """Read to the end of the stream, which checks every member's length and CRC."""
        while not self._finished:
            self.read(self._chunk)

    def _ended_early(self) -> str:
        if self.compressed_bytes == 0:
            return f"{self._source} is empty: expected a gzip-compressed tar archive; {RERUN_HINT}"
        return (
            f"{self._source} is truncated: the gzip stream ends after {self.compressed_bytes} "
            f"bytes, before its end marker; {RERUN_HINT}"
        )

    def _corrupt(self, error: zlib.error) -> str:
        if self.decompressed_bytes == 0 and "header" in str(error):
            return (
                f"{self._source} is not gzip-compressed ({error}): expected a .tar.gz archive; "
                f"{RERUN_HINT}"
            )
        return (
            f"{self._source} is corrupt: gzip data error after {self.decompressed_bytes} "
            f"decompressed bytes ({error}); {RERUN_HINT}"
        )
