"""Concurrent clients through a real server: four client processes post the sample data, shuffled, in random
batch sizes and with some batches sent twice, to gunicorn's three workers at once. Every answer is a 2xx, nothing
deadlocks, each event counts once, and the whole occupancy history is the one a sequential load gives."""

import csv
import multiprocessing
import random

import pytest

from dpu.models import DpuEvent
from dpu.services import event_ingest
from occupancy.models import SpaceOccupancy
from occupancy.tests.factories import SAMPLE_CSV, floorplan, sample_events
from occupancy.tests.server import Server, post_batches

CLIENTS = 4
MAX_BATCH = 80
RESENT = 0.25  # the share of batches a client sends again, not sure the first one arrived
SEED = 283
CLIENT_TIMEOUT = 60.0


def _sample_items() -> list[dict]:
    """fixtures/dpu_data.csv as a DPU posts it: every value as the file has it, duplicates included."""
    with SAMPLE_CSV.open(newline="") as handle:
        return [{key: row[key] for key in ("dpu_id", "timestamp", "direction")} for row in csv.DictReader(handle)]


def _client_shares(items: list[dict], rng: random.Random) -> list[list[list[dict]]]:
    """The items shuffled and cut into batches of 1 to MAX_BATCH, some batches twice, dealt out to the clients.
    A re-sent batch usually goes to another client than its first copy, so the two may race."""
    shuffled = items[:]
    rng.shuffle(shuffled)
    batches, start = [], 0
    while start < len(shuffled):
        size = rng.randint(1, MAX_BATCH)
        batches.append(shuffled[start : start + size])
        start += size
    posts = batches + rng.sample(batches, k=round(len(batches) * RESENT))
    rng.shuffle(posts)
    return [posts[i::CLIENTS] for i in range(CLIENTS)]


def _post_concurrently(server: Server, token: str, shares: list[list[list[dict]]]) -> list[tuple]:
    """Run one client process per share, all starting together; return every (batch size, status, body)."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no copy of this process's connections
    start, results = context.Barrier(len(shares)), context.Queue()
    clients = [
        context.Process(target=post_batches, args=(server.url, token, share, start, results), daemon=True)
        for share in shares
    ]
    for client in clients:
        client.start()
    try:
        outcomes = [results.get(timeout=CLIENT_TIMEOUT) for _ in clients]
    finally:
        for client in clients:
            client.join(timeout=10)
            if client.is_alive():
                client.kill()
                client.join(timeout=10)
    assert sorted(len(outcome) for outcome in outcomes) == sorted(len(share) for share in shares), outcomes
    return [answer for outcome in outcomes for answer in outcome]


def _history() -> list[tuple]:
    """Every occupancy row by natural keys: space, its event's (DPU serial, timestamp, direction), and its
    timestamp, delta and count. Ids and statuses are left out: they depend on the arrival order, counts must not."""
    return sorted(
        SpaceOccupancy.objects.values_list(
            "space__name", "event__dpu__serial", "event__timestamp", "event__direction", "timestamp", "delta", "count"
        )
    )


def _server_counts(server: Server, token: str) -> dict[str, int]:
    status, spaces = server.request("/space/", token=token)
    assert status == 200, spaces
    return {space["name"]: space["count"] for space in spaces}


@pytest.mark.django_db(transaction=True)
def test_concurrent_clients_through_gunicorn_give_the_history_of_a_sequential_load(gunicorn_server, staff_token):
    floorplan()
    items = _sample_items()
    unique = len({(e.serial, e.timestamp, e.direction) for e in sample_events()})
    shares = _client_shares(items, random.Random(SEED))

    answers = _post_concurrently(gunicorn_server, staff_token, shares)

    failed = [(size, status, body) for size, status, body in answers if status not in (200, 201)]
    assert failed == [], "every batch is answered with a 2xx: no 5xx (a deadlock is one), no dropped connection"
    # Each event counted once, though copies of it raced each other through different workers.
    assert sum(body["created"] for *_, body in answers) == unique
    assert sum(body["received"] for *_, body in answers) == sum(size for size, *_ in answers)
    assert sum(body["duplicates"] for *_, body in answers) == sum(size for size, *_ in answers) - unique
    assert all((status == 201) == (body["created"] > 0) for _, status, body in answers)
    log = gunicorn_server.log()
    assert "Traceback" not in log and "deadlock" not in log.lower(), log
    concurrent_counts, concurrent_history = _server_counts(gunicorn_server, staff_token), _history()
    assert DpuEvent.objects.count() == unique

    # The same data loaded sequentially, through the same service, into the same building.
    SpaceOccupancy.objects.all().delete()
    DpuEvent.objects.all().delete()
    event_ingest(events=sample_events())

    assert concurrent_history == _history()
    assert len(concurrent_history) == unique + DpuEvent.objects.filter(dpu__serial=423).count()  # Z: A and B
    assert concurrent_counts == _server_counts(gunicorn_server, staff_token) == {"A": 4, "B": 9}  # FLOORPLAN.md
