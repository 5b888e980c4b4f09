"""GET /stream against a real ASGI server (uvicorn, as `make run` serves it) on the test database."""

import threading
import time

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token

from dpu.services import dpu_token_rotate
from occupancy.tests.factories import floorplan
from occupancy.tests.server import database_url, uvicorn, wait_until_disconnected
from stream.hub import OVERFLOW, Client
from stream.tests.sse import Stream

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def asgi_server(transactional_db, tmp_path, monkeypatch):
    monkeypatch.setenv("STREAM_HEARTBEAT", "1")  # the keep-alive test waits for one
    with uvicorn(database_url=database_url(connection.settings_dict), log_path=tmp_path / "uvicorn.log") as server:
        yield server
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            wait_until_disconnected(cursor)


@pytest.fixture
def token(django_user_model) -> str:
    """Rita's token: a signed-in user who is not staff may read counts, so she may watch them."""
    return Token.objects.create(user=django_user_model.objects.create_user(username="rita")).key


def now_text(offset: float = 0) -> str:
    instant = time.time() + offset
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(instant)) + f".{int(instant * 1000) % 1000:03d}Z"


def post(server, token, *items):
    status, body = server.request("/events", method="POST", token=token, body=list(items))
    return status, body


def test_a_client_gets_a_snapshot_of_each_space_then_each_change_in_order(asgi_server, token, staff_token):
    plan = floorplan()
    stream = Stream(asgi_server.url, asgi_server.port, f"/stream?spaces={plan.a.pk},{plan.b.pk}", token)
    snapshot = stream.events("snapshot", 2)

    assert post(asgi_server, staff_token, {"dpu_id": 283, "timestamp": now_text(-3), "direction": 1})[0] == 201
    assert post(asgi_server, staff_token, {"dpu_id": 423, "timestamp": now_text(-2), "direction": -1})[0] == 201
    counts = stream.events("count", 3)
    stream.close()

    assert stream.status == 200 and stream.headers["content-type"].startswith("text/event-stream")
    assert [(e.data["space_id"], e.data["count"]) for e in snapshot] == [(plan.a.pk, 0), (plan.b.pk, 0)]
    # Into A from outside: A 1. From A into B: A 0, B 1; the ids grow in the order the changes were made.
    assert [(e.data["space_id"], e.data["count"]) for e in counts] == [(plan.a.pk, 1), (plan.a.pk, 0), (plan.b.pk, 1)]
    assert [int(e.id) for e in counts] == sorted(int(e.id) for e in counts)
    assert all(e.id == str(e.data["id"]) for e in counts)


def test_a_client_gets_only_the_spaces_it_asked_for(asgi_server, token, staff_token):
    plan = floorplan()
    stream = Stream(asgi_server.url, asgi_server.port, f"/stream?spaces={plan.b.pk}", token)
    stream.events("snapshot", 1)

    post(asgi_server, staff_token, {"dpu_id": 283, "timestamp": now_text(-3), "direction": 1})  # A only
    post(asgi_server, staff_token, {"dpu_id": 423, "timestamp": now_text(-2), "direction": -1})  # A and B
    counts = stream.events("count", 2, timeout=2)
    stream.close()

    assert [(e.data["space_id"], e.data["count"]) for e in counts] == [(plan.b.pk, 1)]


def test_last_event_id_replays_what_the_client_missed(asgi_server, token, staff_token):
    plan = floorplan()
    first = Stream(asgi_server.url, asgi_server.port, f"/stream?spaces={plan.a.pk}", token)
    first.events("snapshot", 1)
    post(asgi_server, staff_token, {"dpu_id": 283, "timestamp": now_text(-5), "direction": 1})
    seen = first.events("count", 1)[0]
    first.close()

    # While it is away: two more people come into A.
    post(asgi_server, staff_token, {"dpu_id": 283, "timestamp": now_text(-4), "direction": 1})
    post(asgi_server, staff_token, {"dpu_id": 283, "timestamp": now_text(-3), "direction": 1})
    again = Stream(asgi_server.url, asgi_server.port, f"/stream?spaces={plan.a.pk}", token, last_event_id=seen.id)
    replayed = [again.next(), again.next()]
    again.close()

    assert seen.data["count"] == 1
    assert [(e.event, e.data["count"]) for e in replayed] == [("count", 2), ("count", 3)]


def test_an_unknown_last_event_id_gets_a_fresh_snapshot(asgi_server, token):
    plan = floorplan()

    stream = Stream(asgi_server.url, asgi_server.port, f"/stream?spaces={plan.a.pk}", token, last_event_id="999999")
    first = stream.next()
    stream.close()

    assert (first.event, first.data["space_id"], first.data["count"]) == ("snapshot", plan.a.pk, 0)


def test_a_refused_batch_sends_nothing_and_the_next_stored_one_does(asgi_server, token, staff_token):
    plan = floorplan()
    stream = Stream(asgi_server.url, asgi_server.port, f"/stream?spaces={plan.a.pk}", token)
    stream.events("snapshot", 1)

    refused = post(
        asgi_server,
        staff_token,
        {"dpu_id": 283, "timestamp": now_text(-3), "direction": 1},
        {"dpu_id": 999, "timestamp": now_text(-3), "direction": 1},  # no such DPU: the whole batch is refused
    )
    nothing = stream.events("count", 1, timeout=1.5)
    post(asgi_server, staff_token, {"dpu_id": 283, "timestamp": now_text(-2), "direction": 1})
    stored = stream.events("count", 1)
    stream.close()

    assert refused[0] == 400
    assert nothing == []
    assert [e.data["count"] for e in stored] == [1]


def test_an_idle_stream_gets_keep_alive_comments(asgi_server, token):
    plan = floorplan()
    stream = Stream(asgi_server.url, asgi_server.port, f"/stream?spaces={plan.a.pk}", token)
    stream.events("snapshot", 1)

    comment = stream.next(timeout=3)
    stream.close()

    assert (comment.event, comment.data) == ("comment", "keep-alive")


def test_who_may_watch(asgi_server, token):
    plan = floorplan()
    dpu_token = dpu_token_rotate(dpu=plan.dpu_283)

    anonymous = Stream(asgi_server.url, asgi_server.port, "/stream", token="")
    dpu = Stream(asgi_server.url, asgi_server.port, "/stream", dpu_token)
    unknown_space = Stream(asgi_server.url, asgi_server.port, "/stream?spaces=999999", token)
    statuses = [s.status for s in (anonymous, dpu, unknown_space)]
    for s in (anonymous, dpu, unknown_space):
        s.close()

    assert statuses == [401, 403, 404]


def test_the_stream_is_refused_by_a_wsgi_worker_instead_of_holding_it(client, django_user_model):
    rita = django_user_model.objects.create_user(username="rita2")

    response = client.get("/stream", HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=rita).key}")

    assert response.status_code == 503
    assert "ASGI server" in response.json()["detail"]


def test_a_client_that_falls_behind_is_dropped_not_buffered(settings):
    """A client's queue holds STREAM_QUEUE changes; the next one drops the client, with a last word."""
    settings.STREAM_QUEUE = 3
    import asyncio

    async def fill() -> list:
        client = Client(spaces=None)
        for n in range(10):
            client.offer({"id": n, "space_id": 1, "count": n})
        return [client.queue.get_nowait() for _ in range(client.queue.qsize())], client.dropped

    queued, dropped = asyncio.run(fill())

    assert dropped
    assert queued[:3] == [{"id": n, "space_id": 1, "count": n} for n in range(3)]
    assert queued[3:] == [OVERFLOW]


def test_many_clients_each_get_every_change(asgi_server, token, staff_token):
    plan = floorplan()
    streams = [Stream(asgi_server.url, asgi_server.port, f"/stream?spaces={plan.a.pk}", token) for _ in range(20)]
    for stream in streams:
        stream.events("snapshot", 1)

    post(asgi_server, staff_token, {"dpu_id": 283, "timestamp": now_text(-2), "direction": 1})
    received = []
    threads = [threading.Thread(target=lambda s=s: received.append(s.events("count", 1))) for s in streams]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for stream in streams:
        stream.close()

    assert sorted(len(r) for r in received) == [1] * 20
