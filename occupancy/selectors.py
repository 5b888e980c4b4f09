"""Reading occupancy: the count of a space at an instant is one index lookup."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from dpu.models import DpuAssignment, DpuEvent
from occupancy.models import SpaceOccupancy
from spaces.models import Space


@dataclass(frozen=True)
class SpaceCount:
    space_id: int
    at: datetime
    count: int
    settled: bool


def space_count_at(*, space: Space, at: datetime, now: datetime | None = None) -> SpaceCount:
    """How many people were in `space` at `at`: the count of its latest row at or before that instant.

    The count is settled when nothing recent can still change it: `at` is past the settle age and the row that
    holds the count has settled (or would have, were the settle job behind).
    """
    cutoff = (now or timezone.now()) - settings.OCCUPANCY_SETTLE_AFTER
    row = (
        SpaceOccupancy.objects.filter(space=space, timestamp__lte=at)
        .order_by(*SpaceOccupancy.LATEST_FIRST)
        .only("count", "status", "modified")
        .first()
    )
    if row is None:
        return SpaceCount(space_id=space.id, at=at, count=0, settled=at <= cutoff)
    settled = at <= cutoff and (row.status == SpaceOccupancy.Status.SETTLED or row.modified <= cutoff)
    return SpaceCount(space_id=space.id, at=at, count=row.count, settled=settled)


def space_list_with_counts() -> QuerySet[Space]:
    """Every space, each annotated with `count`: the count after its latest row (0 before any)."""
    latest = (
        SpaceOccupancy.objects.filter(space=OuterRef("pk")).order_by(*SpaceOccupancy.LATEST_FIRST).values("count")[:1]
    )
    return Space.objects.annotate(count=Coalesce(Subquery(latest.values("count")[:1]), Value(0))).order_by("name")


# One event's effect on one space, and the row it should make: (timestamp, delta, dpu_id, event_id[, count]).
Change = tuple[datetime, int, int, int]
ExpectedRow = tuple[datetime, int, int, int, int]


def occupancy_expected(*, space: Space, since: datetime | None) -> list[ExpectedRow]:
    """The rows the raw events say `space` should have from `since` on (None: all history), in row order.

    Counting starts from the stored row just before `since`. The incremental path, the full rebuild and the
    consistency check all derive rows here, so they cannot disagree about the rules.
    """
    start = 0
    if since is not None:
        previous = (
            SpaceOccupancy.objects.filter(space=space, timestamp__lt=since)
            .order_by(*SpaceOccupancy.LATEST_FIRST)
            .values_list("count", flat=True)
            .first()
        )
        start = previous or 0
    return _counted(changes=_changes(space_id=space.id, since=since), start=start, allow_negative=space.allow_negative)


@dataclass(frozen=True)
class Difference:
    space: str
    event_id: int
    stored: tuple | None  # (timestamp, delta, count), None when the row is missing
    expected: tuple | None  # likewise, None when the row should not exist

    def __str__(self) -> str:
        return f"space {self.space}, event {self.event_id}: stored {self.stored}, expected {self.expected}"


def occupancy_differences(*, space_ids: Iterable[int] | None = None) -> list[Difference]:
    """Where the stored occupancy rows differ from a fresh rebuild from the raw events (nothing is written)."""
    spaces = Space.objects.order_by("id")
    if space_ids is not None:
        spaces = spaces.filter(id__in=list(space_ids))
    differences = []
    for space in spaces:
        expected = {
            event_id: (ts, delta, count)
            for ts, delta, _, event_id, count in occupancy_expected(space=space, since=None)
        }
        stored = {
            event_id: (ts, delta, count)
            for event_id, ts, delta, count in SpaceOccupancy.objects.filter(space=space).values_list(
                "event_id", "timestamp", "delta", "count"
            )
        }
        for event_id in sorted(expected.keys() | stored.keys()):
            if expected.get(event_id) != stored.get(event_id):
                differences.append(Difference(space.name, event_id, stored.get(event_id), expected.get(event_id)))
    return differences


def _changes(*, space_id: int, since: datetime | None) -> list[Change]:
    """Every event that touches the space at or after `since`, mapped through the assignment valid at its time."""
    assignments = DpuAssignment.objects.filter(Q(doorway__side_a=space_id) | Q(doorway__side_b=space_id))
    if since is not None:
        assignments = assignments.filter(Q(valid_to__isnull=True) | Q(valid_to__gt=since))
    changes: list[Change] = []
    for assignment in assignments.select_related("doorway"):
        events = DpuEvent.objects.filter(dpu_id=assignment.dpu_id, timestamp__gte=assignment.valid_from)
        if assignment.valid_to is not None:
            events = events.filter(timestamp__lt=assignment.valid_to)
        if since is not None:
            events = events.filter(timestamp__gte=since)
        sign = 1 if assignment.enters_id == space_id else -1
        changes.extend(
            (timestamp, sign * direction, assignment.dpu_id, event_id)
            for event_id, timestamp, direction in events.values_list("id", "timestamp", "direction")
        )
    return changes


def _counted(*, changes: list[Change], start: int, allow_negative: bool) -> list[ExpectedRow]:
    """The changes in row order, each with the count after it, held at zero unless negatives are allowed."""
    changes.sort(key=lambda change: SpaceOccupancy.order_key(*change[:3]))
    count = start
    counted = []
    for timestamp, delta, dpu_id, event_id in changes:
        count += delta
        if count < 0 and not allow_negative:
            count = 0
        counted.append((timestamp, delta, dpu_id, event_id, count))
    return counted
