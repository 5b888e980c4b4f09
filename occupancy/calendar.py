"""Local time: a space's daily reset instants, and the edges of buckets of counts over time.

Every local time of day is read as Python's zoneinfo reads it with fold=0: a time that a daylight-saving change
skips takes the offset in force before the change (02:30 on the night New York skips 02:00-03:00 is 07:30Z), and
a time that happens twice is its first occurrence (01:30 on the night New York repeats 01:00-02:00 is 05:30Z).
PostgreSQL's AT TIME ZONE picks the other occurrence, so none of this is left to the database.
"""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MAX_BUCKETS = 10_000


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The instant (UTC) of local time `at` on `day` in `zone`, read with fold=0."""
    return datetime.combine(day, at.replace(tzinfo=None, fold=0), tzinfo=zone).astimezone(UTC)


def placed(instant: datetime, zone: ZoneInfo) -> datetime:
    """An instant as it is; a naive datetime is local time in `zone`, read with fold=0."""
    if instant.tzinfo is None:
        return instant.replace(tzinfo=zone, fold=0).astimezone(UTC)
    return instant


@dataclass(frozen=True)
class DailyReset:
    """A space's daily reset: every day at local time `at` in `zone` its count is set to 0."""

    at: time
    zone: ZoneInfo

    def on(self, day: date) -> datetime:
        return local_instant(day, self.at, self.zone)

    def next(self, instant: datetime, *, strictly_after: bool = False) -> datetime:
        """The first daily reset at or after `instant` (after it, when `strictly_after`).

        A daily reset at the instant of an event applies after the event, so an event's next reset is at or after
        it; an operator's reset at the instant of a daily one wins, so its next daily reset is strictly after.
        """
        # Local days are 23 to 25 hours long: the day before the instant's local date is early enough to start.
        day = instant.astimezone(self.zone).date() - timedelta(days=1)
        while True:
            candidate = self.on(day)
            if candidate > instant or (candidate == instant and not strictly_after):
                return candidate
            day += timedelta(days=1)

    def between(self, first: datetime, last: datetime) -> list[datetime]:
        """Every daily reset from the next at or after `first` to the next after `last`, in order: the daily
        resets the rows from `first` to `last` need, whichever kind the row at `last` is (one more changes
        nothing: it sets 0 where the count is 0 already)."""
        instants = [self.next(first)]
        end = self.next(last, strictly_after=True)
        day = instants[0].astimezone(self.zone).date()
        while instants[-1] < end:
            day += timedelta(days=1)
            instants.append(self.on(day))
        return instants


INTERVAL = re.compile(r"([1-9][0-9]{0,6})([mhdw])")
UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class Interval:
    """A bucket length: `n` minutes or hours (fixed lengths), or `n` local calendar days or weeks."""

    n: int
    unit: str  # m, h, d or w

    @classmethod
    def parse(cls, text: str) -> "Interval":
        match = INTERVAL.fullmatch(text.strip())
        if match is None:
            raise ValueError(
                f"{text[:40]!r} is not an interval: a whole number from 1 and a unit, m (minutes), h (hours), "
                "d (days) or w (weeks), such as 15m, 1h, 1d or 1w."
            )
        return cls(int(match[1]), match[2])

    def __str__(self) -> str:
        return f"{self.n}{self.unit}"

    @property
    def fixed(self) -> timedelta | None:
        """The length of every bucket, for minutes and hours; None for local days and weeks."""
        if self.unit in "mh":
            return timedelta(**{UNITS[self.unit]: self.n})
        return None

    @property
    def days(self) -> int:
        return self.n * (7 if self.unit == "w" else 1)


class TooManyBuckets(ValueError):
    def __init__(self):
        super().__init__(f"asks for more than {MAX_BUCKETS:,} buckets; use a longer interval or a shorter range.")


def bucket_edges(start: datetime, end: datetime, interval: Interval | None, zone: ZoneInfo) -> list[datetime]:
    """The edges of the buckets of [start, end): start, each bucket's end, ..., end (UTC, in order).

    Minutes and hours are fixed lengths from `start`. Days and weeks are local calendar days in `zone`: each
    edge is the local wall time of `start`, `days` later (read with fold=0), so a 1d bucket is 23 or 25 hours long
    across a daylight-saving change. The last bucket is cut at `end`. Raises TooManyBuckets past MAX_BUCKETS.
    """
    if interval is not None and interval.fixed is not None:
        step = interval.fixed
        count = -((start - end) // step)  # buckets: the last one cut at `end`
        if count > MAX_BUCKETS:
            raise TooManyBuckets
        return [start + step * k for k in range(count)] + [end]
    edges = [start]
    if interval is not None:
        local = start.astimezone(zone)
        k = 1
        while True:
            edge = local_instant(local.date() + timedelta(days=interval.days * k), local.time(), zone)
            if edge >= end:
                break
            if len(edges) >= MAX_BUCKETS:
                raise TooManyBuckets
            edges.append(edge)
            k += 1
    edges.append(end)
    return edges
