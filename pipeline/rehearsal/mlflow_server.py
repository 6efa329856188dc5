"""A real MLflow tracking server on 127.0.0.1 for the rehearsal and its tests.

`mlflow` is a development dependency only, in a virtualenv of its own (`.venv-mlflow`,
requirements-mlflow.txt, `make demo` creates it): the server runs as a child process of that
interpreter, with a throw-away SQLite store and artifact folder, on a free loopback port. Its
processes (the CLI and the uvicorn worker it starts) share one process group, which `stop` ends
as a whole: nothing is left running. MLflow's background job runner is switched off; the
rehearsal needs only the tracking API.

Start it early and wait for it late: `start()` returns at once, `wait_ready()` blocks until the
server answers `/health` (its imports take a while on a loaded machine). A store made from
`TEMPLATE_STORE` starts without migrations.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[2]
MLFLOW_PYTHON = ROOT / ".venv-mlflow" / "bin" / "python"
# An empty store with MLflow's schema, made once when .venv-mlflow is installed (Makefile): a
# copy saves the server the schema migrations, several seconds of every start.
TEMPLATE_STORE = ROOT / ".venv-mlflow" / "empty-store.db"
# How long the first answer may take: importing MLflow's server on a busy 2-core machine.
READY_TIMEOUT_SECONDS = 180.0


class MlflowServerError(RuntimeError):
    """The local MLflow server could not start; the message says why and what to do."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def end_process_group(pid: int, process: subprocess.Popen[bytes] | None = None) -> None:
    """End the process group `pid` (the server's CLI and its worker): SIGTERM, then SIGKILL
    after 15 s. `process`, when this process started it, is reaped."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process is not None:
            process.poll()
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    # Whatever is left of the group (a worker that outlived the CLI) ends now.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


class LocalMlflowServer:
    """`mlflow server` on 127.0.0.1:<free port> with a temporary store; a context manager.

    `python` is the interpreter that has `mlflow` (default `.venv-mlflow/bin/python`).
    Attributes once started: `url` (http://127.0.0.1:<port>), `pid` (the process group's id).
    """

    def __init__(self, python: Path = MLFLOW_PYTHON) -> None:
        self.python = python
        self.port = 0
        self.url = ""
        self.pid: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None
        self._log: Path | None = None
        self._attached = False

    def start(self) -> LocalMlflowServer:
        """Start the server; returns at once (`wait_ready` waits for it)."""
        if not self.python.exists():
            raise MlflowServerError(
                f"{self.python} not found: the local MLflow server needs the .venv-mlflow "
                "virtualenv; create it with `make .venv-mlflow/.installed` (or `make demo`)"
            )
        self._workdir = Path(tempfile.mkdtemp(prefix="nova-sft-mlflow-"))
        self._log = self._workdir / "server.log"
        store = self._workdir / "mlflow.db"
        template = self.python.parent.parent / TEMPLATE_STORE.name
        if template.is_file():
            shutil.copyfile(template, store)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            str(self.python),
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{store}",
            "--default-artifact-root",
            str(self._workdir / "artifacts"),
        ]
        environment = {
            **os.environ,
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(  # noqa: S603 (a fixed command, no shell)
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=environment,
                start_new_session=True,  # its own process group: `stop` ends every child
            )
        self.pid = self._process.pid
        return self

    @classmethod
    def attach(cls, url: str, pid: int | None = None) -> LocalMlflowServer:
        """A server another process started (at `url`, process group `pid`): `wait_ready`
        works, `stop` leaves it to its owner (`end_process_group`)."""
        server = cls()
        server.url, server.pid, server._attached = url, pid, True
        return server

    @property
    def workdir(self) -> Path | None:
        """The temporary folder of the server's store and log (None once stopped)."""
        return self._workdir

    def wait_ready(self, timeout: float = READY_TIMEOUT_SECONDS) -> LocalMlflowServer:
        """Block until `/health` answers; MlflowServerError (with the log's end) otherwise."""
        if self._process is None and not self._attached:
            raise MlflowServerError("the MLflow server was not started")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise MlflowServerError(
                    f"mlflow server exited with {self._process.returncode}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as answer:  # noqa: S310
                    if answer.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        self.stop()
        raise MlflowServerError(f"mlflow server did not answer within {timeout:.0f} s")

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's log (for error messages)."""
        if self._log is None or not self._log.exists():
            return ""
        return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """End the server's process group and remove its temporary store (an attached server
        is left to the process that started it)."""
        process, self._process = self._process, None
        if process is not None:
            end_process_group(process.pid, process)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> LocalMlflowServer:
        return self.start().wait_ready()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
