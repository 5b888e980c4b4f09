"""The counting rules: which side an event changes, what the count at an instant includes, and the clamp at zero."""

from datetime import UTC, datetime, timedelta

import pytest

from dpu.models import DpuEvent
from dpu.services import assignment_move, event_ingest
from dpu.tests.factories import DpuAssignmentFactory, DpuFactory
from occupancy.models import SpaceOccupancy
from occupancy.selectors import space_count_at, space_list_with_counts
from occupancy.tests.factories import NOW, at, counts, event, floorplan, sample_events
from spaces.tests.factories import DoorwayFactory, SpaceFactory

pytestmark = pytest.mark.django_db


def test_plus_one_enters_the_side_the_dpu_faces_and_leaves_the_other():
    plan = floorplan()
    # Three people come in from outside, two walk on from A into B, then one comes back from B into A.
    event_ingest(
        events=[event(plan.dpu_283, 0), event(plan.dpu_283, 1), event(plan.dpu_283, 2), event(plan.dpu_423, 3, -1)],
        now=NOW,
    )
    event_ingest(events=[event(plan.dpu_423, 4, -1)], now=NOW)
    assert (counts(plan.a), counts(plan.b)) == ([1, 2, 3, 2, 1], [1, 2])

    event_ingest(events=[event(plan.dpu_423, 5, +1)], now=NOW)

    assert (counts(plan.a), counts(plan.b)) == ([1, 2, 3, 2, 1, 2], [1, 2, 1])


def test_minus_one_leaves_the_side_the_dpu_faces_and_enters_the_other():
    plan = floorplan(b_allow_negative=True)

    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_423, 1, -1)], now=NOW)

    assert space_count_at(space=plan.a, at=at(1), now=NOW).count == 0
    assert space_count_at(space=plan.b, at=at(1), now=NOW).count == 1


def test_outside_is_never_counted():
    plan = floorplan()

    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_283, 1, -1), event(plan.dpu_283, 2)], now=NOW)

    # Doorway X has one counted side: each event makes exactly one row, in A.
    assert list(SpaceOccupancy.objects.values_list("space__name", flat=True)) == ["A", "A", "A"]
    assert counts(plan.a) == [1, 0, 1]


def test_dpu_facing_outside_counts_a_plus_one_as_leaving():
    room = SpaceFactory(name="Room", allow_negative=True)
    door = DoorwayFactory(name="Back door", side_a=None, side_b=room)
    dpu = DpuFactory(serial=77)
    DpuAssignmentFactory(dpu=dpu, doorway=door, enters=None)  # the DPU faces outside

    event_ingest(events=[event(dpu, 0, +1), event(dpu, 1, -1), event(dpu, 2, -1)], now=NOW)

    assert counts(room) == [-1, 0, 1]


def test_event_goes_through_the_assignment_valid_at_its_timestamp():
    plan = floorplan()
    # DPU 283 moves from X (into A) to a new doorway W (into B) at exactly T0+10s.
    w = DoorwayFactory(name="W", side_a=None, side_b=plan.b)
    assignment_move(dpu=plan.dpu_283, doorway=w, enters=plan.b, valid_from=at(10), now=NOW)

    event_ingest(events=[event(plan.dpu_283, 9.999), event(plan.dpu_283, 10)], now=NOW)

    # [valid_from, valid_to) is half-open: the last millisecond before the move is X's, the move's instant W's.
    assert list(SpaceOccupancy.objects.filter(space=plan.a).values_list("timestamp", flat=True)) == [at(9.999)]
    assert list(SpaceOccupancy.objects.filter(space=plan.b).values_list("timestamp", flat=True)) == [at(10)]


def test_event_without_assignment_is_stored_and_counted_once_an_assignment_covers_it():
    room = SpaceFactory(name="Room")
    door = DoorwayFactory(name="Front door", side_a=None, side_b=room)
    dpu = DpuFactory(serial=99)

    result = event_ingest(events=[event(dpu, 0), event(dpu, 5)], now=NOW)

    assert result.created == 2
    assert DpuEvent.objects.filter(dpu=dpu).count() == 2
    assert not SpaceOccupancy.objects.exists()

    # Hung over the door from T0+3s: only the event at T0+5s happened while it watched the door.
    assignment_move(dpu=dpu, doorway=door, enters=room, valid_from=at(3), now=NOW)

    assert list(SpaceOccupancy.objects.values_list("timestamp", "count")) == [(at(5), 1)]


def test_count_at_an_instant_includes_the_event_at_that_instant():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 10), event(plan.dpu_283, 20)], now=NOW)

    def count(instant):
        return space_count_at(space=plan.a, at=instant, now=NOW).count

    assert count(at(10) - timedelta(milliseconds=1)) == 0
    assert count(at(10)) == 1
    assert count(at(19.999)) == 1
    assert count(at(20)) == 2
    assert count(at(3600)) == 2


def test_count_before_the_first_event_is_zero():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 10)], now=NOW)

    assert space_count_at(space=plan.a, at=datetime(2001, 1, 1, tzinfo=UTC), now=NOW).count == 0
    assert space_count_at(space=plan.b, at=at(3600), now=NOW).count == 0  # no event ever touched B


def test_count_never_goes_below_zero():
    plan = floorplan()

    event_ingest(events=[event(plan.dpu_283, 0, -1), event(plan.dpu_283, 1, -1), event(plan.dpu_283, 2)], now=NOW)

    # Without the clamp the counts would be -1, -2, -1.
    assert counts(plan.a) == [0, 0, 1]


def test_space_that_allows_negative_counts_go_below_zero():
    plan = floorplan(b_allow_negative=True)

    # Three people walk from B into A although nobody was counted into B: B has an uncounted entrance.
    event_ingest(events=[event(plan.dpu_423, s) for s in (0, 1, 2)], now=NOW)

    assert counts(plan.b) == [-1, -2, -3]
    assert counts(plan.a) == [1, 2, 3]


def test_clamp_applies_in_time_order_not_arrival_order():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 2, +1)], now=NOW)

    # Arrives later, happened earlier: in time order it leaves an empty room (held at 0) before the +1.
    event_ingest(events=[event(plan.dpu_283, 1, -1)], now=NOW)

    assert counts(plan.a) == [0, 1]


def test_increments_apply_before_decrements_at_one_instant():
    plan = floorplan()

    event_ingest(events=[event(plan.dpu_283, 6, +1)], now=NOW)
    # At the same earlier millisecond one person leaves A for B (Z, -1) and one enters A from outside (X, +1).
    # The decrement arrives first; applied first it would be clamped away and A would hold 1 after the instant.
    event_ingest(events=[event(plan.dpu_423, 5, -1)], now=NOW)
    event_ingest(events=[event(plan.dpu_283, 5, +1)], now=NOW)

    assert counts(plan.a) == [1, 0, 1]
    assert space_count_at(space=plan.a, at=at(5), now=NOW).count == 0


def test_increments_before_decrements_holds_for_one_dpu_too():
    plan = floorplan()

    event_ingest(events=[event(plan.dpu_283, 5, -1)], now=NOW)
    event_ingest(events=[event(plan.dpu_283, 5, +1)], now=NOW)

    assert list(SpaceOccupancy.objects.values_list("delta", "count").order_by(*SpaceOccupancy.ORDER)) == [
        (1, 1),
        (-1, 0),
    ]


def test_sample_data_gives_the_published_counts():
    plan = floorplan()

    event_ingest(events=sample_events(), now=datetime(2018, 3, 3, tzinfo=UTC))

    published_instant = datetime(2018, 2, 26, 16, 8, 2, 170000, tzinfo=UTC)
    assert space_count_at(space=plan.a, at=published_instant, now=NOW).count == 3
    assert space_count_at(space=plan.a, at=datetime(2018, 3, 3, tzinfo=UTC), now=NOW).count == 4
    assert {space.name: space.count for space in space_list_with_counts()}["A"] == 4
    # 563 rows of which 33 are re-sends.
    assert DpuEvent.objects.count() == 530
