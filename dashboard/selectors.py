"""What the dashboard's pages show, read through the same selectors as the API."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Q
from django.utils import timezone

from dpu.models import DpuAssignment
from dpu.selectors import DpuHealth, dpu_health_fleet
from occupancy.calendar import Interval
from occupancy.models import OccupancyReset
from occupancy.selectors import space_get_with_count, space_list_with_counts, space_series
from spaces.models import Space

FIVE_MINUTES, QUARTER_HOUR, HOUR = Interval(5, "m"), Interval(15, "m"), Interval(1, "h")


@dataclass
class DpuReport:
    serial: int
    last_event: datetime | None  # the latest event it sent, by its own clock; None before its first


@dataclass
class SpaceCard:
    """One space on the overview: its count now and its local day so far."""

    space: Space  # annotated with `count`
    today: date
    buckets: list[dict]  # today in quarter hours, local midnight to midnight
    now: datetime
    dpus: list[DpuReport] = field(default_factory=list)

    @property
    def settled(self) -> bool:
        return all(bucket["settled"] for bucket in self.buckets)

    @property
    def peak(self) -> dict | None:
        """Today's highest count so far and the first instant it was reached (the first bucket that has it)."""
        begun = [bucket for bucket in self.buckets if bucket_instant(bucket["start"]) <= self.now]
        if not begun:
            return None
        top = max(begun, key=lambda bucket: bucket["max"])
        return {"count": top["max"], "at": bucket_instant(top["max_at"])}

    @property
    def percent_of_capacity(self) -> int | None:
        capacity = self.space.capacity
        return None if not capacity else round(100 * self.space.count / capacity)


@dataclass
class SpaceDay:
    """One local day of a space: 5-minute buckets, hourly flows, the day as one bucket, and its resets."""

    space: Space  # annotated with `count` (now)
    day: date
    start: datetime  # local midnight, aware
    end: datetime  # the next local midnight, aware (23 or 25 hours later on a daylight-saving day)
    buckets: list[dict]
    hours: list[dict]
    total: dict
    resets: list[OccupancyReset]
    dpus: list[DpuReport]


def bucket_instant(text: str) -> datetime:
    """An instant of a bucket's JSON (UTC, milliseconds, Z)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def local_today(space: Space, now: datetime | None = None) -> date:
    return timezone.localtime(now or timezone.now(), ZoneInfo(space.time_zone)).date()


def overview(*, now: datetime | None = None) -> list[SpaceCard]:
    """Every space by name, with its count now, today so far in its own time zone and its DPUs' last events.

    One statement per time zone for the days (space_series groups spaces by zone), one for the counts and one
    for the DPUs, whatever the number of spaces."""
    now = now or timezone.now()
    spaces = list(space_list_with_counts(at=now))
    by_day = defaultdict(list)
    for space in spaces:
        by_day[local_today(space, now)].append(space.pk)
    buckets = {}
    for today, space_ids in by_day.items():
        start = datetime.combine(today, time())  # naive: each space's own local midnight
        for series in space_series(
            space_ids=space_ids, start=start, end=start + timedelta(days=1), interval=QUARTER_HOUR, now=now
        ):
            buckets[series.space_id] = series.buckets()
    dpus = dpu_reports(space_ids=[space.pk for space in spaces])
    return [
        SpaceCard(space=space, today=local_today(space, now), buckets=buckets[space.pk], now=now, dpus=dpus[space.pk])
        for space in spaces
    ]


def space_day(*, space_id: int, day: date | None = None, now: datetime | None = None) -> SpaceDay:
    """One local day of a space (default today in its time zone); Http404 for an unknown space."""
    now = now or timezone.now()
    space = space_get_with_count(space_id=space_id, at=now)
    zone = ZoneInfo(space.time_zone)
    day = day or local_today(space, now)
    start, end = datetime.combine(day, time()), datetime.combine(day + timedelta(days=1), time())

    def series(interval: Interval | None) -> list[dict]:
        found = space_series(space_ids=[space.pk], start=start, end=end, interval=interval, zone=zone, now=now)
        return found[0].buckets()

    aware_start, aware_end = start.replace(tzinfo=zone), end.replace(tzinfo=zone)
    resets = OccupancyReset.objects.filter(space=space, timestamp__gte=aware_start, timestamp__lt=aware_end)
    return SpaceDay(
        space=space,
        day=day,
        start=aware_start,
        end=aware_end,
        buckets=series(FIVE_MINUTES),
        hours=series(HOUR),
        total=series(None)[0],
        resets=list(resets.select_related("created_by").order_by("timestamp")),
        dpus=dpu_reports(space_ids=[space.pk])[space.pk],
    )


def dpu_reports(*, space_ids: list[int]) -> dict[int, list[DpuReport]]:
    """The DPUs hanging over a doorway of each space now (an open assignment), each with its latest event: the
    DPU's own last_event_at, which ingest keeps, so one query whatever the log's size."""
    current = (
        DpuAssignment.objects.filter(valid_to__isnull=True)
        .filter(Q(doorway__side_a__in=space_ids) | Q(doorway__side_b__in=space_ids))
        .select_related("dpu", "doorway")
        .order_by("dpu__serial")
    )
    reports = {space_id: [] for space_id in space_ids}
    for assignment in current:
        for side in {side for side in assignment.doorway.sides if side in reports}:
            reports[side].append(DpuReport(serial=assignment.dpu.serial, last_event=assignment.dpu.last_event_at))
    return reports


def fleet(*, now: datetime) -> list[DpuHealth]:
    """Every DPU's health, worst first (dpu.selectors.worst_first), with the doorway it hangs over now."""
    return dpu_health_fleet(now=now)
