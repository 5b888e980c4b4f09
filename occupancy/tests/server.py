"""A real gunicorn server on the test database, for tests that need what the test client cannot give: several
worker processes writing at once, and a worker that dies in the middle of a request.

Standard library only, and no Django import: client processes started with multiprocessing's "spawn" import
this module to post their batches, before (and without) any Django setup.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

BASE_DIR = Path(__file__).resolve().parent.parent.parent
HOST = "127.0.0.1"  # the server binds here only, and every request of these tests goes here
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
REQUEST_TIMEOUT = 60.0  # above the longest request of the tests (a 10,000-event batch), below gunicorn's timeout
WORKER_TIMEOUT = 90
APPLICATION_NAME = "occupancy-test-server"


def database_url(settings_dict: Mapping, *, application_name: str = APPLICATION_NAME) -> str:
    """The DATABASE_URL (dj-database-url form) of the database `settings_dict` points at.

    Given `django.db.connection.settings_dict` during a test it names the test database: pytest-django has put
    the test database's name (test_<name> on PostgreSQL, the test file's path on SQLite) into NAME. On
    PostgreSQL the server's connections carry `application_name`, so pg_stat_activity tells them apart.
    """
    engine, name = settings_dict["ENGINE"], str(settings_dict["NAME"])
    if engine == "django.db.backends.sqlite3":
        if name == ":memory:" or name.startswith("file:") or "mode=memory" in name:
            raise ValueError(f"A server in another process cannot share the in-memory SQLite database {name!r}.")
        return "sqlite:///" + str(Path(name).resolve())  # an absolute path: sqlite:////tmp/db.sqlite3.test
    if engine == "django.db.backends.postgresql":
        user, password = settings_dict.get("USER") or "", settings_dict.get("PASSWORD") or ""
        auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
        host, port = settings_dict.get("HOST") or "", settings_dict.get("PORT") or ""
        netloc = (auth + "@" if auth else "") + quote(host, safe="") + (f":{port}" if port else "")
        options = {k: v for k, v in (settings_dict.get("OPTIONS") or {}).items() if isinstance(v, str | int)}
        options["application_name"] = application_name
        return f"postgres://{netloc}/{quote(name, safe='')}?{urlencode(options)}"
    raise ValueError(f"No DATABASE_URL form for the database engine {engine!r}.")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (gunicorn binding port 0 would not tell us which)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def request(
    url: str, *, method: str = "GET", token: str | None = None, body=None, timeout: float = REQUEST_TIMEOUT
) -> tuple[int, object]:
    """(status, decoded JSON body, or the text when it is not JSON) of one HTTP request; 4xx/5xx do not raise."""
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    if token is not None:
        headers["Authorization"] = f"Token {token}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers, method=method), timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def post_batches(base_url: str, token: str, batches: list[list[dict]], start, results) -> None:
    """A client process: wait at the `start` barrier with the other clients, POST each batch to /events in turn,
    and put [(batch size, status, body)] on `results`. A POST that got no answer (refused, reset, timed out) is
    reported as (size, None, the error), and one that never ran as (None, None, the error): the test judges."""
    outcome = []
    try:
        start.wait(timeout=READY_TIMEOUT)
        for batch in batches:
            try:
                status, body = request(f"{base_url}/events", method="POST", token=token, body=batch)
            except OSError as exc:
                status, body = None, repr(exc)
            outcome.append((len(batch), status, body))
    except Exception as exc:
        outcome.append((None, None, repr(exc)))
    results.put(outcome)


def _parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone, or not ours to read
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after its last ")".
    return int(stat.rpartition(")")[2].split()[1])


def children(pid: int) -> list[int]:
    """The live child processes of `pid`, from /proc (psutil is not installed)."""
    return sorted(
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _parent_pid(int(entry.name)) == pid
    )


def _tcp_address(text: str) -> tuple[str, int]:
    # /proc/net/tcp writes an IPv4 address as 8 hex digits in host (little-endian) byte order, the port as 4.
    address, port = text.split(":")
    return socket.inet_ntoa(int(address, 16).to_bytes(4, sys.byteorder)), int(port, 16)


@dataclass
class Server:
    """A running gunicorn master on 127.0.0.1:`port`, its workers, and the log both write to."""

    process: subprocess.Popen
    port: int
    log_path: Path
    workers: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def request(self, path: str, **kwargs) -> tuple[int, object]:
        return request(self.url + path, **kwargs)

    def connection(self, timeout: float = REQUEST_TIMEOUT) -> http.client.HTTPConnection:
        """A connected HTTP connection: its socket's local port tells which worker serves it (worker_serving)."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        conn.connect()
        return conn

    def worker_pids(self) -> list[int]:
        return children(self.process.pid)

    def worker_serving(self, client_port: int) -> int | None:
        """The worker holding the server end of the client connection from 127.0.0.1:`client_port`, if any."""
        inodes = set()
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if _tcp_address(fields[1]) == (HOST, self.port) and _tcp_address(fields[2]) == (HOST, client_port):
                inodes.add(f"socket:[{fields[9]}]")
        for pid in self.worker_pids():
            try:
                descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
            except OSError:
                continue
            for descriptor in descriptors:
                try:
                    if os.readlink(descriptor) in inodes:
                        return pid
                except OSError:
                    continue
        return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> None:
        """Return once the server answers HTTP and every worker has been forked; fail with the log otherwise."""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with status {self.process.returncode}:\n{self.log()}")
            try:
                self.request("/space/", timeout=2)  # unauthenticated: any answer (401) means it serves
            except OSError:
                time.sleep(0.05)
                continue
            if len(self.worker_pids()) >= self.workers:
                return
            time.sleep(0.05)
        raise RuntimeError(f"gunicorn did not answer on {self.url} within {READY_TIMEOUT:.0f} s:\n{self.log()}")

    def stop(self) -> None:
        """Stop the master and every worker: gracefully, then by force. The server runs in its own process
        group, so a worker the master left behind (or a respawned one) is killed with it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:  # the group is empty: everything exited
            pass
        self.process.wait(timeout=STOP_TIMEOUT)


@contextmanager
def gunicorn(*, database_url: str, log_path: Path, workers: int = 3) -> Iterator[Server]:
    """Run `config.wsgi` under gunicorn with `workers` sync workers on a free port of 127.0.0.1, on the database
    `database_url` names, with the default settings module and gunicorn settings (config/gunicorn.py: the workers'
    metrics added up, in a new directory beside `log_path`); stop it (and every worker) on the way out."""
    port = free_port()
    command = [
        *(sys.executable, "-m", "gunicorn", "config.wsgi:application"),
        *("--config", str(BASE_DIR / "config" / "gunicorn.py")),
        *("--bind", f"{HOST}:{port}", "--workers", str(workers), "--worker-class", "sync"),
        *("--timeout", str(WORKER_TIMEOUT), "--graceful-timeout", "5", "--chdir", str(BASE_DIR)),
        # The default control socket is one path per user: servers of parallel test runs would share it.
        *("--no-control-socket", "--error-logfile", "-", "--log-level", "info"),
    ]
    metrics = {"PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="metrics-", dir=log_path.parent)}
    with _running(command, port, database_url, log_path, workers=workers, env=metrics) as server:
        yield server


@contextmanager
def uvicorn(*, database_url: str, log_path: Path) -> Iterator[Server]:
    """Run `config.asgi` under uvicorn (one process: what `make run` serves, and GET /stream under `make serve`)
    on a free port of 127.0.0.1, on the database `database_url` names; stop it on the way out."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", HOST, "--port", str(port)]
    command += ["--timeout-graceful-shutdown", "2"]  # open streams never end by themselves
    with _running(command, port, database_url, log_path, workers=0) as server:
        yield server


@contextmanager
def _running(
    command: list[str], port: int, database_url: str, log_path: Path, *, workers: int, env: dict | None = None
) -> Iterator[Server]:
    """Start `command` serving on `port` with the default settings module on `database_url`, in a process group of
    its own (so that stop() reaches every worker); yield it once it answers; stop it on the way out."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": database_url,
        "ALLOWED_HOSTS": HOST,
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process=process, port=port, log_path=log_path, workers=workers)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def wait_until_disconnected(cursor, *, timeout: float = 15.0) -> None:
    """Wait (on PostgreSQL, through a DB-API `cursor`) until no connection of the server is left on the current
    database: a stopped or killed worker's backend lives on until it notices, and the flush after a test or the
    DROP DATABASE at the end of the run must not meet it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            [APPLICATION_NAME],
        )
        if cursor.fetchone()[0] == 0:
            return
        time.sleep(0.05)
