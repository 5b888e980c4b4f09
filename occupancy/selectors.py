"""Reading occupancy: the count of a space at an instant is one index lookup."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

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
