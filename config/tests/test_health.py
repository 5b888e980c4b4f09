"""GET /health: 200 after one `SELECT 1`, 503 within seconds when the database cannot be reached, no token needed.

An unreachable database is a real one: the health check's connection is pointed at a PostgreSQL port nothing
listens on, a port that takes connections and never answers, or an SQLite file in a folder that does not exist,
and the driver fails as it would in production, with every other setting (connect_timeout among them) as served.
"""

import copy
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.db import connection, connections
from rest_framework.test import APIClient, APIRequestFactory

from config.health import UNREACHABLE, HealthApi
from config.settings.base import _database

pytestmark = pytest.mark.django_db

FAILSAFE_SECONDS = 10  # how long silent_port() stays silent before it resets its connections


def ok_body() -> dict:
    return {"status": "ok", "database": "ok", "version": settings.SERVICE_VERSION}


def unreachable_body() -> dict:
    return {"status": "error", "database": "unreachable", "version": settings.SERVICE_VERSION, "detail": UNREACHABLE}


@pytest.fixture
def point_health_at(monkeypatch, tmp_path) -> Iterator[Callable[..., None]]:
    """Points the connection the health check uses at another database: PostgreSQL on 127.0.0.1 port 1 (nothing
    listens there) or SQLite in a folder that does not exist, unless told which settings to change. Everything
    else, OPTIONS included, is the test database's; the test's own connection is left alone."""
    opened = []

    def point(**changes) -> None:
        default = connections["default"]
        if not changes:
            if default.vendor == "postgresql":
                changes = {"HOST": "127.0.0.1", "PORT": 1}
            else:
                changes = {"NAME": str(tmp_path / "missing" / "db.sqlite3")}
        wrapper = type(default)({**copy.deepcopy(default.settings_dict), **changes}, alias=default.alias)
        opened.append(wrapper)
        monkeypatch.setattr("config.health.connection", wrapper)

    yield point
    for wrapper in opened:
        wrapper.close()


@contextmanager
def silent_port() -> Iterator[int]:
    """A port on 127.0.0.1 that takes TCP connections and never says a word: a PostgreSQL server that has stopped
    answering, which libpq waits for just as for a host that drops packets. After FAILSAFE_SECONDS the port goes
    away and resets what waits on it, so that a client without a timeout fails the test instead of hanging it."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    failsafe = threading.Timer(FAILSAFE_SECONDS, listener.close)
    failsafe.start()
    try:
        yield listener.getsockname()[1]
    finally:
        failsafe.cancel()
        listener.close()


@pytest.mark.parametrize("path", ["/health", "/health/"])
def test_health_is_ok_after_one_select_1(client, django_assert_num_queries, path):
    with django_assert_num_queries(1) as queries:
        response = client.get(path)

    assert response.status_code == 200
    assert response.json() == ok_body()
    assert queries.captured_queries[0]["sql"] == "SELECT 1"


def test_health_reports_the_version_setting(client, settings):
    settings.SERVICE_VERSION = "2.7.1"

    response = client.get("/health")

    assert response.json()["version"] == "2.7.1"


def test_health_and_the_openapi_schema_report_one_version():
    assert settings.SPECTACULAR_SETTINGS["VERSION"] == settings.SERVICE_VERSION


@pytest.mark.parametrize("authorization", [None, "Token bogus", "Token dpu_bogus", "Basic c2FtOndyb25n"])
def test_health_needs_no_token_and_ignores_a_bad_one(authorization):
    client = APIClient()
    if authorization:
        client.credentials(HTTP_AUTHORIZATION=authorization)

    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == ok_body()


def test_health_is_never_cached(client):
    assert "no-store" in client.get("/health")["Cache-Control"]


def test_head_answers_like_get_without_a_body(client):
    response = client.head("/health")

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    # The test client drops a HEAD response's body itself, as gunicorn does (with a warning); the view sends none.
    view_response = HealthApi.as_view()(APIRequestFactory().head("/health"))
    assert view_response.status_code == 200
    assert view_response.render().content == b""


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_health_only_reads(client, method):
    response = getattr(client, method)("/health", data={}, content_type="application/json")

    assert response.status_code == 405
    assert response.json() == {"detail": f'Method "{method.upper()}" not allowed.'}


def test_unreachable_database_is_503_with_a_sentence_and_the_reason_in_the_log(client, point_health_at, caplog):
    point_health_at()

    started = time.monotonic()
    response = client.get("/health")
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.json() == unreachable_body()  # the driver's message, naming hosts, stays in the log
    assert "no-store" in response["Cache-Control"]
    reason = "Connection refused" if connection.vendor == "postgresql" else "unable to open database file"
    assert reason in caplog.text
    assert elapsed < 2


def test_postgresql_that_never_answers_is_503_within_the_connect_timeout(client, point_health_at):
    if connection.vendor != "postgresql":
        pytest.skip("connect_timeout is libpq's; SQLite opens a file")
    timeout = connection.settings_dict["OPTIONS"]["connect_timeout"]
    assert timeout == 2

    with silent_port() as port:
        point_health_at(HOST="127.0.0.1", PORT=port)
        started = time.monotonic()
        response = client.get("/health")
        elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.json() == unreachable_body()
    assert timeout - 0.5 < elapsed < timeout + 1.5  # the timeout ended it, not the failsafe at FAILSAFE_SECONDS


@pytest.mark.django_db(transaction=True)
def test_health_on_sqlite_does_not_wait_behind_a_writer(client):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's write lock")
    writer = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")  # as a long import holds it; readers of tables wait up to 30 s
    try:
        started = time.monotonic()
        response = client.get("/health")
        elapsed = time.monotonic() - started
    finally:
        writer.execute("ROLLBACK")
        writer.close()

    assert response.status_code == 200
    assert elapsed < 1


@pytest.mark.parametrize(
    ("url", "timeout"),
    [
        ("postgres://counts@db.example.com:5432/occupancy", 2),
        ("postgres://counts@db.example.com:5432/occupancy?connect_timeout=10&sslmode=require", 10),
    ],
)
def test_postgresql_connections_give_up_after_2_seconds_unless_the_url_says_otherwise(monkeypatch, url, timeout):
    monkeypatch.setenv("DATABASE_URL", url)

    assert _database()["OPTIONS"]["connect_timeout"] == timeout
