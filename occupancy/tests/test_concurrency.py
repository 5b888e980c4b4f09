"""Concurrent writers never lose an update: ingests touching the same spaces queue on the DPU and Space row
locks instead of each recalculating from rows the other has not committed yet."""

import random
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction

from dpu.models import DpuEvent
from dpu.services import EventIn, event_ingest
from dpu.tests.factories import DpuAssignmentFactory, DpuFactory
from occupancy.models import SpaceOccupancy
from occupancy.services import occupancy_check
from occupancy.tests.factories import NOW, T0, floorplan, rows
from spaces.tests.factories import DoorwayFactory

WRITERS = 4
BATCH = 5


def _events(serials: list[int]) -> list[EventIn]:
    """A busy ten minutes through every doorway, slightly more people coming in than going out."""
    rng = random.Random(423)
    return [
        EventIn(
            serial=rng.choice(serials),
            timestamp=T0 + timedelta(milliseconds=rng.randrange(600_000)),
            direction=1 if rng.random() < 0.55 else -1,
        )
        for _ in range(160)
    ]


def _writer(batches: list[list[EventIn]], start: threading.Barrier, errors: list[BaseException]) -> None:
    try:
        start.wait(timeout=30)
        for batch in batches:
            event_ingest(events=batch, now=NOW)
    except BaseException as exc:  # reported by the test thread, which is the one pytest watches
        errors.append(exc)
    finally:
        connection.close()  # each thread has its own connection; leave none open on the test database


@pytest.mark.django_db(transaction=True)
def test_concurrent_ingests_into_the_same_spaces_lose_no_update():
    plan = floorplan()
    # A third DPU into A, so that writers holding different DPU locks still meet on the Space rows.
    dpu_512 = DpuFactory(serial=512)
    DpuAssignmentFactory(dpu=dpu_512, doorway=DoorwayFactory(name="Y", side_a=None, side_b=plan.a), enters=plan.a)
    events = _events([283, 423, 512])
    shuffled = events[:]
    random.Random(7).shuffle(shuffled)
    shares = [shuffled[i::WRITERS] for i in range(WRITERS)]
    # Each writer also re-sends a few events another writer posts: a DPU retrying a batch it thought was lost.
    shares = [share + shares[(i + 1) % WRITERS][:8] for i, share in enumerate(shares)]

    start, errors = threading.Barrier(WRITERS), []
    threads = [
        threading.Thread(
            target=_writer, args=([share[j : j + BATCH] for j in range(0, len(share), BATCH)], start, errors)
        )
        for share in shares
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    concurrent = rows()

    # The same events, once, in one sequential call.
    unique = {(e.serial, e.timestamp, e.direction) for e in events}
    assert DpuEvent.objects.count() == len(unique)
    DpuEvent.objects.all().delete()  # takes the occupancy rows with it
    assert not SpaceOccupancy.objects.exists()
    event_ingest(events=sorted(events, key=lambda e: e.timestamp), now=NOW)

    assert concurrent == rows()
    assert len(concurrent) == len(unique) + sum(1 for serial, _, _ in unique if serial == 423)  # Z touches A and B


def _waiting_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite's write lock: one writer at a time, no waiting")
@pytest.mark.django_db(transaction=True)
def test_an_ingest_that_waited_for_the_space_lock_counts_what_the_other_committed_meanwhile():
    plan = floorplan()
    holding, release, errors = threading.Event(), threading.Event(), []

    def first() -> None:  # DPU 283 lets someone into A at T0+10 s, and holds A's lock until told
        try:
            with transaction.atomic():
                event_ingest(events=[EventIn(serial=283, timestamp=T0 + timedelta(seconds=10), direction=1)], now=NOW)
                holding.set()
                release.wait(timeout=30)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def second() -> None:  # DPU 423 lets someone into A from B earlier, at T0+5 s: a late event, once it gets A
        try:
            event_ingest(events=[EventIn(serial=423, timestamp=T0 + timedelta(seconds=5), direction=1)], now=NOW)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert holding.wait(timeout=30)
    threads[1].start()
    deadline = time.monotonic() + 30
    while not _waiting_for_a_lock() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _waiting_for_a_lock()  # the second ingest waits for A's lock, having read nothing of the first's yet
    release.set()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    # The later row is recounted after the earlier one: 1 then 2, not 1 and 1.
    assert [count for *_, count in rows(plan.a)] == [1, 2]
    assert occupancy_check() == []
