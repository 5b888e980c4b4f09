"""The server under test: gunicorn with sync workers on a free port of 127.0.0.1, settings `bench.settings` (the
service's URLs plus the baseline views), on the bench database. Standard library only."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.load import HOST

BASE_DIR = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
WORKER_TIMEOUT = 600  # seconds gunicorn lets one request run: the longest batch of the benchmarks is far below
APPLICATION_NAME = "occupancy-bench-server"  # tells its PostgreSQL connections apart in pg_stat_activity


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    workers: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with status {self.process.returncode}:\n{self.log()}")
            try:
                urllib.request.urlopen(f"http://{HOST}:{self.port}/space/", timeout=2)
                return
            except urllib.error.HTTPError:
                return  # 401: it serves
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer on port {self.port} within {READY_TIMEOUT:.0f} s:\n{self.log()}")

    def stop(self) -> None:
        """Stop the master and every worker: gracefully, then by force (the server has its own process group)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=STOP_TIMEOUT)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextmanager
def gunicorn(*, env: dict[str, str], workers: int, log_path: Path) -> Iterator[Server]:
    """Serve the service and the baselines with `workers` sync workers; stop everything on the way out.

    `env` must carry DATABASE_URL and DJANGO_SETTINGS_MODULE=bench.settings.
    """
    port = free_port()
    command = [
        *(sys.executable, "-m", "gunicorn", "config.wsgi:application"),
        *("--bind", f"{HOST}:{port}", "--workers", str(workers), "--worker-class", "sync"),
        *("--timeout", str(WORKER_TIMEOUT), "--graceful-timeout", "5", "--chdir", str(BASE_DIR)),
        *("--no-control-socket", "--error-logfile", "-", "--log-level", "warning"),
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env={**env, "ALLOWED_HOSTS": HOST, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process=process, port=port, workers=workers, log_path=log_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
