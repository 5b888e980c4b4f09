"""Resets, daily resets and local days, case by case: the instants the rules name (DST gaps and repeats, a reset at
an instant with events, a reset on a daily reset), and how far a late event recounts. The property tests beside
this file (test_counts_over_time.py) check the same rules over random histories."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings

from dpu.services import EventIn, event_ingest
from dpu.tests.factories import DpuAssignmentFactory, DpuFactory
from occupancy.models import SpaceOccupancy
from occupancy.services import occupancy_check, occupancy_settle, reset_create
from occupancy.sql import Sql
from occupancy.tests.factories import INSTALLED, clock
from occupancy.tests.reference import DAILY_RESET, SpaceModel, bucket_edges, iso, placed
from spaces.models import Space
from spaces.tests.factories import DoorwayFactory, SpaceFactory

pytestmark = pytest.mark.django_db

# The explicit cases' writes' `now`: after all their events (2026), and the clock the reset rules check against.
SERVICE_NOW = datetime(2026, 11, 20, tzinfo=UTC)
SETTLE_AFTER = django_settings.OCCUPANCY_SETTLE_AFTER
MS = timedelta(milliseconds=1)
# --- 2. Explicit cases ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Room:
    """A space with DPUs 1 and 2 over its only doorway, from outside: a +1 enters it."""

    space: Space

    def ingest(self, *moves: tuple, now: datetime = SERVICE_NOW) -> None:
        """Events (timestamp, direction), or (timestamp, direction, serial); DPU 1 unless said."""
        events = [EventIn(serial=(serial or [1])[0], timestamp=ts, direction=d) for ts, d, *serial in moves]
        event_ingest(events=events, now=now)


def room(*, time_zone: str = "UTC", daily_reset: time | None = None) -> Room:
    space = SpaceFactory(name="Lobby", time_zone=time_zone, daily_reset=daily_reset)
    doorway = DoorwayFactory(name="Lobby door", side_a=None, side_b=space)
    for serial in (1, 2):
        DpuAssignmentFactory(dpu=DpuFactory(serial=serial), doorway=doorway, enters=space, valid_from=INSTALLED)
    return Room(space)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _count(client, space: Space, at: datetime) -> int:
    response = client.get(f"/space/{space.pk}/count", {"ts": iso(at)})
    assert response.status_code == 200, response.content
    return response.json()["count"]


def _buckets(client, space: Space, **params) -> list[dict]:
    response = client.get(f"/space/{space.pk}/counts", params)
    assert response.status_code == 200, response.content
    return response.json()["buckets"]


def _hours(bucket: dict) -> float:
    start, end = (datetime.fromisoformat(bucket[edge]) for edge in ("start", "end"))
    return (end - start) / timedelta(hours=1)


def test_reference_model_places_local_days_and_daily_resets_as_the_rules_say():
    # The model is the yardstick of the property test: pinned here to the README's own examples.
    new_york = ZoneInfo("America/New_York")
    spring = bucket_edges(
        placed(datetime(2026, 3, 8), new_york), placed(datetime(2026, 3, 9), new_york), "1d", new_york
    )
    fall = bucket_edges(
        placed(datetime(2026, 11, 1), new_york), placed(datetime(2026, 11, 2), new_york), "1d", new_york
    )
    assert spring == [utc(2026, 3, 8, 5), utc(2026, 3, 9, 4)]
    assert fall == [utc(2026, 11, 1, 4), utc(2026, 11, 2, 5)]
    skipped = SpaceModel(events=[(utc(2026, 3, 8, 6), 1)], daily_reset=time(2, 30), time_zone="America/New_York")
    assert [r.timestamp for r in skipped.rows if r.kind == DAILY_RESET and r.timestamp.date() == date(2026, 3, 8)] == [
        utc(2026, 3, 8, 7, 30)
    ]
    repeated = SpaceModel(events=[(utc(2026, 11, 1, 5), 1)], daily_reset=time(1, 30), time_zone="America/New_York")
    assert [
        r.timestamp for r in repeated.rows if r.kind == DAILY_RESET and r.timestamp.date() == date(2026, 11, 1)
    ] == [utc(2026, 11, 1, 5, 30)]


def test_a_day_bucket_is_23_hours_across_spring_forward_and_25_across_fall_back(reader_client):
    lobby = room(time_zone="America/New_York")
    # One person in from the day before each change, out 11.5 h (spring) and 12.5 h (fall) after local midnight:
    # half of a 23 h and of a 25 h day.
    lobby.ingest((utc(2026, 3, 7, 12), 1), (utc(2026, 3, 8, 16, 30), -1))
    lobby.ingest((utc(2026, 10, 31, 12), 1), (utc(2026, 11, 1, 16, 30), -1))

    spring = _buckets(reader_client, lobby.space, start="2026-03-08", end="2026-03-10", interval="1d")
    fall = _buckets(reader_client, lobby.space, start="2026-11-01", end="2026-11-03", interval="1d")

    assert [(b["start"], b["end"]) for b in spring] == [
        ("2026-03-08T05:00:00.000Z", "2026-03-09T04:00:00.000Z"),
        ("2026-03-09T04:00:00.000Z", "2026-03-10T04:00:00.000Z"),
    ]
    assert [_hours(b) for b in spring] == [23, 24]
    assert [(b["start"], b["end"]) for b in fall] == [
        ("2026-11-01T04:00:00.000Z", "2026-11-02T05:00:00.000Z"),
        ("2026-11-02T05:00:00.000Z", "2026-11-03T05:00:00.000Z"),
    ]
    assert [_hours(b) for b in fall] == [25, 24]
    assert spring[0]["average"] == pytest.approx(0.5) and fall[0]["average"] == pytest.approx(0.5)


@pytest.mark.parametrize("reset_first", [False, True], ids=["events-then-reset", "reset-then-late-events"])
def test_events_at_a_resets_instant_apply_before_it(staff_client, reset_first):
    lobby = room()
    at = utc(2026, 5, 4, 10)
    lobby.ingest((utc(2026, 5, 4, 9), 1), (utc(2026, 5, 4, 9, 1), 1), (utc(2026, 5, 4, 9, 2), 1))

    def post_reset():
        response = staff_client.post(
            f"/space/{lobby.space.pk}/resets", {"timestamp": iso(at), "count": 1}, format="json"
        )
        assert response.status_code == 201, response.content

    if reset_first:
        post_reset()
    lobby.ingest((at, 1, 1), (at, 1, 2), (at, -1, 1))  # two entrances and an exit at the reset's instant
    if not reset_first:
        post_reset()
    lobby.ingest((at + timedelta(minutes=5), 1))

    # 3, then +1 +1 -1 at `at` (5 at most), then the reset to 1, then one more.
    assert _count(staff_client, lobby.space, at - MS) == 3
    assert _count(staff_client, lobby.space, at) == 1
    assert _count(staff_client, lobby.space, at + timedelta(minutes=5)) == 2
    (bucket,) = _buckets(staff_client, lobby.space, start=iso(at), end=iso(at + timedelta(hours=1)))
    assert (bucket["min"], bucket["max"], bucket["max_at"]) == (1, 5, iso(at))
    assert (bucket["entrances"], bucket["exits"], bucket["count"]) == (3, 1, 2)


def test_daily_reset_at_a_skipped_local_time_is_read_with_the_offset_before_the_change(reader_client):
    # New York skips 02:00-03:00 on 2026-03-08: 02:30 read with EST (the offset before) is 07:30Z, which the clocks
    # there show as 03:30 EDT. 02:30 EDT (06:30Z) would be the other reading.
    lobby = room(time_zone="America/New_York", daily_reset=time(2, 30))
    lobby.ingest((utc(2026, 3, 8, 6), 1, 1), (utc(2026, 3, 8, 6), 1, 2))

    assert _count(reader_client, lobby.space, utc(2026, 3, 8, 6, 30)) == 2
    assert _count(reader_client, lobby.space, utc(2026, 3, 8, 7, 30) - MS) == 2
    assert _count(reader_client, lobby.space, utc(2026, 3, 8, 7, 30)) == 0
    assert SpaceOccupancy.objects.filter(space=lobby.space, kind=SpaceOccupancy.Kind.DAILY_RESET).filter(
        timestamp__date=date(2026, 3, 8)
    ).values_list("timestamp", flat=True).get() == utc(2026, 3, 8, 7, 30)


def test_daily_reset_at_a_repeated_local_time_is_its_first_occurrence(reader_client):
    # New York repeats 01:00-02:00 on 2026-11-01: 01:30 is first 05:30Z (EDT), then 06:30Z (EST). Only the first
    # resets: a person who came in between keeps counting.
    lobby = room(time_zone="America/New_York", daily_reset=time(1, 30))
    lobby.ingest((utc(2026, 11, 1, 5), 1), (utc(2026, 11, 1, 5, 10), 1), (utc(2026, 11, 1, 6), 1))

    assert _count(reader_client, lobby.space, utc(2026, 11, 1, 5, 30) - MS) == 2
    assert _count(reader_client, lobby.space, utc(2026, 11, 1, 5, 30)) == 0
    assert _count(reader_client, lobby.space, utc(2026, 11, 1, 6, 30)) == 1
    assert _count(reader_client, lobby.space, utc(2026, 11, 1, 7)) == 1


@pytest.mark.parametrize("reset_first", [False, True], ids=["events-then-reset", "reset-then-late-events"])
def test_an_operators_reset_at_the_instant_of_a_daily_reset_wins(reader_client, reset_first):
    lobby = room(time_zone="Europe/Berlin", daily_reset=time(4, 0))
    daily = utc(2026, 1, 11, 3)  # 04:00 in Berlin (CET)

    def operator_reset():
        with clock(SERVICE_NOW):
            reset_create(space=lobby.space, timestamp=daily, count=3, now=SERVICE_NOW)

    if reset_first:
        operator_reset()
    lobby.ingest((utc(2026, 1, 10, 20), 1), (utc(2026, 1, 11, 3, 30), 1))
    if not reset_first:
        operator_reset()

    assert _count(reader_client, lobby.space, daily - MS) == 1
    assert _count(reader_client, lobby.space, daily) == 3
    assert _count(reader_client, lobby.space, utc(2026, 1, 11, 3, 30)) == 4
    assert _count(reader_client, lobby.space, utc(2026, 1, 12, 3)) == 0  # the next day's daily reset still applies
    assert occupancy_check() == []


@pytest.mark.parametrize("earlier_event", [False, True], ids=["reset-alone", "after-an-event"])
def test_the_next_daily_reset_follows_an_operators_reset_at_a_daily_reset_instant(staff_client, earlier_event):
    lobby = room(daily_reset=time(1, 30))
    reset_at = utc(2026, 6, 16, 1, 30)  # at that day's daily reset: the operator's count wins there ...
    if earlier_event:
        lobby.ingest((utc(2026, 6, 15, 12), 1))
    response = staff_client.post(f"/space/{lobby.space.pk}/resets", {"timestamp": iso(reset_at), "count": 3}, "json")
    assert response.status_code == 201, response.content

    assert _count(staff_client, lobby.space, reset_at) == 3
    assert _count(staff_client, lobby.space, utc(2026, 6, 17, 1, 30) - MS) == 3
    # ... and the next day's daily reset sets it to 0, as every day's does.
    assert _count(staff_client, lobby.space, utc(2026, 6, 17, 1, 30)) == 0
    assert _count(staff_client, lobby.space, utc(2026, 6, 18)) == 0


def test_a_local_start_begins_with_the_count_at_that_local_instant(reader_client):
    # Local midnight of 8 March in New York is 05:00Z; the person who came in at 04:45Z is there all along.
    lobby = room(time_zone="America/New_York")
    lobby.ingest((utc(2026, 3, 8, 4, 45), 1))

    for start in ("2026-03-08", "2026-03-08T00:00"):
        (bucket,) = _buckets(reader_client, lobby.space, start=start, end="2026-03-08T07:00Z")
        assert bucket["start"] == "2026-03-08T05:00:00.000Z"
        assert (bucket["count"], bucket["min"], bucket["max"], bucket["average"]) == (1, 1, 1, 1), start


def test_count_is_zero_after_a_daily_reset_with_no_events_since(reader_client):
    lobby = room(time_zone="Europe/Berlin", daily_reset=time(4, 0))
    lobby.ingest((utc(2026, 1, 10, 20), 1), (utc(2026, 1, 10, 20, 5), 1), (utc(2026, 1, 10, 21), 1))

    assert _count(reader_client, lobby.space, utc(2026, 1, 11, 3) - MS) == 3  # 03:59:59.999 in Berlin
    assert _count(reader_client, lobby.space, utc(2026, 1, 11, 4)) == 0  # 05:00 in Berlin, nothing since 04:00
    (bucket,) = _buckets(reader_client, lobby.space, start="2026-01-11T00:00", end="2026-01-11T06:00")  # local
    assert (bucket["count"], bucket["min"], bucket["max"]) == (0, 0, 3)
    assert bucket["average"] == pytest.approx(3 * 4 / 6)  # 3 from midnight to 04:00 local, then 0


@contextmanager
def recount_spy() -> Iterator[list]:
    """The scopes of every Sql.recount made inside."""
    scopes: list = []
    original = Sql.recount

    def recount(self, scopes_, **options):
        scopes.extend(scopes_)
        return original(self, scopes_, **options)

    with mock.patch.object(Sql, "recount", recount):
        yield scopes


def _states(space: Space) -> dict[int, tuple]:
    """Each row of `space` by id: (timestamp, kind, count, status, modified)."""
    return {
        pk: tuple(rest)
        for pk, *rest in SpaceOccupancy.objects.filter(space=space).values_list(
            "id", "timestamp", "kind", "count", "status", "modified"
        )
    }


def _row_id(space: Space, at: datetime) -> int:
    return SpaceOccupancy.objects.filter(space=space, timestamp=at).values_list("id", flat=True).get()


@contextmanager
def tampered(space: Space, at: datetime) -> Iterator[None]:
    """The row of `space` at `at` holds a wrong count (99) inside, its own count again after: a recount that
    reached it would have put it right."""
    row = SpaceOccupancy.objects.get(space=space, timestamp=at)
    SpaceOccupancy.objects.filter(pk=row.pk).update(count=99)
    yield
    assert SpaceOccupancy.objects.values_list("count", flat=True).get(pk=row.pk) == 99, "the recount reached it"
    SpaceOccupancy.objects.filter(pk=row.pk).update(count=row.count)


def test_late_event_before_a_reset_recounts_only_up_to_the_reset():
    lobby = room()
    reset_at = utc(2026, 5, 4, 11)
    old = utc(2026, 5, 5)
    lobby.ingest((utc(2026, 5, 4, 10), 1), (utc(2026, 5, 4, 10, 10), 1), now=old)
    with clock(old):
        reset_create(space=lobby.space, timestamp=reset_at, count=5, now=old)
    after_reset = [reset_at + timedelta(minutes=m) for m in range(10, 200, 10)]
    lobby.ingest(*[(instant, 1 if n % 2 else -1) for n, instant in enumerate(after_reset)], now=old)
    before = _states(lobby.space)

    late = old + timedelta(days=1)
    with recount_spy() as scopes, tampered(lobby.space, after_reset[-1]):
        lobby.ingest((utc(2026, 5, 4, 10, 5), -1), now=late)

    after = _states(lobby.space)
    # Every row from the reset on counts what it did and was not rewritten (`modified` is its last change). Its
    # status may have moved from pending to settled: ingest settles what has aged.
    from_reset = {pk: _unchanged(state) for pk, state in before.items() if state[0] >= reset_at}
    assert len(from_reset) == 1 + len(after_reset)
    assert {pk: _unchanged(after[pk]) for pk in from_reset} == from_reset
    # The recount stopped at the reset: scoped up to its instant, and it left the last row's wrong count alone.
    assert [(scope.space_id, scope.until) for scope in scopes] == [(lobby.space.pk, reset_at)]
    # Before the reset: the late row is the only new one, the row after it lost one and is pending again; nothing
    # else changed.
    late_row, next_row = (_row_id(lobby.space, utc(2026, 5, 4, 10, m)) for m in (5, 10))
    assert set(after) - set(before) == {late_row}
    assert after[next_row][2:] == (1, SpaceOccupancy.Status.PENDING, late)
    assert {pk for pk, state in after.items() if state[4] == late} == {late_row, next_row}
    assert [after[pk][2] for pk in sorted(after, key=lambda pk: after[pk][:2])][:4] == [1, 0, 1, 5]


def _unchanged(state: tuple) -> tuple:
    """What a rewrite of a row changes: all but its status, which settling changes too."""
    timestamp, kind, count, _, modified = state
    return (timestamp, kind, count, modified)


def test_late_event_in_an_old_day_changes_no_row_of_a_later_day(reader_client):
    lobby = room(time_zone="Europe/Berlin", daily_reset=time(4, 0))
    old = utc(2026, 3, 10)
    day_two = utc(2026, 3, 2, 3)  # 04:00 on 2 March in Berlin
    moves = []
    for day in (1, 2, 3):
        moves += [(utc(2026, 3, day, 10), 1), (utc(2026, 3, day, 11), 1), (utc(2026, 3, day, 12), -1)]
    lobby.ingest(*moves, now=old)
    before = _states(lobby.space)

    late = old + timedelta(days=1)
    # Its second row: the first (10:00) is read again to rewrite the five-minute blocks up to it.
    with recount_spy() as scopes, tampered(lobby.space, utc(2026, 3, 2, 11)):
        lobby.ingest((utc(2026, 3, 1, 10, 30), 1), now=late)

    after = _states(lobby.space)
    later_days = {pk: state for pk, state in before.items() if state[0] >= day_two}
    assert len(later_days) == 9  # 6 events and the daily resets of 2, 3 and 4 March
    assert {pk: after[pk] for pk in later_days} == later_days
    # The recount ended at the next daily reset, and never reached the first row of the next day.
    assert [(scope.space_id, scope.until) for scope in scopes] == [(lobby.space.pk, day_two)]
    # Day one counts the late person until its daily reset.
    assert _count(reader_client, lobby.space, utc(2026, 3, 1, 12)) == 2
    assert _count(reader_client, lobby.space, day_two - MS) == 2
    assert _count(reader_client, lobby.space, day_two) == 0
    assert occupancy_check() == []


def test_a_bucket_is_unsettled_while_a_row_in_it_or_holding_its_starting_count_changed_recently(reader_client):
    lobby = room()
    old = utc(2026, 5, 5)
    lobby.ingest((utc(2026, 5, 4, 10, 10), 1), (utc(2026, 5, 4, 12, 10), 1), now=old)
    with clock(old):
        reset_create(space=lobby.space, timestamp=utc(2026, 5, 4, 11, 30), count=4, now=old)
    occupancy_settle(now=old + 2 * SETTLE_AFTER)
    api_now = utc(2026, 5, 6)
    # A late event just now: the rows from it to the reset change (pending, modified now); the reset ends it.
    lobby.ingest((utc(2026, 5, 4, 10, 5), 1), now=api_now)

    with clock(api_now):
        buckets = _buckets(
            reader_client, lobby.space, start="2026-05-04T10:00Z", end="2026-05-04T14:00Z", interval="1h"
        )
        at_10_30 = reader_client.get(f"/space/{lobby.space.pk}/count", {"ts": "2026-05-04T10:30Z"}).json()
        at_12_30 = reader_client.get(f"/space/{lobby.space.pk}/count", {"ts": "2026-05-04T12:30Z"}).json()

    # 10-11: its rows changed. 11-12: its reset row did not, but its starting count (10:10's row) did. 12-13 and
    # 13-14: nothing of theirs changed.
    assert [(b["count"], b["settled"]) for b in buckets] == [(2, False), (4, False), (5, True), (5, True)]
    assert (at_10_30["count"], at_10_30["settled"]) == (2, False)
    assert (at_12_30["count"], at_12_30["settled"]) == (5, True)


def test_occupancy_check_finds_no_difference_once_rows_have_settled():
    # Settling changes whether a row may still change, not what it counts: the stored occupancy still equals a
    # rebuild, and the check must say so (or `manage.py occupancy_check` fails on every healthy database).
    lobby = room()
    written = utc(2026, 6, 1)
    lobby.ingest((utc(2026, 5, 31, 23, 50), 1), now=written)  # younger than the settle age: pending
    assert occupancy_check() == []

    assert occupancy_settle(now=written + 2 * SETTLE_AFTER) == 1

    assert occupancy_check() == []


def test_occupancy_check_finds_no_difference_where_a_rebuild_lays_more_daily_resets():
    # Two ingests a day apart: the incremental path lays the daily reset after each event (15 and 17 June); a
    # rebuild lays one every day from the first row to the last (16 June too), on a count of 0 already. That extra
    # one changes no count, so it is no difference, in the rows or in what sums them up.
    lobby = room(daily_reset=time(2, 30))
    lobby.ingest((utc(2026, 6, 15, 1), 1))
    lobby.ingest((utc(2026, 6, 16, 3), 1))

    assert occupancy_check() == []
