"""`python -m cluster` (`make cluster`): several app servers and one database, from stock parts, on this machine.

The topology (README, "Several app servers"):

    nginx (FRONT) ─┬─ /stream ─────────── uvicorn ──────────────┐
                   ├─ / ── gunicorn app 1 ─┐                     │
                   └─ / ── gunicorn app 2 ─┴─ pgbouncer (session) ┴─ PostgreSQL primary
                          (GET reads) ───────────────────────────────  PostgreSQL standby (streaming)

Everything lives in one temporary directory and listens on free ports of 127.0.0.1; Ctrl-C or SIGTERM stops it
all and removes the directory. The primary and its standby are config/tests/standby.py's. nginx and pgbouncer are
Debian's, installed with apt-get when missing (as root). PostgreSQL and pgbouncer refuse to run as root: as root,
they run as the user `postgres`, and nginx's workers as `nobody`.
"""

import argparse
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from config.tests.standby import Cluster, postgres_bin, primary_and_standby
from occupancy.tests.server import HOST, free_port

BASE_DIR = Path(__file__).resolve().parent.parent
NGINX = "/usr/sbin/nginx"
PGBOUNCER = "/usr/sbin/pgbouncer"
PACKAGES = {NGINX: "nginx", PGBOUNCER: "pgbouncer"}
DATABASE = "occupancy"
STAFF_USER = "cluster"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


def install_packages() -> None:
    """Debian's nginx and pgbouncer, with apt-get when either is missing; their services are not started."""
    missing = sorted({package for path, package in PACKAGES.items() if not Path(path).exists()})
    if not missing:
        return
    if os.geteuid() != 0:
        raise SystemExit(f"Needs Debian's {' and '.join(missing)}: sudo apt-get install -y {' '.join(missing)}")
    print(f"== installing {' '.join(missing)} (apt-get)", file=sys.stderr, flush=True)
    # Without a policy-rc.d the packages would start their own services (nginx on port 80): forbid that meanwhile.
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = not policy.exists()
    if made_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True, env=env)
    finally:
        if made_policy:
            policy.unlink()


@dataclass
class Process:
    """A server started in a session of its own, its output in `log`."""

    name: str
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        """SIGTERM to its process group (the server and its workers), SIGKILL to what is left after STOP_TIMEOUT."""
        deadline = time.monotonic() + STOP_TIMEOUT
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            while time.monotonic() < deadline:
                self.process.poll()  # reaps the server itself; its workers are its own to reap
                os.killpg(self.process.pid, 0)  # ProcessLookupError once the group is empty
                time.sleep(0.05)
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=STOP_TIMEOUT)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@dataclass
class Topology:
    """What is running: the front's URL and what a client or a test needs to know about the rest."""

    directory: Path
    front_url: str
    token: str
    primary_url: str  # the primary itself (management commands, `make fleet --database-url`)
    pooled_url: str  # through pgbouncer, as the app servers connect
    standby_url: str
    pgbouncer_port: int
    app_ports: list[int]
    stream_port: int
    processes: dict[str, Process] = field(default_factory=dict)

    def log(self, name: str) -> str:
        return self.processes[name].log.read_text(errors="replace")


def _owned_by_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(path, user.pw_uid, user.pw_gid)


def _start(stack: ExitStack, topology: Topology, name: str, command: list[str], env: dict[str, str]) -> Process:
    log = topology.directory / f"{name}.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends it and its workers, nothing else
        )
    process = Process(name=name, process=popen, log=log)
    stack.callback(process.stop)
    topology.processes[name] = process
    return process


def _wait_ready(process: Process, url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if process.process.poll() is not None:
            raise RuntimeError(f"{process.name} exited ({process.process.returncode}):\n{process.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{process.name} did not answer {url} in {READY_TIMEOUT} s:\n{process.tail()}")
        time.sleep(0.2)


def _wait_port(process: Process, port: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if process.process.poll() is not None:
            raise RuntimeError(f"{process.name} exited ({process.process.returncode}):\n{process.tail()}")
        with socket.socket() as probe:
            if probe.connect_ex((HOST, port)) == 0:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{process.name} did not listen on {port} in {READY_TIMEOUT} s:\n{process.tail()}")
        time.sleep(0.1)


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _pgbouncer_config(directory: Path, *, port: int, primary: Cluster, pool_size: int) -> Path:
    # Session pooling: the ingest and counts-over-time statements are prepared once per database session
    # (config/sql.py), and the stream's listener holds LISTEN on its session; transaction pooling would hand a
    # session's next transaction to another server connection, where neither exists.
    (directory / "userlist.txt").write_text('"postgres" ""\n')
    config = directory / "pgbouncer.ini"
    config.write_text(
        f"""[databases]
{DATABASE} = host={HOST} port={primary.port} dbname={DATABASE} user=postgres

[pgbouncer]
listen_addr = {HOST}
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory / "userlist.txt"}
admin_users = postgres
pool_mode = session
default_pool_size = {pool_size}
max_client_conn = {pool_size * 4}
server_reset_query = DISCARD ALL
logfile = {directory / "pgbouncer-own.log"}
pidfile = {directory / "pgbouncer.pid"}
"""
    )
    for path in directory.iterdir():
        _owned_by_postgres(path)
    return config


def _nginx_config(directory: Path, *, port: int, app_ports: list[int], stream_port: int) -> Path:
    upstream = "\n".join(f"        server {HOST}:{app_port};" for app_port in app_ports)
    user = "user nobody nogroup;" if os.geteuid() == 0 else ""
    config = directory / "nginx.conf"
    config.write_text(
        f"""{user}
worker_processes 1;
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {directory}/client_body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    # Which app server answered each request, and the request id both sides log.
    log_format front '$remote_addr "$request" $status $upstream_addr request_id=$req_id';
    access_log {directory}/nginx-access.log front;
    map $http_x_request_id $req_id {{
        default $http_x_request_id;
        "" $request_id;
    }}
    upstream app {{
{upstream}
    }}
    server {{
        listen {HOST}:{port};
        client_max_body_size 20m;
        location /stream {{
            proxy_pass http://{HOST}:{stream_port};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Request-ID $req_id;
            proxy_buffering off;
            proxy_read_timeout 1h;
        }}
        location / {{
            proxy_pass http://app;
            proxy_set_header Host $http_host;
            proxy_set_header X-Request-ID $req_id;
        }}
    }}
}}
"""
    )
    if os.geteuid() == 0:
        user = pwd.getpwnam("nobody")
        os.chown(directory, user.pw_uid, user.pw_gid)
    return config


@contextmanager
def cluster(*, app_servers: int = 2, workers: int = 2) -> Iterator[Topology]:
    """The whole topology, running and ready; everything stopped, and its directory removed, on the way out."""
    bin = postgres_bin()
    if bin is None:
        raise SystemExit(
            "Needs PostgreSQL's server binaries (initdb, pg_ctl, pg_basebackup): apt-get install postgresql"
        )
    with ExitStack() as stack:
        directory = Path(tempfile.mkdtemp(prefix="occupancy-cluster-"))
        stack.callback(shutil.rmtree, directory, ignore_errors=True)
        directory.chmod(0o755)  # pgbouncer (postgres) and nginx's workers (nobody) look into their subdirectories
        primary, standby = stack.enter_context(primary_and_standby(bin))
        primary.query(f"CREATE DATABASE {DATABASE}")
        front, bouncer, stream = free_port(), free_port(), free_port()
        app_ports = [free_port() for _ in range(app_servers)]
        topology = Topology(
            directory=directory,
            front_url=f"http://{HOST}:{front}",
            token="",
            primary_url=primary.url(DATABASE),
            pooled_url=f"postgres://postgres@{HOST}:{bouncer}/{DATABASE}",
            standby_url=standby.url(DATABASE),
            pgbouncer_port=bouncer,
            app_ports=app_ports,
            stream_port=stream,
        )
        base_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "PYTHONUNBUFFERED": "1",
            "ALLOWED_HOSTS": f"{HOST},localhost",
        }
        base_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        base_env.pop("DATABASE_REPLICA_URLS", None)

        # Schema, the sample building and a staff token, on the primary itself.
        on_primary = {**base_env, "DATABASE_URL": topology.primary_url}
        manage(on_primary, "migrate", "--no-input", "-v", "0")
        manage(on_primary, "init_data")
        manage(on_primary, "createsuperuser", "--no-input", "--username", STAFF_USER, "--email", "cluster@localhost")
        topology.token = manage(on_primary, "drf_create_token", STAFF_USER).split()[2]

        # Every app server's worker holds one session (CONN_MAX_AGE), the stream's uvicorn one per request thread
        # plus its listener: with session pooling the pool must hold them all at once.
        pool_size = app_servers * workers + 10
        bouncer_dir = directory / "pgbouncer"
        bouncer_dir.mkdir()
        _owned_by_postgres(bouncer_dir)
        config = _pgbouncer_config(bouncer_dir, port=bouncer, primary=primary, pool_size=pool_size)
        # As root, pgbouncer drops to postgres itself (no runuser in between, which could exit before it).
        command = [PGBOUNCER, *(["--user", "postgres"] if os.geteuid() == 0 else []), str(config)]
        _wait_port(_start(stack, topology, "pgbouncer", command, base_env), bouncer)

        app_env = {**base_env, "DATABASE_URL": topology.pooled_url, "DATABASE_REPLICA_URLS": topology.standby_url}
        metrics_dirs = []
        for number, port in enumerate(app_ports, start=1):
            # Each app server adds up its own workers' metrics: a directory of its own (config/gunicorn.py).
            metrics = directory / f"metrics-{number}"
            metrics.mkdir()
            metrics_dirs.append(metrics)
            command = [sys.executable, "-m", "gunicorn", "config.wsgi", "--config", "config/gunicorn.py"]
            command += ["--bind", f"{HOST}:{port}", "--workers", str(workers), "--graceful-timeout", "5"]
            env = {**app_env, "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
            _start(stack, topology, f"app-{number}", command, env)
        # The stream's clients gauge is added up with app server 1's metrics, as `make serve` shares its directory.
        command = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", HOST, "--port", str(stream)]
        command += ["--no-access-log", "--timeout-graceful-shutdown", "5"]
        _start(stack, topology, "stream", command, {**app_env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dirs[0])})

        nginx_dir = directory / "nginx"
        nginx_dir.mkdir()
        config = _nginx_config(nginx_dir, port=front, app_ports=app_ports, stream_port=stream)
        nginx = _start(stack, topology, "nginx", [NGINX, "-c", str(config), "-p", str(nginx_dir)], base_env)

        for number, port in enumerate(app_ports, start=1):
            _wait_ready(topology.processes[f"app-{number}"], f"http://{HOST}:{port}/health")
        _wait_port(topology.processes["stream"], stream)
        _wait_ready(nginx, f"{topology.front_url}/health")
        yield topology


def _interrupt(signum, frame) -> None:
    # Once: a second Ctrl-C must not cut the stopping short and leave servers behind.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--app-servers", type=int, default=2, help="gunicorn app servers behind nginx (2)")
    parser.add_argument("--workers", type=int, default=2, help="sync workers of each app server (2)")
    args = parser.parse_args(argv)
    if args.app_servers < 1 or args.workers < 1:
        parser.error("--app-servers and --workers must be at least 1.")
    install_packages()
    # SIGTERM unwinds like Ctrl-C: everything started is stopped on the way out. SIGINT too when started in the
    # background, where the shell has it ignored.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        with cluster(app_servers=args.app_servers, workers=args.workers) as topology:
            ports = ", ".join(map(str, topology.app_ports))
            print(
                f"""
Front (nginx): {topology.front_url}   (/stream to uvicorn on {topology.stream_port}; the rest to
               {args.app_servers} gunicorn servers on {ports}, {args.workers} workers each)
Staff token:   {topology.token}
Primary:       {topology.primary_url}
pgbouncer:     {topology.pooled_url}   (session pooling)
               admin console: psql -h {HOST} -p {topology.pgbouncer_port} -U postgres pgbouncer
Standby:       {topology.standby_url}
Logs:          {topology.directory}/*.log

  curl -H "Authorization: Token {topology.token}" {topology.front_url}/space/
  make fleet FLEET_ARGS="--preset small --url {topology.front_url} --database-url {topology.primary_url}"

Ctrl-C (or SIGTERM to process {os.getpid()}) stops everything and removes {topology.directory}.""",
                flush=True,
            )
            while True:
                for process in topology.processes.values():
                    if process.process.poll() is not None:
                        print(f"{process.name} exited:\n{process.tail()}", file=sys.stderr)
                        return 1
                time.sleep(1)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    return 0
