"""`make cluster` (cluster/run.py) started once for this module: nginx in front of two gunicorn app servers and the
stream's uvicorn, pgbouncer in session mode before the primary, reads from the standby. The tests go through the
front only, and the last one stops it all and finds nothing left running.

Needs PostgreSQL's server binaries and Debian's nginx and pgbouncer; as root (CI: a fresh Debian machine), the
fixture installs the latter with apt-get when they are missing, and skips the module without them otherwise.
"""

import http.client
import json
import os
import socket
import urllib.request
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
import pytest

from bench.tests.runs import run_module
from cluster.run import HOST, PACKAGES, cluster, install_packages
from config.tests.standby import postgres_bin

FLEET_TIMEOUT = 180  # seconds; the small fleet day takes about 20

pytestmark = pytest.mark.skipif(postgres_bin() is None, reason="needs PostgreSQL's initdb, pg_ctl and pg_basebackup")


class Running:
    """The cluster, and a way to stop it before the module ends (the last test does)."""

    def __init__(self):
        self.stack = ExitStack()
        self.topology = self.stack.enter_context(cluster(app_servers=2, workers=2))

    def stop(self) -> None:
        self.stack.close()


@pytest.fixture(scope="module")
def running():
    missing = [path for path in PACKAGES if not Path(path).exists()]
    if missing and os.geteuid() != 0:
        pytest.skip(f"needs Debian's {' and '.join(PACKAGES[path] for path in missing)} (apt-get, as root)")
    install_packages()
    started = Running()
    try:
        yield started
    finally:
        started.stop()


def call(topology, path: str, *, method: str = "GET", body=None, headers=None, opener=None):
    """(status, headers, JSON) of a request through the front, with the staff token."""
    request = urllib.request.Request(
        topology.front_url + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Token {topology.token}", "Content-Type": "application/json", **(headers or {})},
    )
    with (opener or urllib.request.build_opener()).open(request, timeout=30) as answer:
        return answer.status, answer.headers, json.loads(answer.read())


def post_event(topology, *, opener=None) -> dict:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    status, _, answer = call(
        topology, "/events", method="POST", body=[{"dpu_id": 283, "timestamp": now, "direction": 1}], opener=opener
    )
    assert status == 201 and answer["created"] == 1, answer
    return answer


def test_requests_through_the_front_reach_both_app_servers(running):
    topology = running.topology
    ids = [f"cluster-{uuid.uuid4().hex}" for _ in range(8)]
    for request_id in ids:
        status, headers, _ = call(topology, "/space/", headers={"X-Request-ID": request_id})
        assert status == 200 and headers["X-Request-ID"] == request_id

    logs = [topology.log("app-1"), topology.log("app-2")]
    served = [[request_id for request_id in ids if f"request_id={request_id}" in log] for log in logs]
    assert served[0] and served[1], served  # nginx's round robin: each server answered some
    assert sorted(served[0] + served[1]) == sorted(ids)  # and each request was answered by exactly one


def test_a_post_through_the_front_is_read_back_from_the_primary(running):
    topology = running.topology
    _, _, before = call(topology, "/space/1/count", headers={"Cache-Control": "no-cache"})
    post_event(topology)
    # Without cookies: Cache-Control: no-cache reads from the primary, whichever app server answers.
    for _ in range(4):
        _, _, after = call(topology, "/space/1/count", headers={"Cache-Control": "no-cache"})
        assert after["count"] == before["count"] + 1
    # With cookies: the POST's answer sets read_primary, and the reads that send it back see the write.
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    post_event(topology, opener=opener)
    for _ in range(4):
        _, _, after = call(topology, "/space/1/count", opener=opener)
        assert after["count"] == before["count"] + 2


def test_plain_reads_go_to_the_standby(running):
    topology = running.topology
    for _ in range(6):  # both app servers, and more than one worker of each
        call(topology, "/space/1/count")
    standby = urlsplit(topology.standby_url)
    connection = psycopg2.connect(host=standby.hostname, port=standby.port, user="postgres", dbname="postgres")
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = 'occupancy' AND backend_type = 'client backend'"
            )
            assert cursor.fetchone()[0] >= 1
    finally:
        connection.close()


def test_the_stream_through_the_front_is_not_buffered(running):
    topology = running.topology
    connection = http.client.HTTPConnection(HOST, urlsplit(topology.front_url).port, timeout=15)
    try:
        connection.request(
            "GET", "/stream", headers={"Authorization": f"Token {topology.token}", "Accept": "text/event-stream"}
        )
        answer = connection.getresponse()
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/event-stream")
        assert _read_until(answer, "event: snapshot")
        # A count change reaches the open stream at once: nginx passes it on without waiting for more.
        post_event(topology)
        assert _read_until(answer, "event: count")
    finally:
        connection.close()


def sessions() -> dict[int, int]:
    """Every process's session id, by pid (/proc/<pid>/stat)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # it ended meanwhile
        found[int(stat.parent.name)] = int(fields[3])  # zombies too: not yet gone
    return found


def _read_until(answer, line: str) -> bool:
    while True:
        got = answer.fp.readline()  # the socket's timeout (15 s) fails the test if nothing comes
        if not got:
            return False
        if got.decode().strip() == line:
            return True


def test_the_app_servers_connect_through_pgbouncer_in_session_mode(running):
    topology = running.topology
    call(topology, "/space/", headers={"Cache-Control": "no-cache"})
    admin = psycopg2.connect(host=HOST, port=topology.pgbouncer_port, user="postgres", dbname="pgbouncer")
    admin.autocommit = True  # the admin console takes no transactions
    try:
        with admin.cursor() as cursor:
            cursor.execute("SHOW POOLS")
            columns = [column.name for column in cursor.description]
            pools = {row[columns.index("database")]: dict(zip(columns, row, strict=True)) for row in cursor.fetchall()}
            cursor.execute("SHOW CLIENTS")
            columns = [column.name for column in cursor.description]
            clients = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    finally:
        admin.close()
    assert pools["occupancy"]["pool_mode"] == "session"
    # The app servers' workers and the stream's listener hold sessions of the pool.
    assert len([client for client in clients if client["database"] == "occupancy"]) >= 2
    assert pools["occupancy"]["sv_active"] + pools["occupancy"]["sv_idle"] >= 1


def test_a_small_fleet_day_through_the_front_ends_with_no_differences(running, tmp_path):
    topology = running.topology
    figures_path = tmp_path / "fleet.json"
    run = run_module(
        ["bench.fleet", "--preset", "small", "--url", topology.front_url, "--database-url", topology.primary_url]
        + ["--output", str(tmp_path / "BENCHMARKS.md"), "--json", str(figures_path)],
        work=tmp_path,
        timeout=FLEET_TIMEOUT,
    )
    assert run.returncode == 0, run.stderr[-5000:]
    figures = json.loads(figures_path.read_text())
    assert figures["problems"] == [] and figures["check"] == "no differences"
    assert figures["url"] == topology.front_url and figures["events"] > 500
    # Both app servers took part in the day.
    for name in ("app-1", "app-2"):
        assert topology.log(name).count("POST /events 20") > 10, name


def test_stopping_leaves_nothing_running(running):
    topology = running.topology
    pids = [process.process.pid for process in topology.processes.values()]
    ports = [urlsplit(topology.front_url).port, topology.pgbouncer_port, topology.stream_port, *topology.app_ports]
    ports += [urlsplit(topology.primary_url).port, urlsplit(topology.standby_url).port]
    running.stop()

    # Each server was started in a session of its own: no process is left in any of them (workers included).
    left = {pid: session for pid, session in sessions().items() if session in pids}
    assert not left, left
    for port in ports:
        with socket.socket() as probe:
            assert probe.connect_ex((HOST, port)) != 0, port
    assert not topology.directory.exists()
