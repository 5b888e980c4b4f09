"""Ingesting events: all or nothing, exact re-sends stored once, instants kept to the millisecond."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection

from config.sql import PREPARED_MAX_ROWS
from dpu.models import DpuEvent
from dpu.services import EventIn, EventRejected, IngestResult, event_ingest
from dpu.tests.factories import DpuFactory
from occupancy.models import SpaceOccupancy
from occupancy.tests.factories import NOW, at, counts, event, floorplan, rows

pytestmark = pytest.mark.django_db


def test_exact_duplicate_in_one_batch_is_stored_and_counted_once():
    plan = floorplan()

    result = event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_283, 0), event(plan.dpu_283, 1)], now=NOW)

    assert result == IngestResult(received=3, created=2, duplicates=1)
    assert DpuEvent.objects.count() == 2
    assert counts(plan.a) == [1, 2]


def test_exact_duplicate_across_batches_is_stored_and_counted_once():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_283, 1)], now=NOW)
    rows_before = list(SpaceOccupancy.objects.values_list("id", "count", "modified"))

    result = event_ingest(events=[event(plan.dpu_283, 1), event(plan.dpu_283, 0)], now=NOW + timedelta(hours=1))

    assert result == IngestResult(received=2, created=0, duplicates=2)
    assert DpuEvent.objects.count() == 2
    assert list(SpaceOccupancy.objects.values_list("id", "count", "modified")) == rows_before


def test_same_instant_but_different_direction_or_dpu_is_not_a_duplicate():
    plan = floorplan()

    result = event_ingest(
        events=[event(plan.dpu_283, 0, +1), event(plan.dpu_283, 0, -1), event(plan.dpu_423, 0, +1)], now=NOW
    )

    assert result.created == 3
    assert DpuEvent.objects.count() == 3


def test_timestamps_are_truncated_to_milliseconds():
    plan = floorplan()
    instant = datetime(2018, 2, 24, 8, 45, 21, 893000, tzinfo=UTC)

    result = event_ingest(
        events=[
            EventIn(serial=283, timestamp=instant + timedelta(microseconds=456), direction=1),
            EventIn(serial=283, timestamp=instant + timedelta(microseconds=999), direction=1),
        ],
        now=NOW,
    )

    assert result.created == 1  # the same event to the millisecond: a re-send
    assert list(DpuEvent.objects.values_list("timestamp", flat=True)) == [instant]
    assert list(SpaceOccupancy.objects.values_list("timestamp", flat=True)) == [instant]
    assert counts(plan.a) == [1]


def test_the_same_instant_in_another_time_zone_is_a_duplicate():
    floorplan()
    utc = datetime(2018, 2, 24, 8, 45, 21, 893000, tzinfo=UTC)
    berlin = utc.astimezone(timezone(timedelta(hours=1)))

    event_ingest(events=[EventIn(serial=283, timestamp=utc, direction=1)], now=NOW)
    result = event_ingest(events=[EventIn(serial=283, timestamp=berlin, direction=1)], now=NOW)

    assert result.created == 0
    assert DpuEvent.objects.get().timestamp == utc


def test_unknown_dpu_rejects_the_whole_batch_and_names_the_item():
    plan = floorplan()
    batch = [event(plan.dpu_283, 0), event(plan.dpu_423, 1), EventIn(serial=999, timestamp=at(2), direction=1)]

    with pytest.raises(EventRejected) as rejected:
        event_ingest(events=batch, now=NOW)

    assert (rejected.value.index, rejected.value.field) == (2, "dpu_id")
    assert "999" in rejected.value.message
    assert not DpuEvent.objects.exists()
    assert not SpaceOccupancy.objects.exists()


def test_events_of_a_dpu_without_assignment_are_kept_without_counting():
    plan = floorplan()
    spare = DpuFactory(serial=555)  # registered, not hung anywhere yet

    result = event_ingest(events=[event(spare, 0), event(plan.dpu_283, 1)], now=NOW)

    assert result.created == 2
    assert list(DpuEvent.objects.filter(dpu=spare).values_list("timestamp", "direction")) == [(at(0), 1)]
    assert list(SpaceOccupancy.objects.values_list("dpu__serial", flat=True)) == [283]


def test_empty_batch_stores_nothing():
    floorplan()

    assert event_ingest(events=[], now=NOW) == IngestResult(received=0, created=0, duplicates=0)
    assert not DpuEvent.objects.exists()


def test_received_at_is_the_ingest_instant():
    plan = floorplan()

    event_ingest(events=[event(plan.dpu_283, 0)], now=NOW)

    assert DpuEvent.objects.get().received_at == NOW


def test_a_serial_past_what_the_database_holds_is_an_unknown_dpu():
    plan = floorplan()
    batch = [event(plan.dpu_283, 0), EventIn(serial=2**64, timestamp=at(1), direction=1)]

    with pytest.raises(EventRejected) as rejected:
        event_ingest(events=batch, now=NOW)

    assert (rejected.value.index, rejected.value.field) == (1, "dpu_id")
    assert not DpuEvent.objects.exists()


# Small batches run as statements prepared once per database session (PostgreSQL); these pin that the session's
# life does not matter: a new session prepares them again, and a rolled-back batch leaves them usable.


@pytest.mark.django_db(transaction=True)
def test_ingest_goes_on_in_a_new_database_session():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0)], now=NOW)

    connection.close()  # the next query opens a new session, without the statements prepared in this one
    event_ingest(events=[event(plan.dpu_283, 1), event(plan.dpu_423, 2)], now=NOW)

    assert counts(plan.a) == [1, 2, 3]
    assert counts(plan.b) == [0]


def test_a_rejected_batch_leaves_ingest_working():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0)], now=NOW)

    with pytest.raises(EventRejected):
        event_ingest(events=[event(plan.dpu_283, 1), EventIn(serial=999, timestamp=at(2), direction=1)], now=NOW)
    event_ingest(events=[event(plan.dpu_283, 3)], now=NOW)

    assert counts(plan.a) == [1, 2]


def test_small_and_large_batches_give_the_same_rows():
    plan = floorplan()
    stream = [
        event(plan.dpu_283 if i % 3 else plan.dpu_423, i, 1 if i % 4 else -1) for i in range(PREPARED_MAX_ROWS * 3)
    ]
    event_ingest(events=stream[: PREPARED_MAX_ROWS + 1], now=NOW)  # planned for its size
    for item in stream[PREPARED_MAX_ROWS + 1 :]:  # prepared, one plan for all
        event_ingest(events=[item], now=NOW)
    singles = rows()

    SpaceOccupancy.objects.all().delete()
    DpuEvent.objects.all().delete()
    event_ingest(events=stream, now=NOW)

    assert rows() == singles
