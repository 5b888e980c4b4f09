"""A throwaway PostgreSQL primary and a streaming standby of it, for config/tests/test_replicas.py.

Both live in one temporary directory, listen on free ports of 127.0.0.1 only, and are stopped and removed on the
way out: the machine's own clusters are neither used nor changed (their pg_hba.conf may not allow replication).
The primary is made with initdb (whose pg_hba.conf trusts local replication connections), the standby with
`pg_basebackup -R -X stream` from it. PostgreSQL refuses to run as root: as root, its commands run as the user
`postgres`.
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from occupancy.tests.server import HOST, free_port

START_TIMEOUT = 30


def postgres_bin() -> Path | None:
    """The directory of initdb, pg_ctl and pg_basebackup (pg_config's, else the newest Debian one), or None."""
    candidates = []
    if pg_config := shutil.which("pg_config"):
        bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        candidates.append(bindir)
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda path: int(path.split("/")[-2]))[::-1]
    for candidate in candidates:
        if candidate and all((Path(candidate) / tool).exists() for tool in ("initdb", "pg_ctl", "pg_basebackup")):
            return Path(candidate)
    return None


def _run(*command: str) -> None:
    """Run a PostgreSQL tool, as the user postgres when we are root; its output in the error when it fails."""
    if os.geteuid() == 0:
        command = ("runuser", "-u", "postgres", "--", *command)
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


@dataclass
class Cluster:
    """One PostgreSQL server: its data directory and port, user postgres without a password."""

    bin: Path
    data: Path
    port: int

    def url(self, database: str, **options: str) -> str:
        query = "&".join(f"{key}={value}" for key, value in options.items())
        return f"postgres://postgres@{HOST}:{self.port}/{database}" + (f"?{query}" if query else "")

    def connect(self, database: str = "postgres"):
        connection = psycopg2.connect(host=HOST, port=self.port, user="postgres", dbname=database)
        connection.autocommit = True
        return connection

    def query(self, sql: str, params=(), *, database: str = "postgres") -> list[tuple]:
        connection = self.connect(database)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()

    def configure(self, **settings: str | int) -> None:
        # postgresql.auto.conf is read last: what it says wins over postgresql.conf (which a standby copies).
        with (self.data / "postgresql.auto.conf").open("a") as conf:
            for key, value in settings.items():
                conf.write(f"{key} = {value!r}\n" if isinstance(value, str) else f"{key} = {value}\n")

    def start(self) -> None:
        _run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.data / "server.log"), "-w", "-t",
             str(START_TIMEOUT), "start")  # fmt: skip

    def stop(self) -> None:
        # Immediate: the directory is thrown away, nothing needs a clean shutdown.
        _run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def running(self) -> bool:
        command = [str(self.bin / "pg_ctl"), "-D", str(self.data), "status"]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, check=False).returncode == 0


def wait_replayed(primary: Cluster, standby: Cluster, timeout: float = 10.0) -> None:
    """Until `standby` has replayed everything `primary` has flushed now."""
    (lsn,) = primary.query("SELECT pg_current_wal_flush_lsn()::text")[0]
    deadline = time.monotonic() + timeout
    while not standby.query("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [lsn])[0][0]:
        if time.monotonic() > deadline:
            raise TimeoutError(f"The standby did not replay up to {lsn} in {timeout} s.")
        time.sleep(0.02)


@contextmanager
def primary_and_standby(bin: Path) -> Iterator[tuple[Cluster, Cluster]]:
    """A running primary and a hot standby streaming from it; both stopped, and their directory removed, after."""
    base = Path(tempfile.mkdtemp(prefix="occupancy-replicas-"))
    with ExitStack() as cleanup:
        cleanup.callback(shutil.rmtree, base, ignore_errors=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(base, user.pw_uid, user.pw_gid)
        primary = Cluster(bin=bin, data=base / "primary", port=free_port())
        _run(str(bin / "initdb"), "-D", str(primary.data), "-U", "postgres", "--auth=trust", "--no-sync",
             "-E", "UTF8", "--locale=C")  # fmt: skip
        # fsync off: nothing here must survive a crash. The standby reports its replay every second (not 10), so
        # that the primary's view of it is fresh; its socket lives in our directory, not /var/run/postgresql.
        primary.configure(
            port=primary.port,
            listen_addresses=HOST,
            unix_socket_directories=str(base),
            fsync="off",
            wal_receiver_status_interval="1s",
        )
        primary.start()
        cleanup.callback(lambda: primary.running() and primary.stop())
        standby = Cluster(bin=bin, data=base / "standby", port=free_port())
        _run(str(bin / "pg_basebackup"), "-h", HOST, "-p", str(primary.port), "-U", "postgres", "-D",
             str(standby.data), "-R", "-X", "stream", "-c", "fast", "--no-sync")  # fmt: skip
        standby.configure(port=standby.port)
        standby.start()
        cleanup.callback(lambda: standby.running() and standby.stop())
        yield primary, standby
