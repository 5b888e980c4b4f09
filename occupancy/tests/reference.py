"""A reference model of one space's counts, written from the counting rules alone, for tests to compare with.

Plain Python over plain data: the events already mapped to the space as (timestamp, delta) pairs, the operators'
resets as (timestamp, count) pairs, and the space's settings. It imports nothing of the code under test: daily
reset instants and bucket edges are worked out here with zoneinfo, from the rules as the README states them.

The rules it follows:
- the count at T is the count after every row at or before T (0 before the first);
- at one instant entrances apply before exits, then the daily reset, then an operator's reset (which wins);
- a count never goes below 0 unless the space allows negative counts; a -1 on an empty space is still an exit;
- after a reset counting continues from the reset's count (and so does the clamp at 0);
- a daily reset sets the count to 0 every local day at its local time, read with fold=0: a time a DST change skips
  takes the offset before the change, a time it repeats is its first occurrence.

A daily reset on a day when the count is 0 already changes nothing, so the model simply has one every day around
its events; which of those days the service writes a row for is its own business.
"""

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

ENTRANCE, EXIT, DAILY_RESET, RESET = 0, 1, 2, 3


def utc_of_local(wall: datetime, zone: ZoneInfo) -> datetime:
    """A naive local wall time in `zone` as an instant (UTC), read with fold=0."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def placed(instant: datetime, zone: ZoneInfo) -> datetime:
    """What the counts endpoint makes of `start` or `end`: an aware instant as it is, a naive one as local time."""
    return instant.astimezone(UTC) if instant.tzinfo is not None else utc_of_local(instant, zone)


def daily_reset_instants(at: time, zone: ZoneInfo, first: datetime, last: datetime) -> list[datetime]:
    """The daily resets of every local day from the day before `first` to the day after `last`, in order."""
    day = first.astimezone(zone).date() - timedelta(days=1)
    stop = last.astimezone(zone).date() + timedelta(days=1)
    instants = []
    while day <= stop:
        instants.append(utc_of_local(datetime.combine(day, at), zone))
        day += timedelta(days=1)
    return instants


def bucket_edges(start: datetime, end: datetime, interval: str | None, zone: ZoneInfo) -> list[datetime]:
    """The edges of the buckets of [start, end) (both aware): start, each bucket's end, ..., end.

    `interval` is `<N>m|h|d|w` or None (one bucket). Minutes and hours are fixed lengths from start; days and weeks
    are local calendar days in `zone`: edge k is the local wall time of start, k*N days later, read with fold=0.
    """
    edges = [start]
    if interval is not None:
        n, unit = int(interval[:-1]), interval[-1]
        wall = start.astimezone(zone).replace(tzinfo=None)
        k = 1
        while True:
            if unit == "m":
                edge = start + timedelta(minutes=n * k)
            elif unit == "h":
                edge = start + timedelta(hours=n * k)
            else:
                days = n * k * (7 if unit == "w" else 1)
                edge = utc_of_local(wall + timedelta(days=days), zone)
            if edge >= end:
                break
            edges.append(edge)
            k += 1
    edges.append(end)
    return edges


def iso(instant: datetime) -> str:
    """An instant as the API writes it: UTC, milliseconds, Z."""
    instant = instant.astimezone(UTC)
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Row:
    timestamp: datetime
    kind: int
    count: int  # after this row


class SpaceModel:
    """One space's history: its rows in order, each with the count after it."""

    def __init__(
        self,
        *,
        events: list[tuple[datetime, int]],
        resets: list[tuple[datetime, int]] = (),
        daily_reset: time | None = None,
        time_zone: str = "UTC",
        allow_negative: bool = False,
        capacity: int | None = None,
    ):
        self.zone = ZoneInfo(time_zone)
        self.capacity = capacity
        changes = [(ts, ENTRANCE if delta > 0 else EXIT, delta) for ts, delta in events]
        changes += [(ts, RESET, count) for ts, count in resets]
        instants = [ts for ts, _, _ in changes]
        if daily_reset is not None and instants:
            changes += [
                (ts, DAILY_RESET, 0)
                for ts in daily_reset_instants(daily_reset, self.zone, min(instants), max(instants))
            ]
        # Within one kind at one instant the order does not change any count: every row is the same +1, -1 or 0.
        changes.sort(key=lambda change: (change[0], change[1]))
        self.rows: list[Row] = []
        count = 0
        for timestamp, kind, value in changes:
            if kind in (ENTRANCE, EXIT):
                count += value
                if count < 0 and not allow_negative:
                    count = 0
            else:
                count = value
            self.rows.append(Row(timestamp, kind, count))
        self._instants = [row.timestamp for row in self.rows]

    def count_at(self, instant: datetime) -> int:
        """The count after every row at or before `instant`."""
        position = bisect_right(self._instants, instant)
        return self.rows[position - 1].count if position else 0

    def count_before(self, instant: datetime) -> int:
        """The count after every row strictly before `instant`."""
        position = bisect_left(self._instants, instant)
        return self.rows[position - 1].count if position else 0

    def bucket(self, start: datetime, end: datetime, *, cutoff: datetime) -> dict:
        """The fields of the bucket [start, end), as the API writes them (average unrounded).

        `settled` is only the bucket's end against `cutoff`: the model assumes that no row changed after `cutoff`
        (every write happened at least the settle age before now).
        """
        inside = self.rows[bisect_left(self._instants, start) : bisect_left(self._instants, end)]
        count = self.count_before(start)
        low = high = count
        high_at = start
        area = Fraction(0)
        held_since = start
        for row in inside:
            area += count * _seconds(row.timestamp - held_since)
            held_since, count = row.timestamp, row.count
            low = min(low, count)
            if count > high:
                high, high_at = count, row.timestamp
        area += count * _seconds(end - held_since)
        return {
            "start": iso(start),
            "end": iso(end),
            "count": count,
            "min": low,
            "max": high,
            "max_at": iso(high_at),
            "average": float(area / _seconds(end - start)),
            "entrances": sum(row.kind == ENTRANCE for row in inside),
            "exits": sum(row.kind == EXIT for row in inside),
            "utilization": None if self.capacity is None else round(high / self.capacity, 6),
            "settled": end <= cutoff,
        }

    def buckets(self, edges: list[datetime], *, cutoff: datetime) -> list[dict]:
        return [self.bucket(start, end, cutoff=cutoff) for start, end in zip(edges, edges[1:], strict=False)]


def _seconds(span: timedelta) -> Fraction:
    return Fraction(span // timedelta(microseconds=1), 1_000_000)
