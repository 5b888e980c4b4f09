"""Which recalculations become count changes: the rows GET /stream sends (and replays) are recorded here."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.test import override_settings

from dpu.services import assignment_move, event_ingest
from occupancy.services import reset_create
from occupancy.tests.factories import NOW, at, event, floorplan
from spaces.tests.factories import DoorwayFactory
from stream.models import CountChange

pytestmark = pytest.mark.django_db


def changes() -> list[tuple[str, int]]:
    return [(change.space.name, change.count) for change in CountChange.objects.select_related("space")]


def test_an_event_that_changes_current_counts_records_each_change_once():
    plan = floorplan()

    event_ingest(events=[event(plan.dpu_283, 0)], now=NOW)  # outside -> A
    event_ingest(events=[event(plan.dpu_423, 10, -1)], now=NOW)  # A -> B

    assert changes() == [("A", 1), ("A", 0), ("B", 1)]


def test_a_late_event_that_changes_the_current_count_records_a_change():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 100)], now=NOW)

    event_ingest(events=[event(plan.dpu_283, 50)], now=NOW)  # earlier, but the count now is one more

    assert changes() == [("A", 1), ("A", 2)]


def test_a_late_event_that_leaves_the_current_count_as_it_was_records_nothing():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 100), event(plan.dpu_283, 200, -1)], now=NOW)  # 1, then 0
    before = changes()

    # An exit before anyone came in: clamped at zero there, and nothing after it changes.
    event_ingest(events=[event(plan.dpu_283, 50, -1)], now=NOW)

    assert before == [("A", 0)]  # one batch, one change: from nothing published to 0
    assert changes() == before


def test_an_event_after_now_changes_nothing_yet():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0)], now=NOW)

    event_ingest(events=[event(plan.dpu_283, 86_400 + 60)], now=NOW)  # a minute after NOW

    assert changes() == [("A", 1)]


def test_a_reset_and_a_dpu_move_record_the_counts_they_change():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_283, 10)], now=NOW)  # A: 2

    reset_create(space=plan.a, timestamp=at(20), count=5, now=NOW)
    # DPU 283 was over a doorway into B all along, from before its events: A loses them, B gains them.
    into_b = DoorwayFactory(name="Y", side_a=None, side_b=plan.b)
    assignment_move(dpu=plan.dpu_283, doorway=into_b, enters=plan.b, valid_from=at(-10), now=NOW)

    assert changes() == [("A", 2), ("A", 5), ("B", 2)]


def test_a_batch_rolled_back_records_nothing():
    plan = floorplan()

    with pytest.raises(RuntimeError), transaction.atomic():
        event_ingest(events=[event(plan.dpu_283, 0)], now=NOW)
        raise RuntimeError("the request failed after ingest")

    assert changes() == []


@override_settings(STREAM_RETENTION=timedelta(hours=1))
def test_changes_older_than_the_retention_are_pruned_when_new_ones_are_recorded():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0)], now=NOW)

    event_ingest(events=[event(plan.dpu_283, 10)], now=NOW + timedelta(minutes=59))
    kept = changes()
    event_ingest(events=[event(plan.dpu_283, 20)], now=NOW + timedelta(minutes=61))

    assert kept == [("A", 1), ("A", 2)]
    assert changes() == [("A", 2), ("A", 3)]
