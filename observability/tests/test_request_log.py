"""One log line per request (method, path, status, duration, caller, DPU serial, request id), the request id
echoed in X-Request-ID, and LOG_FORMAT choosing plain text or JSON."""

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from dpu.services import dpu_token_rotate
from observability.logs import JsonFormatter
from occupancy.tests.factories import floorplan

pytestmark = pytest.mark.django_db

PROJECT = Path(__file__).resolve().parents[2]
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def request_lines(caplog) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "observability.requests"]


@pytest.fixture
def caplog(caplog):
    caplog.set_level(logging.INFO, logger="observability.requests")
    return caplog


def test_each_request_logs_one_line_with_its_fields(staff_client, caplog):
    plan = floorplan()

    response = staff_client.get(f"/space/{plan.a.pk}/count", {"ts": "2018-02-26"}, HTTP_X_REQUEST_ID="lb-4f2a.17")

    [line] = request_lines(caplog)
    assert response["X-Request-ID"] == "lb-4f2a.17"
    assert (line.method, line.path, line.endpoint, line.status) == (
        "GET",
        f"/space/{plan.a.pk}/count",
        "/space/{space_id}/count",
        200,
    )
    assert (line.caller, line.dpu, line.request_id) == ("staff", None, "lb-4f2a.17")
    assert isinstance(line.duration_ms, float) and line.duration_ms >= 0
    assert line.getMessage() == (
        f"GET /space/{plan.a.pk}/count 200 {line.duration_ms}ms caller=staff request_id=lb-4f2a.17"
    )


def test_a_dpu_is_logged_with_its_serial(caplog):
    plan = floorplan()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {dpu_token_rotate(dpu=plan.dpu_283)}")

    response = client.post(
        "/events", {"dpu_id": 283, "timestamp": "2018-03-03T09:00:00.000Z", "direction": 1}, format="json"
    )

    assert response.status_code == 201
    [line] = request_lines(caplog)
    assert (line.caller, line.dpu, line.status) == ("dpu", 283, 201)
    assert " caller=dpu dpu=283 " in line.getMessage()


@pytest.mark.parametrize(
    ("who", "caller"),
    [("staff_client", "staff"), ("reader_client", "user"), ("anonymous", "anonymous")],
)
def test_the_caller_kind_is_logged(request, caplog, who, caller):
    client = APIClient() if who == "anonymous" else request.getfixturevalue(who)

    client.get("/space")

    [line] = request_lines(caplog)
    assert line.caller == caller


def test_a_signed_in_person_on_a_page_is_logged_by_kind(django_user_model, client, caplog):
    client.force_login(django_user_model.objects.create_user(username="vera"))

    assert client.get("/dashboard/").status_code == 200

    [line] = request_lines(caplog)
    assert (line.caller, line.endpoint) == ("user", "/dashboard/")


def test_the_metrics_token_is_its_own_caller_kind(settings, caplog):
    settings.METRICS_TOKEN = "scrape-7b0c1f9d2e4a8c63"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer scrape-7b0c1f9d2e4a8c63")

    client.get("/metrics")

    [line] = request_lines(caplog)
    assert (line.caller, line.status) == ("metrics", 200)


def test_without_a_request_id_one_is_made_and_echoed(client, caplog):
    first, second = client.get("/health"), client.get("/health")

    assert GENERATED_ID.fullmatch(first["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]
    assert [line.request_id for line in request_lines(caplog)] == [first["X-Request-ID"], second["X-Request-ID"]]


@pytest.mark.parametrize("given", ["", "a" * 129, "two words", "id\u00e9", "x;y", "<script>"])
def test_a_request_id_that_is_not_short_and_plain_is_replaced(client, caplog, given):
    response = client.get("/health", HTTP_X_REQUEST_ID=given)

    assert GENERATED_ID.fullmatch(response["X-Request-ID"])
    assert request_lines(caplog)[0].request_id == response["X-Request-ID"]


def test_a_newline_in_the_path_does_not_break_the_line(client, caplog):
    client.get("/no/such%0Apath")

    [line] = request_lines(caplog)
    assert "\n" not in line.getMessage()
    assert line.path == "/no/such%0Apath"
    assert (line.endpoint, line.status) == ("unmatched", 404)


def test_an_error_is_logged_with_its_status(staff_client, caplog):
    staff_client.get("/space/999999/count")

    [line] = request_lines(caplog)
    assert (line.endpoint, line.status) == ("/space/{space_id}/count", 404)


def test_the_json_format_is_one_object_with_every_field(staff_client, caplog):
    staff_client.get("/space", HTTP_X_REQUEST_ID="req-1")
    [line] = request_lines(caplog)

    entry = json.loads(JsonFormatter().format(line))

    assert entry["level"] == "INFO"
    assert entry["logger"] == "observability.requests"
    assert entry["process"] == os.getpid()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    assert entry["message"].startswith("GET /space 200 ")
    assert {key: entry[key] for key in ("method", "path", "endpoint", "status", "caller", "dpu", "request_id")} == {
        "method": "GET",
        "path": "/space",
        "endpoint": "/space",
        "status": 200,
        "caller": "staff",
        "dpu": None,
        "request_id": "req-1",
    }


def test_the_json_format_keeps_a_traceback_in_one_line():
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info())

    text = JsonFormatter().format(record)

    assert "\n" not in text
    entry = json.loads(text)
    assert entry["message"] == "failed here"
    assert "ValueError: bad\nthing" in entry["exc_info"]


def _settings(**env: str) -> subprocess.CompletedProcess:
    code = (
        "import config.settings.local as s; "
        "print(s.LOGGING['handlers']['console']['formatter'], s.METRICS_TOKEN is not None)"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT,
        env={**os.environ, "DATABASE_URL": "", "LOG_FORMAT": "", "METRICS_TOKEN": "", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "printed"),
    [({}, "text False"), ({"LOG_FORMAT": "json"}, "json False"), ({"METRICS_TOKEN": "a" * 16}, "text True")],
)
def test_log_format_and_metrics_token_come_from_the_environment(env, printed):
    result = _settings(**env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == printed


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("LOG_FORMAT", "xml", "LOG_FORMAT must be text or json, not 'xml'."),
        ("METRICS_TOKEN", "short", "METRICS_TOKEN must be at least 16 printable ASCII characters"),
        ("METRICS_TOKEN", "sixteen chars and a space", "METRICS_TOKEN must be at least 16 printable ASCII characters"),
    ],
)
def test_a_bad_log_format_or_metrics_token_stops_with_a_message_naming_it(name, value, complaint):
    result = _settings(**{name: value})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert complaint in result.stderr


@pytest.mark.django_db(transaction=True)
def test_under_asgi_the_line_and_the_request_id_are_the_same(django_user_model, async_client, caplog):
    """uvicorn (`make run`, GET /stream) runs the middleware as a coroutine; a session user is read off the event
    loop's thread."""
    from asgiref.sync import async_to_sync

    async_client.force_login(django_user_model.objects.create_user(username="sam", is_staff=True))

    response = async_to_sync(async_client.get)("/no/such/page", headers={"X-Request-ID": "edge-9"})

    [line] = request_lines(caplog)
    assert response["X-Request-ID"] == "edge-9"
    assert (line.caller, line.status, line.endpoint, line.request_id) == ("staff", 404, "unmatched", "edge-9")
