"""A batch is one transaction: a gunicorn worker killed (SIGKILL) in the middle of ingesting a 10,000-event batch
leaves none of it stored (or, had it committed already, all of it), and the DPU's re-send is counted exactly as
the counting rules say."""

import json
import os
import random
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection

from config.api import format_instant
from dpu.models import DpuEvent
from occupancy.models import SpaceOccupancy
from occupancy.tests.factories import T0, Floorplan, floorplan
from occupancy.tests.server import APPLICATION_NAME, Server

BATCH = 10_000  # the most one POST may carry
EARLIER = 2_000
POLL = 0.001
TIMEOUT = 30.0


def _generated_events(count: int, *, seed: int, day: int, days: int) -> list[dict]:
    """`count` distinct events as a DPU posts them, through both doorways, over `days` days from `day` after T0."""
    rng, keys = random.Random(seed), set()
    start = T0 + timedelta(days=day)
    while len(keys) < count:
        keys.add(
            (
                283 if rng.random() < 0.8 else 423,
                start + timedelta(milliseconds=rng.randrange(days * 24 * 3600 * 1000)),
                1 if rng.random() < 0.52 else -1,
            )
        )
    items = [{"dpu_id": serial, "timestamp": format_instant(ts), "direction": d} for serial, ts, d in keys]
    rng.shuffle(items)
    return items


def _expected(plan: Floorplan, items: list[dict]) -> tuple[list[tuple], dict[str, int]]:
    """The occupancy history (as _history gives it) and final counts the counting rules give for `items`,
    computed without the service: per space, in row order (time, increments first, then DPU), each count is the
    previous one plus the delta, never below zero. Both doorways lead into A; through Z a +1 also leaves B."""
    dpu_ids = {283: plan.dpu_283.id, 423: plan.dpu_423.id}
    changes: dict[str, list[tuple]] = {"A": [], "B": []}
    for item in items:
        serial, timestamp, direction = item["dpu_id"], item["timestamp"], item["direction"]
        changes["A"].append((timestamp, direction, serial, direction))
        if serial == 423:
            changes["B"].append((timestamp, -direction, serial, direction))
    history, finals = [], {}
    for space, space_changes in changes.items():
        count = 0
        # The timestamps are all written alike (UTC, milliseconds, Z), so as text they sort in time order.
        for timestamp, delta, serial, direction in sorted(space_changes, key=lambda c: (c[0], -c[1], dpu_ids[c[2]])):
            count = max(count + delta, 0)
            history.append((space, serial, timestamp, direction, timestamp, delta, count))
        finals[space] = count
    return sorted(history), finals


def _history() -> list[tuple]:
    """Every occupancy row by natural keys: space, its event's (DPU serial, timestamp, direction), and its
    timestamp, delta and count; timestamps written as the API writes them."""
    values = SpaceOccupancy.objects.values_list(
        "space__name", "event__dpu__serial", "event__timestamp", "event__direction", "timestamp", "delta", "count"
    )
    return sorted(
        (space, serial, format_instant(event_ts), direction, format_instant(ts), delta, count)
        for space, serial, event_ts, direction, ts, delta, count in values
    )


def _write_transaction_open() -> bool:
    """Whether a server process is inside a transaction that has written to the test database."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = %s AND backend_xid IS NOT NULL",
                [APPLICATION_NAME],
            )
            return cursor.fetchone()[0] > 0
    # SQLite in rollback-journal mode (Django's default) has "<db>-journal" while a write is not committed.
    return Path(f"{connection.settings_dict['NAME']}-journal").exists()


def _no_write_transaction_open() -> bool:
    return not _write_transaction_open()


def _wait_for(condition, timeout: float = TIMEOUT) -> float:
    """Poll `condition` until it holds; return the time.monotonic() at which it did."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f} s waiting for {condition.__name__}")
        time.sleep(POLL)
    return time.monotonic()


class _Post(threading.Thread):
    """POST a batch on a connection of its own, in the background: then `status` and `body`, or `error`."""

    def __init__(self, server: Server, token: str, batch: list[dict]):
        super().__init__(daemon=True)
        self.conn, self.token, self.batch = server.connection(), token, batch
        self.client_port = self.conn.sock.getsockname()[1]  # tells which worker serves it
        self.status = self.body = self.error = None

    def run(self) -> None:
        headers = {"Authorization": f"Token {self.token}", "Content-Type": "application/json"}
        try:
            self.conn.request("POST", "/events", body=json.dumps(self.batch), headers=headers)
            response = self.conn.getresponse()
            self.status, self.body = response.status, json.loads(response.read())
        except (OSError, ValueError) as exc:  # the connection dropped: what a killed worker leaves its client
            self.error = exc
        finally:
            self.conn.close()

    def finish(self) -> None:
        self.join(timeout=TIMEOUT)
        assert not self.is_alive(), "the POST neither got an answer nor lost its connection"


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_batch_stores_all_or_nothing_and_the_resend_counts_right(gunicorn_server, staff_token):
    plan = floorplan()
    earlier = _generated_events(EARLIER, seed=283, day=0, days=1)
    batch = _generated_events(BATCH, seed=423, day=1, days=2)

    # Some history first. How long its write transaction stays open times the kill below.
    post = _Post(gunicorn_server, staff_token, earlier)
    post.start()
    opened = _wait_for(_write_transaction_open)
    took = _wait_for(_no_write_transaction_open) - opened
    post.finish()
    assert (post.status, post.body) == (201, {"received": EARLIER, "created": EARLIER, "duplicates": 0})

    # The big batch. Once its transaction has been open as long as the whole 2,000-event batch took, an ingest that
    # committed as it went would have stored thousands of its events: kill the worker serving it then, in the
    # middle. Right before the kill a write transaction must still be open (with a correct ingest it has not ended).
    post = _Post(gunicorn_server, staff_token, batch)
    post.start()
    _wait_for(_write_transaction_open)
    time.sleep(took)
    _wait_for(_write_transaction_open)
    worker = gunicorn_server.worker_serving(post.client_port)
    assert worker is not None, "no worker holds the batch's connection"
    os.kill(worker, signal.SIGKILL)
    post.finish()
    assert post.status is None, f"the batch was answered, so the kill came after it: {post.status} {post.body}"
    assert post.error is not None

    # The dead worker's transaction is gone: on PostgreSQL its backend rolls back once it notices the lost
    # client; on SQLite the next reader rolls the hot journal back.
    if connection.vendor == "postgresql":
        _wait_for(_no_write_transaction_open)
    stored = DpuEvent.objects.count() - EARLIER
    assert stored in (0, BATCH), f"{stored} of the batch's {BATCH} events were stored: a batch is all or nothing"
    assert _history() == _expected(plan, earlier + (batch if stored else []))[0]

    # The master replaces the dead worker.
    deadline = time.monotonic() + TIMEOUT
    while (len(gunicorn_server.worker_pids()) < 3 or worker in gunicorn_server.worker_pids()) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert worker not in gunicorn_server.worker_pids()
    assert len(gunicorn_server.worker_pids()) == 3

    # The DPU re-sends the batch it got no answer for: counted once, and every count is what the rules give.
    status, body = gunicorn_server.request("/events", method="POST", token=staff_token, body=batch)
    assert (status, body) == (
        201 if stored == 0 else 200,
        {"received": BATCH, "created": BATCH - stored, "duplicates": stored},
    )
    history, finals = _expected(plan, earlier + batch)
    assert DpuEvent.objects.count() == EARLIER + BATCH
    assert _history() == history
    status, spaces = gunicorn_server.request("/space/", token=staff_token)
    assert status == 200
    assert {space["name"]: space["count"] for space in spaces} == finals
