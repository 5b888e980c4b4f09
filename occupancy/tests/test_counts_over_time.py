"""Counts over time (`/space/<id>/counts`, `/counts`) and at an instant (`/space/<id>/count`) against the reference
model of occupancy.tests.reference, with operators' resets, daily resets and local days across DST changes; a late
event recounts only up to the next reset; the incremental path equals a rebuild from scratch."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from dpu.services import EventIn, event_ingest
from dpu.tests.factories import DpuAssignmentFactory, DpuFactory
from occupancy.models import OccupancyBlock, OccupancyReset, SpaceOccupancy
from occupancy.selectors import space_count_at
from occupancy.services import occupancy_check, occupancy_rebuild, reset_create, reset_delete
from occupancy.tests.factories import INSTALLED, clock, floorplan
from occupancy.tests.reference import SpaceModel, bucket_edges, iso, placed
from spaces.models import Space
from spaces.services import space_update
from spaces.tests.factories import DoorwayFactory

pytestmark = pytest.mark.django_db

# The explicit cases' writes' `now`: after all their events (2026), and the clock the reset rules check against.
SERVICE_NOW = datetime(2026, 11, 20, tzinfo=UTC)
SETTLE_AFTER = django_settings.OCCUPANCY_SETTLE_AFTER
MS = timedelta(milliseconds=1)
GRID = timedelta(minutes=15)  # every UTC offset of ZONES is a multiple of it: events meet daily resets and edges

ZONES = ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "UTC", "Asia/Kathmandu"]
# The 2026 DST changes of ZONES (UTC instants); Lord Howe moves by 30 minutes. Histories and ranges are drawn
# around one of them, so that local days of 23, 23.5, 24.5 and 25 hours are common.
DST_CHANGES = {
    "America/New_York": [datetime(2026, 3, 8, 7, tzinfo=UTC), datetime(2026, 11, 1, 6, tzinfo=UTC)],
    "Europe/Berlin": [datetime(2026, 3, 29, 1, tzinfo=UTC), datetime(2026, 10, 25, 1, tzinfo=UTC)],
    "Australia/Lord_Howe": [datetime(2026, 4, 4, 15, tzinfo=UTC), datetime(2026, 10, 3, 15, 30, tzinfo=UTC)],
}
PLAIN_DAY = datetime(2026, 6, 15, 12, tzinfo=UTC)

# The building: floorplan()'s doorways X (outside | A) and Z (B | A), and W (outside | B). For each DPU, the space a
# +1 enters and the one it leaves (None: outside). 700 hangs over X facing outside: its +1 leaves A.
LAYOUT = {283: ("A", None), 423: ("A", "B"), 512: ("B", None), 700: (None, "A")}
# Edges on five-minute marks are read from the five-minute blocks, others from the rows: both, with odd starts,
# ends and 7m.
INTERVALS = [None, "5m", "7m", "15m", "1h", "90m", "6h", "1d", "2d", "1w"]
OFF_THE_MARK = [timedelta(0), timedelta(0), timedelta(0), MS, timedelta(minutes=7), timedelta(seconds=150)]


# Each example builds a history through the services: no deadline, and no explain phase, which reruns a failing
# example many times over to say which lines only it ran.
EXAMPLES = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture],
    "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
}


def _cutoff(now: datetime) -> datetime:
    return now - SETTLE_AFTER


# --- Histories: events, operators' resets and settings changes, in the order they reach the service -------------


@dataclass(frozen=True)
class SpaceSettings:
    time_zone: str
    daily_reset: time | None
    allow_negative: bool
    capacity: int | None

    def changes(self) -> dict:
        return {
            "time_zone": self.time_zone,
            "daily_reset": self.daily_reset,
            "allow_negative": self.allow_negative,
            "capacity": self.capacity,
        }


@dataclass(frozen=True)
class History:
    anchor: datetime  # the instant everything is drawn around
    settings: dict[str, SpaceSettings]  # each space's settings before the first step
    steps: list[tuple]  # ("ingest", [EventIn]), ("reset", space, timestamp, count), ("update", space, settings)
    deleted: list[tuple[str, datetime]] = field(default_factory=list)  # resets deleted after the steps

    @property
    def written_at(self) -> datetime:
        """The `now` of every write: after every event and reset (all within 30 hours of the anchor)."""
        return self.anchor + timedelta(days=2)

    def final_settings(self) -> dict[str, SpaceSettings]:
        final = dict(self.settings)
        for step in self.steps:
            if step[0] == "update":
                final[step[1]] = step[2]
        return final

    def events(self) -> list[EventIn]:
        return [e for step in self.steps if step[0] == "ingest" for e in step[1]]

    def resets(self) -> dict[str, list[tuple[datetime, int]]]:
        kept = {"A": [], "B": []}
        for step in self.steps:
            if step[0] == "reset" and (step[1], step[2]) not in self.deleted:
                kept[step[1]].append((step[2], step[3]))
        return kept

    def models(self) -> dict[str, SpaceModel]:
        """Each space's reference model: its final settings, the events mapped through LAYOUT (exact repeats
        once) and the resets not deleted."""
        mapped = {"A": [], "B": []}
        for serial, timestamp, direction in {(e.serial, e.timestamp, e.direction) for e in self.events()}:
            enters, leaves = LAYOUT[serial]
            if enters:
                mapped[enters].append((timestamp, direction))
            if leaves:
                mapped[leaves].append((timestamp, -direction))
        resets = self.resets()
        return {
            name: SpaceModel(events=mapped[name], resets=resets[name], **settings.changes())
            for name, settings in self.final_settings().items()
        }


def grid_instants(anchor: datetime) -> st.SearchStrategy[datetime]:
    """Instants within 30 hours of `anchor` on the 15-minute grid, some a millisecond off it."""
    return st.builds(
        lambda k, ms: anchor + GRID * k + MS * ms, st.integers(-120, 120), st.sampled_from([0, 0, 0, 1, -1])
    )


DAILY_RESETS = (
    st.none()
    | st.sampled_from([time(2, 30), time(1, 30), time(2, 0), time(2, 15), time(0, 0)])
    | st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
)


@st.composite
def space_settings(draw, *, allow_negative: bool | None = None) -> SpaceSettings:
    return SpaceSettings(
        time_zone=draw(st.sampled_from(ZONES)),
        daily_reset=draw(DAILY_RESETS),
        allow_negative=draw(st.booleans()) if allow_negative is None else allow_negative,
        capacity=draw(st.none() | st.integers(1, 8)),
    )


@st.composite
def histories(draw) -> History:
    settings_before = {"A": draw(space_settings()), "B": draw(space_settings())}
    zones = sorted({s.time_zone for s in settings_before.values()})
    anchor = draw(st.sampled_from([change for zone in zones for change in DST_CHANGES.get(zone, [])] + [PLAIN_DAY]))
    events = draw(
        st.lists(
            st.builds(
                EventIn,
                serial=st.sampled_from(sorted(LAYOUT)),
                timestamp=grid_instants(anchor),
                direction=st.sampled_from([1, -1]),
            ),
            max_size=24,
        )
    )
    # Arrival: shuffled, in batches, some events sent twice.
    order = draw(st.permutations(events))
    cuts = sorted(draw(st.sets(st.integers(1, len(order) - 1), max_size=4))) if len(order) > 1 else []
    bounds = [0, *cuts, len(order)]
    steps = [("ingest", order[i:j]) for i, j in zip(bounds, bounds[1:], strict=False) if i < j]
    if events:
        steps.append(("ingest", draw(st.lists(st.sampled_from(events), max_size=3))))
    deleted = []
    for name, before in settings_before.items():
        low = -3 if before.allow_negative else 0
        resets = draw(
            st.lists(st.tuples(grid_instants(anchor), st.integers(low, 6)), max_size=3, unique_by=lambda r: r[0])
        )
        steps += [("reset", name, timestamp, count) for timestamp, count in resets]
        deleted += [(name, timestamp) for timestamp, _ in resets if draw(st.sampled_from([False, False, False, True]))]
        if draw(st.sampled_from([False, False, True])):
            # A change of time zone or daily reset recalculates the whole history; allow_negative stays.
            steps.append(("update", name, draw(space_settings(allow_negative=before.allow_negative))))
    steps = draw(st.permutations(steps))
    return History(anchor=anchor, settings=settings_before, steps=steps, deleted=deleted)


@dataclass(frozen=True)
class Building:
    spaces: dict[str, Space]


def play(history: History) -> Building:
    """Build the building and run the history's steps through the services, all at `history.written_at`."""
    plan = floorplan()
    w = DoorwayFactory(name="W", side_a=None, side_b=plan.b)
    DpuAssignmentFactory(dpu=DpuFactory(serial=512), doorway=w, enters=plan.b, valid_from=INSTALLED)
    DpuAssignmentFactory(dpu=DpuFactory(serial=700), doorway=plan.x, enters=None, valid_from=INSTALLED)
    spaces = {"A": plan.a, "B": plan.b}
    made: dict[tuple[str, datetime], OccupancyReset] = {}
    now = history.written_at
    with clock(now):
        for name, before in history.settings.items():
            space_update(space=spaces[name], now=now, **before.changes())
        for step in history.steps:
            if step[0] == "ingest":
                event_ingest(events=step[1], now=now)
            elif step[0] == "reset":
                _, name, timestamp, count = step
                made[(name, timestamp)] = reset_create(space=spaces[name], timestamp=timestamp, count=count, now=now)
            else:
                space_update(space=spaces[step[1]], now=now, **step[2].changes())
        for key in history.deleted:
            reset_delete(reset=made[key], now=now)
    return Building(spaces=spaces)


# --- What the API should answer --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RangeParam:
    """`start` or `end` as sent (`text`) and as the model reads it (`value`: naive means local time in the zone)."""

    text: str
    value: datetime


@st.composite
def range_params(draw, near: datetime, zone: ZoneInfo, *, end: bool = False) -> RangeParam:
    """The instant `near` (sometimes moved off the five-minute marks) written in UTC, with an offset, as local wall
    time in `zone` (in a DST gap or overlap now and then, read with fold=0), or as its local date: that day's
    midnight, or for an `end` the next one."""
    kind = draw(st.sampled_from(["utc", "offset", "local", "date"]))
    if kind == "date":
        day = near.astimezone(zone).date() + timedelta(days=int(end))
        return RangeParam(day.isoformat(), datetime.combine(day, time()))
    near += draw(st.sampled_from(OFF_THE_MARK))
    if kind == "local":
        wall = near.astimezone(zone).replace(tzinfo=None)
        return RangeParam(wall.isoformat(timespec="milliseconds"), wall)
    if kind == "offset":
        offset = draw(
            st.sampled_from([timedelta(hours=-4), timedelta(hours=5, minutes=45), timedelta(hours=10, minutes=30)])
        )
        return RangeParam(near.astimezone(timezone(offset)).isoformat(timespec="milliseconds"), near)
    return RangeParam(iso(near), near)


@dataclass(frozen=True)
class Query:
    start: RangeParam
    end: RangeParam
    interval: str | None
    tz: str | None

    def params(self) -> dict:
        params = {"start": self.start.text, "end": self.end.text}
        if self.interval is not None:
            params["interval"] = self.interval
        if self.tz is not None:
            params["tz"] = self.tz
        return params

    def zone_of(self, settings_: SpaceSettings) -> str:
        return self.tz or settings_.time_zone

    def is_empty_for(self, settings_: SpaceSettings) -> bool:
        zone = ZoneInfo(self.zone_of(settings_))
        return placed(self.start.value, zone) >= placed(self.end.value, zone)


@st.composite
def queries(draw, anchor: datetime, settings_: dict[str, SpaceSettings]) -> Query:
    tz = draw(st.none() | st.sampled_from(ZONES))
    local = ZoneInfo(tz or settings_["A"].time_zone)
    start = draw(range_params(anchor + GRID * draw(st.integers(-144, 96)), local))
    # Up to two days long: ends drawn after the start (a local end may still fall before it, in a DST overlap).
    end = draw(range_params(placed(start.value, local) + GRID * draw(st.integers(1, 192)), local, end=True))
    return Query(start=start, end=end, interval=draw(st.sampled_from(INTERVALS)), tz=tz)


def expected_series(model: SpaceModel, space: Space, query: Query, settings_: SpaceSettings, cutoff: datetime):
    zone_name = query.zone_of(settings_)
    zone = ZoneInfo(zone_name)
    start, end = placed(query.start.value, zone), placed(query.end.value, zone)
    return {
        "space_id": space.pk,
        "time_zone": zone_name,
        "start": iso(start),
        "end": iso(end),
        "interval": query.interval,
        "buckets": model.buckets(bucket_edges(start, end, query.interval, zone), cutoff=cutoff),
    }


def assert_series_equal(got: dict, expected: dict) -> None:
    """Every field of every bucket; the average, which the database sums in floating point, approximately."""
    got_buckets, expected_buckets = got.pop("buckets"), expected.pop("buckets")
    assert got == expected
    assert [(b["start"], b["end"]) for b in got_buckets] == [(b["start"], b["end"]) for b in expected_buckets]
    for got_bucket, expected_bucket in zip(got_buckets, expected_buckets, strict=True):
        expected_bucket = {**expected_bucket, "average": pytest.approx(expected_bucket["average"], rel=1e-6, abs=1e-5)}
        assert got_bucket == expected_bucket, f"bucket {got_bucket['start']}"


# --- 1. The API against the model, over random histories --------------------------------------------------------


@settings(max_examples=40, **EXAMPLES)
@given(history=histories(), data=st.data())
def test_counts_over_time_and_at_an_instant_follow_the_reference_model(reader_client, history, data):
    final = history.final_settings()
    first, second = (data.draw(queries(history.anchor, final), label=f"query {n}") for n in (1, 2))
    assume(not any(query.is_empty_for(final[name]) for query in (first, second) for name in final))
    # Now is an hour or more after every write: no row changed within the settle age, and the model's `settled` is
    # the bucket's end against the cutoff alone. Ranges reach past it.
    api_now = history.written_at + GRID * data.draw(st.integers(4, 160), label="now, in steps after the writes")
    cutoff = _cutoff(api_now)
    models = history.models()

    with transaction.atomic():
        building = play(history)
        a = building.spaces["A"]
        with clock(api_now):
            one = reader_client.get(f"/space/{a.pk}/counts", first.params())
            order = data.draw(st.sampled_from([["A", "B"], ["B", "A"], ["B"]]), label="spaces asked")
            ids = ",".join(str(building.spaces[name].pk) for name in order)
            several = reader_client.get("/counts", {**second.params(), "spaces": ids})
            # Counts at instants: rows of the model (the daily resets among them), a millisecond either side.
            candidates = [row.timestamp + MS * d for row in models["A"].rows for d in (-1, 0, 1)]
            instants = data.draw(
                st.lists(st.sampled_from(candidates), max_size=6) if candidates else st.just([]), label="count at"
            )
            at_instants = [reader_client.get(f"/space/{a.pk}/count", {"ts": iso(t)}) for t in instants]
        transaction.set_rollback(True)

    assert one.status_code == 200, one.content
    assert_series_equal(one.json(), expected_series(models["A"], a, first, final["A"], cutoff))
    assert several.status_code == 200, several.content
    got = several.json()
    assert [series["space_id"] for series in got] == [building.spaces[name].pk for name in order]
    for name, series in zip(order, got, strict=True):
        assert_series_equal(series, expected_series(models[name], building.spaces[name], second, final[name], cutoff))
    for instant, response in zip(instants, at_instants, strict=True):
        assert response.json() == {
            "space_id": a.pk,
            "ts": iso(instant),
            "count": models["A"].count_at(instant),
            "settled": instant <= cutoff,
        }


# --- 3. The incremental path equals a rebuild from scratch ------------------------------------------------------


@settings(max_examples=30, **EXAMPLES)
@given(history=histories())
def test_incremental_rows_equal_a_rebuild_from_scratch(history):
    models = history.models()
    with transaction.atomic():
        building = play(history)
        check_incremental = occupancy_check()
        # Every row's instant and the one just before it: the rows the incremental path wrote, and the model's (a
        # daily reset every day: so also every daily reset row a rebuild may lay where the incremental path did not).
        instants = {
            name: {*SpaceOccupancy.objects.filter(space=space).values_list("timestamp", flat=True)}
            | {row.timestamp for row in models[name].rows}
            for name, space in building.spaces.items()
        }

        def counts() -> dict[tuple[str, datetime], int]:
            return {
                (name, at): space_count_at(space=space, at=at, now=history.written_at).count
                for name, space in building.spaces.items()
                for instant in instants[name]
                for at in (instant - MS, instant)
            }

        incremental = counts()
        SpaceOccupancy.objects.all().delete()
        OccupancyBlock.objects.all().delete()
        occupancy_rebuild(now=history.written_at)
        rebuilt = counts()
        check_rebuilt = occupancy_check()
        transaction.set_rollback(True)

    assert check_incremental == []
    assert rebuilt == incremental
    assert check_rebuilt == []
    assert incremental == {(name, at): models[name].count_at(at) for name, at in incremental}
