"""Settling: a row is pending while a late event may still change it, settled once its instant and its last
change are older than OCCUPANCY_SETTLE_AFTER (an hour unless configured)."""

from datetime import timedelta

import pytest
from django.conf import settings

from dpu.services import event_ingest
from occupancy.models import SpaceOccupancy
from occupancy.selectors import space_count_at
from occupancy.services import occupancy_settle
from occupancy.tests.factories import at, event, floorplan, row_states

pytestmark = pytest.mark.django_db

PENDING, SETTLED = SpaceOccupancy.Status.PENDING, SpaceOccupancy.Status.SETTLED


def _statuses(space) -> list[str]:
    return list(
        SpaceOccupancy.objects.filter(space=space).order_by(*SpaceOccupancy.ORDER).values_list("status", flat=True)
    )


def test_appended_row_older_than_the_settle_age_is_settled_at_once():
    plan = floorplan()

    event_ingest(events=[event(plan.dpu_283, 0)], now=at(0) + timedelta(hours=2))

    assert _statuses(plan.a) == [SETTLED]


def test_appended_row_younger_than_the_settle_age_is_pending_until_it_ages():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0)], now=at(0) + timedelta(seconds=5))
    assert _statuses(plan.a) == [PENDING]

    assert occupancy_settle(now=at(0) + timedelta(minutes=30)) == 0
    assert _statuses(plan.a) == [PENDING]

    assert occupancy_settle(now=at(0) + timedelta(minutes=61)) == 1
    assert _statuses(plan.a) == [SETTLED]


def test_settle_age_comes_from_the_setting(settings):
    settings.OCCUPANCY_SETTLE_AFTER = timedelta(minutes=5)
    plan = floorplan()

    event_ingest(events=[event(plan.dpu_283, 0)], now=at(0) + timedelta(minutes=10))

    assert _statuses(plan.a) == [SETTLED]


def test_late_event_writes_pending_rows_and_unsettles_only_rows_whose_count_changes():
    plan = floorplan()
    # A: +1, -1, -1 (held at 0), +1 -> 1, 0, 0, 1. All long settled.
    first_now = at(0) + timedelta(days=1)
    event_ingest(
        events=[
            event(plan.dpu_283, 0),
            event(plan.dpu_283, 10, -1),
            event(plan.dpu_283, 20, -1),
            event(plan.dpu_283, 30),
        ],
        now=first_now,
    )
    before = row_states(plan.a)
    assert {status for _, _, status, _ in before.values()} == {SETTLED}

    # A late +1 at 15s: counts become 1, 0, 1 (new), 0, 1. The rows at 20s and 30s keep their count.
    late_now = first_now + timedelta(days=1)
    event_ingest(events=[event(plan.dpu_283, 15)], now=late_now)

    after = row_states(plan.a)
    assert after[at(15)][1:] == (1, PENDING, late_now)
    assert after[at(20)] == before[at(20)]  # count 0 before and after: still settled, `modified` kept
    assert after[at(30)] == before[at(30)]
    assert after[at(0)] == before[at(0)] and after[at(10)] == before[at(10)]


def test_late_event_sends_rows_whose_count_changes_back_to_pending():
    plan = floorplan()
    first_now = at(0) + timedelta(days=1)
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_283, 10)], now=first_now)

    late_now = first_now + timedelta(days=1)
    event_ingest(events=[event(plan.dpu_283, 5)], now=late_now)

    pk, count, status, modified = row_states(plan.a)[at(10)]
    assert (count, status, modified) == (3, PENDING, late_now)


def test_settle_waits_until_both_the_instant_and_the_last_change_are_old():
    plan = floorplan()
    first_now = at(0) + timedelta(days=1)
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_283, 10)], now=first_now)
    late_now = first_now + timedelta(days=1)
    event_ingest(events=[event(plan.dpu_283, 5)], now=late_now)  # rows at 5s and 10s pending, changed at late_now

    # Their instants are two days old, but they changed 30 minutes ago: a related late event may still come.
    assert occupancy_settle(now=late_now + timedelta(minutes=30)) == 0
    assert occupancy_settle(now=late_now + timedelta(minutes=61)) == 2

    assert _statuses(plan.a) == [SETTLED, SETTLED, SETTLED]
    assert row_states(plan.a)[at(10)][3] == late_now  # settling changes only the status


def test_settle_can_be_limited_to_some_spaces():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_423, 0)], now=at(1))  # touches A and B, both pending

    assert occupancy_settle(space_ids=[plan.b.id], now=at(0) + timedelta(hours=2)) == 1

    assert (_statuses(plan.a), _statuses(plan.b)) == ([PENDING], [SETTLED])


def test_ingest_settles_the_rows_of_the_spaces_it_touches():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0)], now=at(1))
    assert _statuses(plan.a) == [PENDING]

    event_ingest(events=[event(plan.dpu_283, 7200)], now=at(7201))

    assert _statuses(plan.a) == [SETTLED, PENDING]


def test_count_is_settled_only_once_nothing_recent_can_change_it():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0)], now=at(1))

    young = space_count_at(space=plan.a, at=at(0), now=at(600))
    assert (young.count, young.settled) == (1, False)

    # The row is still marked pending (no settle job ran), yet old enough that it would have settled.
    aged = space_count_at(space=plan.a, at=at(0), now=at(7200))
    assert (aged.count, aged.settled) == (1, True)

    # An instant within the settle age of now is never settled: events for it may still arrive.
    recent = space_count_at(space=plan.a, at=at(7000), now=at(7200))
    assert (recent.count, recent.settled) == (1, False)


def test_count_changed_by_a_late_event_is_not_settled_until_the_change_ages():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_283, 10)], now=at(0) + timedelta(days=1))
    late_now = at(0) + timedelta(days=2)
    assert space_count_at(space=plan.a, at=at(10), now=late_now).settled

    event_ingest(events=[event(plan.dpu_283, 5)], now=late_now)

    rewritten = space_count_at(space=plan.a, at=at(10), now=late_now + timedelta(minutes=10))
    assert (rewritten.count, rewritten.settled) == (3, False)
    assert space_count_at(space=plan.a, at=at(10), now=late_now + timedelta(hours=2)).settled


def test_count_before_any_event_is_zero_and_settles_by_age():
    plan = floorplan()

    assert space_count_at(space=plan.b, at=at(0), now=at(7200)).count == 0
    assert space_count_at(space=plan.b, at=at(0), now=at(7200)).settled
    assert not space_count_at(space=plan.b, at=at(0), now=at(60)).settled


def test_count_settles_exactly_when_its_row_reaches_the_settle_age():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0)], now=at(1))
    changed = at(86400)  # a whole second, as a late event's rewrite might stamp it
    SpaceOccupancy.objects.filter(space=plan.a).update(status=PENDING, modified=changed)
    settle_age = settings.OCCUPANCY_SETTLE_AFTER

    assert space_count_at(space=plan.a, at=at(0), now=changed + settle_age).settled
    assert not space_count_at(space=plan.a, at=at(0), now=changed + settle_age - timedelta(microseconds=1)).settled


def test_count_of_a_row_marked_settled_is_settled_once_its_instant_is_old_enough():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0)], now=at(1))
    SpaceOccupancy.objects.filter(space=plan.a).update(status=SETTLED, modified=at(7200))

    assert space_count_at(space=plan.a, at=at(0), now=at(7200)).settled
    assert not space_count_at(space=plan.a, at=at(7000), now=at(7200)).settled  # the instant itself is too recent
