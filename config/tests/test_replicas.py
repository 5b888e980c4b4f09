"""Reads from replicas (config.replicas) against a real streaming standby: a primary and a standby made on this
machine (config/tests/standby.py), a real gunicorn server on them with DATABASE_REPLICA_URLS set."""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from config.replicas import CHECK_EVERY, READ_PRIMARY_COOKIE
from config.tests.standby import postgres_bin, primary_and_standby, wait_replayed
from occupancy.tests.server import BASE_DIR, gunicorn

BIN = postgres_bin()
pytestmark = pytest.mark.skipif(BIN is None, reason="PostgreSQL's initdb, pg_ctl and pg_basebackup are not installed")

MAX_LAG = 1  # DATABASE_REPLICA_MAX_LAG of the server, in seconds
SERVER_APP, REPLICA_APP = "occupancy-test-server", "occupancy-test-replica"  # application_name of each connection
# What only the count lookup (occupancy.selectors.counts.COUNT_AT_SQL) sends.
COUNT_SQL_MARK = "end_pending_changed IS NULL OR b.end_pending_changed"


def call(server, path: str, *, token: str, method: str = "GET", body=None, headers=None):
    """(status, JSON body, response headers) of one request, with `headers` besides the token."""
    data = json.dumps(body).encode() if body is not None else None
    sent = {"Authorization": f"Token {token}", "Accept": "application/json", **(headers or {})}
    if data is not None:
        sent["Content-Type"] = "application/json"
    try:
        with urllib.request.urlopen(urllib.request.Request(server.url + path, data, sent, method=method)) as answer:
            return answer.status, json.loads(answer.read() or "null"), answer.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace"), exc.headers


@pytest.fixture(scope="module")
def pair():
    """A primary and its standby with the service's tables, and the token of Sol, a staff user."""
    with primary_and_standby(BIN) as (primary, standby):
        primary.query("CREATE DATABASE occupancy")
        env = {"DATABASE_URL": primary.url("occupancy"), "DJANGO_SETTINGS_MODULE": "config.settings.local"}
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "--no-input", "-v0"], cwd=BASE_DIR, env=env, check=True)
        token = subprocess.run(
            [*manage, "shell", "-c", "from django.contrib.auth.models import User; from rest_framework.authtoken."
             "models import Token; print(Token.objects.create(user=User.objects.create(username='sol', "
             "is_staff=True)).key)"],
            cwd=BASE_DIR, env=env, check=True, capture_output=True, text=True,
        ).stdout.split()[-1]  # fmt: skip
        yield primary, standby, token


@pytest.fixture(scope="module")
def server(pair, tmp_path_factory):
    """gunicorn (one worker) on the primary, reading from the standby; the lobby (a space) with DPU 512 into it."""
    primary, standby, token = pair
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DATABASE_REPLICA_URLS", standby.url("occupancy", application_name=REPLICA_APP))
        env.setenv("DATABASE_REPLICA_MAX_LAG", str(MAX_LAG))
        log_path = tmp_path_factory.mktemp("replicas") / "server.log"
        with gunicorn(database_url=primary.url("occupancy", application_name=SERVER_APP), log_path=log_path,
                      workers=1) as running:  # fmt: skip
            status, lobby, _ = call(running, "/space/", token=token, method="POST", body={"name": "Lobby"})
            assert status == 201, lobby
            status, door, _ = call(
                running, "/doorway/", token=token, method="POST", body={"name": "Door", "sides": [None, lobby["id"]]}
            )
            assert status == 201, door
            assert call(running, "/dpu/", token=token, method="POST", body={"serial": 512})[0] == 201
            assignment = {"doorway": door["id"], "enters": lobby["id"], "valid_from": "2018-01-01T00:00:00Z"}
            assert call(running, "/dpu/512/assignments", token=token, method="POST", body=assignment)[0] == 201
            running.lobby = lobby["id"]
            yield running


def enter(server, token: str, second: int, **kwargs):
    """Post one person entering the lobby at 2018-03-01T09:00:<second>Z."""
    event = {"dpu_id": 512, "timestamp": f"2018-03-01T09:00:{second:02d}Z", "direction": 1}
    return call(server, "/events", token=token, method="POST", body=[event], **kwargs)


def count(server, token: str, **kwargs) -> int:
    status, body, _ = call(server, f"/space/{server.lobby}/count", token=token, **kwargs)
    assert status == 200, body
    return body["count"]


def last_queries(cluster, application_name: str) -> list[str]:
    """The latest statement of each connection the server holds to `cluster`."""
    rows = cluster.query("SELECT query FROM pg_stat_activity WHERE application_name = %s", [application_name])
    return [query for (query,) in rows]


def test_reads_go_to_the_standby_and_writes_to_the_primary(pair, server):
    primary, standby, token = pair
    wait_replayed(primary, standby)
    time.sleep(CHECK_EVERY)  # the worker's last verdict on the standby (taken during the setup's writes) expires

    assert count(server, token) == 0

    # The count's statement ran on the standby, through the connection to it; not on the primary.
    assert any(COUNT_SQL_MARK in query for query in last_queries(standby, REPLICA_APP))
    assert not any(COUNT_SQL_MARK in query for query in last_queries(primary, SERVER_APP))
    # Counts over time and the space list (the ORM) too.
    status, body, _ = call(
        server, f"/counts?spaces={server.lobby}&start=2018-03-01&end=2018-03-02&interval=1h", token=token
    )
    assert status == 200, body
    # A prepared statement (config.sql.execute), prepared on the standby's session.
    assert any(query.startswith("EXECUTE occupancy_") for query in last_queries(standby, REPLICA_APP))
    status, body, _ = call(server, "/space/", token=token)
    assert status == 200 and [space["name"] for space in body] == ["Lobby"]
    assert any("spaces_space" in query for query in last_queries(standby, REPLICA_APP))

    # A write goes to the primary (the standby is read-only: had it gone there, it would have failed).
    status, body, headers = enter(server, token, 1)
    assert status == 201, body
    wait_replayed(primary, standby)
    assert standby.query("SELECT count(*) FROM dpu_dpuevent", database="occupancy") == [(1,)]


def test_a_client_reads_its_own_write_with_the_cookie_or_no_cache(pair, server):
    primary, standby, token = pair
    before = count(server, token)
    standby.query("SELECT pg_wal_replay_pause()")  # from now on the standby misses every write
    try:
        status, body, headers = enter(server, token, 2)
        assert status == 201, body
        cookie = headers["Set-Cookie"]
        assert cookie.startswith(f"{READ_PRIMARY_COOKIE}=1;") and f"Max-Age={MAX_LAG + 1}" in cookie

        # Right after the write, however current the worker last found the standby: the primary answers.
        assert count(server, token, headers={"Cookie": f"{READ_PRIMARY_COOKIE}=1"}) == before + 1
        assert count(server, token, headers={"Cache-Control": "no-cache"}) == before + 1
        assert standby_count(standby, server.lobby) == before  # which the standby could not have said
    finally:
        standby.query("SELECT pg_wal_replay_resume()")
    wait_replayed(primary, standby)


def standby_count(standby, space_id: int) -> int:
    rows = standby.query(
        'SELECT "count" FROM occupancy_spaceoccupancy WHERE space_id = %s ORDER BY "timestamp" DESC, kind DESC, '
        "dpu_id DESC LIMIT 1",
        [space_id],
        database="occupancy",
    )
    return rows[0][0] if rows else 0


def test_a_lagging_standby_is_skipped(pair, server):
    primary, standby, token = pair
    before = count(server, token)
    standby.query("SELECT pg_wal_replay_pause()")
    try:
        assert enter(server, token, 3)[0] == 201
        # Past the worker's last verdict and past the allowed lag (the standby's newest replayed transaction is
        # at least this old now).
        time.sleep(max(CHECK_EVERY, MAX_LAG) + 0.2)

        assert count(server, token) == before + 1  # without a cookie: only the primary knows it
        assert standby_count(standby, server.lobby) == before
    finally:
        standby.query("SELECT pg_wal_replay_resume()")
    wait_replayed(primary, standby)
    time.sleep(CHECK_EVERY)
    # Caught up, it is used again.
    assert count(server, token) == before + 1
    assert any(COUNT_SQL_MARK in query for query in last_queries(standby, REPLICA_APP))


def test_a_stopped_standby_falls_back_to_the_primary(pair, server):
    primary, standby, token = pair
    wait_replayed(primary, standby)
    time.sleep(CHECK_EVERY)
    before = count(server, token)  # from the standby: the worker holds a connection to it
    assert any(COUNT_SQL_MARK in query for query in last_queries(standby, REPLICA_APP))
    standby.stop()
    try:
        # The first read fails on the held connection (answered again from the primary), the next ones skip the
        # standby marked down; never an error.
        for second in range(4, 8):
            assert enter(server, token, second)[0] == 201
            assert count(server, token) == before + second - 3
            status, body, _ = call(server, "/space/", token=token)
            assert status == 200 and body[0]["count"] == before + second - 3
        status, body, _ = call(
            server, f"/counts?spaces={server.lobby}&start=2018-03-01&end=2018-03-02&interval=1d", token=token
        )
        assert status == 200 and body[0]["buckets"][0]["count"] == before + 4
        log = server.log_path.read_text()
        assert "Replica replica_0 failed, reading from the primary" in log
        assert "Traceback" not in log
    finally:
        standby.start()
