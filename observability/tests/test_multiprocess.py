"""Under gunicorn with several workers, GET /metrics adds up every worker's metrics (prometheus_client's
multiprocess mode, config/gunicorn.py), whichever worker serves the scrape, and after a worker dies."""

import json
import os
import signal
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dpu.services import dpu_token_rotate
from occupancy.tests.factories import floorplan
from occupancy.tests.server import READY_TIMEOUT

METRICS_TOKEN = "scrape-5e1d0c9b8a7f6e5d"


@pytest.fixture
def server_env(monkeypatch):
    """The server's environment, set before gunicorn_server starts it: the scrape token, and JSON logs."""
    monkeypatch.setenv("METRICS_TOKEN", METRICS_TOKEN)
    monkeypatch.setenv("LOG_FORMAT", "json")


def scrape(server) -> dict[tuple[str, tuple], float]:
    conn = server.connection()
    conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    response = conn.getresponse()
    assert response.status == 200
    text = response.read().decode()
    conn.close()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def post(server, token: str, batch: list[dict]):
    conn = server.connection()
    conn.request(
        "POST", "/events", json.dumps(batch), {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    )
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.close()
    return response.status, body


def event(minute: int, direction: int = 1) -> dict:
    return {"dpu_id": 283, "timestamp": f"2018-03-03T09:{minute:02d}:00.000Z", "direction": direction}


def wait_for(condition, what: str):
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def post_in_two_workers(server, token: str, first: list[dict], second: list[dict]) -> tuple[int, int]:
    """POST two batches so that two different workers serve them: each request's headers and half its body are
    sent and its worker found (a sync worker holds one connection at a time) before either body is finished."""
    held = []
    for batch in (first, second):
        body = json.dumps(batch).encode()
        conn = server.connection()
        conn.putrequest("POST", "/events")
        for name, value in (
            ("Authorization", f"Token {token}"),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
        ):
            conn.putheader(name, value)
        conn.endheaders()
        conn.send(body[: len(body) // 2])
        port = conn.sock.getsockname()[1]
        worker = wait_for(lambda port=port: server.worker_serving(port), "a worker to take the connection")
        held.append((conn, body, worker))
    for conn, body, _ in held:
        conn.send(body[len(body) // 2 :])
        response = conn.getresponse()
        assert response.status == 201, response.read()
        response.read()
        conn.close()
    return held[0][2], held[1][2]


@pytest.mark.django_db(transaction=True)
def test_metrics_add_up_across_workers(server_env, gunicorn_server):
    plan = floorplan()
    token = dpu_token_rotate(dpu=plan.dpu_283)
    created = {"endpoint": "/events", "method": "POST", "status": "201"}
    key = tuple(sorted(created.items()))

    first, second = post_in_two_workers(gunicorn_server, token, [event(0), event(1)], [event(2), event(3, -1)])
    more = [post(gunicorn_server, token, [event(10 + n)]) for n in range(20)]
    again = post(gunicorn_server, token, [event(0), event(1), event(59)])  # two repeats, one new

    assert first != second  # two workers served the first two batches
    assert {status for status, _ in more} == {201}
    assert again == (201, {"received": 3, "created": 1, "duplicates": 2})
    # Whichever worker serves the scrape, it reports every worker's counts: 23 batches of 27 events, 2 repeats.
    for _ in range(gunicorn_server.workers):
        scraped = scrape(gunicorn_server)
        assert scraped["http_requests_total", key] == 23
        assert scraped["http_request_duration_seconds_count", key] == 23
        assert scraped["occupancy_events_total", (("outcome", "received"),)] == 27
        assert scraped["occupancy_events_total", (("outcome", "created"),)] == 25
        assert scraped["occupancy_events_total", (("outcome", "duplicate"),)] == 2
        assert scraped["occupancy_event_lateness_seconds_count", ()] == 25
        assert scraped["occupancy_dpus", (("status", "never_seen"),)] == 1  # 423; 283 has sent events

    # Each request's JSON log line names the worker that served it: the batches came through several.
    lines = [json.loads(line) for line in gunicorn_server.log().splitlines() if line.startswith("{")]
    posts = [line for line in lines if line.get("logger") == "observability.requests" and line["method"] == "POST"]
    assert len(posts) == 23
    assert {line["caller"] for line in posts} == {"dpu"} and {line["dpu"] for line in posts} == {283}
    assert {first, second} <= {line["process"] for line in posts}

    # A worker that dies takes nothing with it: its counts stay in the totals.
    os.kill(first, signal.SIGKILL)
    wait_for(
        lambda: first not in gunicorn_server.worker_pids() and len(gunicorn_server.worker_pids()) >= 3, "a new worker"
    )
    scraped = scrape(gunicorn_server)
    assert scraped["http_requests_total", key] == 23
    assert scraped["occupancy_events_total", (("outcome", "created"),)] == 25
