"""Assignments: a DPU has one doorway at any instant, and changing its assignments recalculates the affected
spaces from the earliest instant that changes, never before."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from dpu.models import DpuAssignment, DpuEvent
from dpu.services import assignment_delete, assignment_move, assignment_update, event_ingest
from dpu.tests.factories import DpuAssignmentFactory, DpuFactory
from occupancy.models import SpaceOccupancy
from occupancy.tests.factories import INSTALLED, NOW, at, counts, event, floorplan, row_states, rows
from spaces.tests.factories import DoorwayFactory

pytestmark = pytest.mark.django_db

LATER = NOW + timedelta(hours=3)


def _spans(dpu) -> list[tuple]:
    return list(dpu.assignments.order_by("valid_from").values_list("doorway__name", "valid_from", "valid_to"))


def test_overlapping_assignment_is_refused_by_the_database():
    plan = floorplan()  # DPU 283 hangs over X from 2000 on, open-ended

    with pytest.raises(IntegrityError), transaction.atomic():
        DpuAssignment.objects.create(dpu=plan.dpu_283, doorway=plan.z, enters=plan.a, valid_from=at(0), valid_to=at(10))

    assert _spans(plan.dpu_283) == [("X", INSTALLED, None)]


def test_overlapping_closed_assignments_are_refused_by_the_database():
    plan = floorplan()
    dpu = DpuFactory(serial=600)
    DpuAssignmentFactory(dpu=dpu, doorway=plan.x, enters=plan.a, valid_from=at(0), valid_to=at(10))

    with pytest.raises(IntegrityError), transaction.atomic():
        DpuAssignment.objects.create(dpu=dpu, doorway=plan.z, enters=plan.a, valid_from=at(5), valid_to=at(15))
    # An update that makes two assignments overlap is refused just the same.
    later = DpuAssignmentFactory(dpu=dpu, doorway=plan.z, enters=plan.a, valid_from=at(10), valid_to=at(20))
    with pytest.raises(IntegrityError), transaction.atomic():
        DpuAssignment.objects.filter(pk=later.pk).update(valid_from=at(9))

    assert _spans(dpu) == [("X", at(0), at(10)), ("Z", at(10), at(20))]


def test_back_to_back_assignments_do_not_overlap():
    plan = floorplan()
    dpu = DpuFactory(serial=601)

    DpuAssignmentFactory(dpu=dpu, doorway=plan.x, enters=plan.a, valid_from=at(0), valid_to=at(10))
    DpuAssignmentFactory(dpu=dpu, doorway=plan.z, enters=plan.a, valid_from=at(10), valid_to=None)

    assert len(_spans(dpu)) == 2


def test_moved_dpu_counts_for_the_old_doorway_before_the_move_and_the_new_one_after():
    plan = floorplan()
    w = DoorwayFactory(name="W", side_a=None, side_b=plan.b)
    event_ingest(events=[event(plan.dpu_283, s) for s in (0, 5, 15)], now=NOW)

    assignment_move(dpu=plan.dpu_283, doorway=w, enters=plan.b, valid_from=at(10), now=NOW)
    event_ingest(events=[event(plan.dpu_283, 7), event(plan.dpu_283, 20)], now=NOW)  # one late, one new

    assert _spans(plan.dpu_283) == [("X", INSTALLED, at(10)), ("W", at(10), None)]
    assert rows(plan.a) == [("A", 283, at(0), 1, 1), ("A", 283, at(5), 1, 2), ("A", 283, at(7), 1, 3)]
    assert rows(plan.b) == [("B", 283, at(15), 1, 1), ("B", 283, at(20), 1, 2)]


def test_assignment_move_recalculates_from_its_start_only():
    plan = floorplan()
    w = DoorwayFactory(name="W", side_a=None, side_b=plan.b)
    event_ingest(events=[event(plan.dpu_283, s) for s in (0, 5, 15, 20)], now=NOW)
    before = row_states(plan.a)

    assignment_move(dpu=plan.dpu_283, doorway=w, enters=plan.b, valid_from=at(10), now=LATER)

    after = row_states(plan.a)
    assert after == {at(0): before[at(0)], at(5): before[at(5)]}  # same ids, counts and `modified`
    assert counts(plan.b) == [1, 2]


def test_assignment_move_before_a_later_assignment_ends_where_that_one_starts():
    plan = floorplan()
    w = DoorwayFactory(name="W", side_a=None, side_b=plan.b)
    assignment_move(dpu=plan.dpu_283, doorway=w, enters=plan.b, valid_from=at(20), now=NOW)

    assignment_move(dpu=plan.dpu_283, doorway=plan.z, enters=plan.b, valid_from=at(10), now=NOW)
    event_ingest(events=[event(plan.dpu_283, s) for s in (5, 15, 25)], now=NOW)

    assert _spans(plan.dpu_283) == [("X", INSTALLED, at(10)), ("Z", at(10), at(20)), ("W", at(20), None)]
    assert rows(plan.a) == [("A", 283, at(5), 1, 1), ("A", 283, at(15), -1, 0)]  # through Z into B
    assert rows(plan.b) == [("B", 283, at(15), 1, 1), ("B", 283, at(25), 1, 2)]


def test_assignment_move_to_a_start_already_taken_is_refused():
    plan = floorplan()

    with pytest.raises(ValidationError):
        assignment_move(dpu=plan.dpu_283, doorway=plan.z, enters=plan.a, valid_from=INSTALLED, now=NOW)

    assert _spans(plan.dpu_283) == [("X", INSTALLED, None)]


def test_assignment_move_into_a_side_the_doorway_lacks_is_refused():
    plan = floorplan()

    with pytest.raises(ValidationError):
        assignment_move(dpu=plan.dpu_283, doorway=plan.x, enters=plan.b, valid_from=at(10), now=NOW)

    assert _spans(plan.dpu_283) == [("X", INSTALLED, None)]


def test_first_assignment_counts_events_stored_before_it():
    plan = floorplan()
    dpu = DpuFactory(serial=700)
    event_ingest(events=[event(dpu, 0), event(dpu, 5)], now=NOW)
    assert not SpaceOccupancy.objects.filter(dpu=dpu).exists()

    assignment_move(dpu=dpu, doorway=plan.x, enters=plan.a, valid_from=INSTALLED, now=NOW)

    assert counts(plan.a) == [1, 2]


def _moved_to_w(plan):
    """DPU 423 takes a person from A into B at 1s; DPU 283 moves from X to W (outside -> B) at 10s."""
    w = DoorwayFactory(name="W", side_a=None, side_b=plan.b)
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_423, 1, -1)], now=NOW)
    moved = assignment_move(dpu=plan.dpu_283, doorway=w, enters=plan.b, valid_from=at(10), now=NOW)
    event_ingest(events=[event(plan.dpu_283, 15), event(plan.dpu_283, 20)], now=NOW)
    assert counts(plan.b) == [1, 2, 3]
    return w, moved


def test_assignment_update_changing_enters_recalculates_from_its_start():
    plan = floorplan()
    w, moved = _moved_to_w(plan)
    before = row_states(plan.b)

    # It turns out the DPU over W faces outside: its +1s left B.
    assignment_update(assignment=moved, doorway=w, enters=None, valid_from=at(10), valid_to=None, now=LATER)

    after = row_states(plan.b)
    assert after[at(1)] == before[at(1)]
    assert [after[at(s)][1:3] for s in (15, 20)] == [(0, "pending"), (0, "pending")]
    assert after[at(15)][3] == LATER


def test_assignment_update_changing_doorway_moves_its_events():
    plan = floorplan()
    w, moved = _moved_to_w(plan)
    a_before = row_states(plan.a)

    assignment_update(assignment=moved, doorway=plan.z, enters=plan.a, valid_from=at(10), valid_to=None, now=LATER)

    assert row_states(plan.a)[at(0)] == a_before[at(0)]
    assert counts(plan.a) == [1, 0, 1, 2]  # 0s in, 1s out to B, then 15s and 20s in from B
    assert counts(plan.b) == [1, 0, 0]


def test_assignment_update_extending_its_end_recalculates_from_the_old_end():
    plan = floorplan()
    dpu = DpuFactory(serial=512)
    y = DoorwayFactory(name="Y", side_a=None, side_b=plan.a)
    assignment = DpuAssignmentFactory(dpu=dpu, doorway=y, enters=plan.a, valid_from=INSTALLED, valid_to=at(10))
    event_ingest(events=[event(dpu, 5), event(dpu, 15), event(plan.dpu_283, 12), event(plan.dpu_283, 17)], now=NOW)
    before = row_states(plan.a)
    assert sorted(before) == [at(5), at(12), at(17)]  # 512's event at 15s came after its assignment ended

    assignment_update(assignment=assignment, doorway=y, enters=plan.a, valid_from=INSTALLED, valid_to=at(20), now=LATER)

    after = row_states(plan.a)
    assert after[at(5)] == before[at(5)] and after[at(12)] == before[at(12)]  # before the old end: untouched
    assert after[at(15)][1:] == (3, "pending", LATER)
    assert after[at(17)][1:] == (4, "pending", LATER)


def test_assignment_update_moving_its_start_earlier_counts_stored_events():
    plan = floorplan()
    dpu = DpuFactory(serial=512)
    y = DoorwayFactory(name="Y", side_a=None, side_b=plan.a)
    assignment = DpuAssignmentFactory(dpu=dpu, doorway=y, enters=plan.a, valid_from=at(10))
    event_ingest(events=[event(plan.dpu_283, 1), event(dpu, 0), event(dpu, 5), event(dpu, 15)], now=NOW)
    before = row_states(plan.a)

    assignment_update(assignment=assignment, doorway=y, enters=plan.a, valid_from=at(3), valid_to=None, now=LATER)

    assert row_states(plan.a)[at(1)] == before[at(1)]
    assert rows(plan.a) == [("A", 283, at(1), 1, 1), ("A", 512, at(5), 1, 2), ("A", 512, at(15), 1, 3)]


def test_assignment_update_that_changes_nothing_rewrites_nothing():
    plan = floorplan()
    w, moved = _moved_to_w(plan)
    before = row_states(plan.b)

    assignment_update(assignment=moved, doorway=w, enters=plan.b, valid_from=at(10), valid_to=None, now=LATER)

    assert row_states(plan.b) == before


def test_assignment_update_overlapping_another_is_refused():
    plan = floorplan()
    w, moved = _moved_to_w(plan)
    before = row_states(plan.b)

    with pytest.raises(ValidationError):  # would overlap X's assignment, which ends at 10s
        assignment_update(assignment=moved, doorway=w, enters=plan.b, valid_from=at(5), valid_to=None, now=LATER)

    assert _spans(plan.dpu_283) == [("X", INSTALLED, at(10)), ("W", at(10), None)]
    assert row_states(plan.b) == before


def test_assignment_delete_uncounts_its_events_but_keeps_them():
    plan = floorplan()
    w, moved = _moved_to_w(plan)
    before = row_states(plan.b)

    assignment_delete(assignment=moved, now=LATER)

    assert row_states(plan.b) == {at(1): before[at(1)]}
    assert DpuEvent.objects.filter(dpu=plan.dpu_283).count() == 3  # the raw log keeps them

    # Hung again, its stored events count again.
    assignment_move(dpu=plan.dpu_283, doorway=w, enters=plan.b, valid_from=at(10), now=LATER)
    assert counts(plan.b) == [1, 2, 3]
