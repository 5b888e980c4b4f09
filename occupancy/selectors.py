"""Reading occupancy: the count of a space at an instant is one index lookup."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from occupancy.models import SpaceOccupancy
from spaces.models import Space


@dataclass(frozen=True)
class SpaceCount:
    space_id: int
    at: datetime
    count: int
    settled: bool


def space_count_at(*, space: Space | int, at: datetime, now: datetime | None = None) -> SpaceCount:
    """How many people were in `space` (a Space or its id) at `at`: the count of its latest row at or before then.

    One query, which also tells a missing space (Http404) from one without rows yet (0). The count is settled
    when nothing recent can still change it: `at` is past the settle age and the row that holds the count has
    settled (or would have, were the settle job behind).
    """
    space_id = getattr(space, "pk", space)
    cutoff = (now or timezone.now()) - settings.OCCUPANCY_SETTLE_AFTER
    latest = SpaceOccupancy.objects.filter(space=OuterRef("pk"), timestamp__lte=at).order_by(
        *SpaceOccupancy.LATEST_FIRST
    )
    found = (
        Space.objects.filter(pk=space_id)
        .annotate(
            row_count=Subquery(latest.values("count")[:1]),
            row_status=Subquery(latest.values("status")[:1]),
            row_modified=Subquery(latest.values("modified")[:1]),
        )
        .values_list("row_count", "row_status", "row_modified")
        .first()
    )
    if found is None:
        raise Http404  # no message: the API answers {"detail": "Not found."}
    count, status, modified = found
    if count is None:  # before the space's first event
        return SpaceCount(space_id=space_id, at=at, count=0, settled=at <= cutoff)
    settled = at <= cutoff and (status == SpaceOccupancy.Status.SETTLED or modified <= cutoff)
    return SpaceCount(space_id=space_id, at=at, count=count, settled=settled)


def space_list_with_counts() -> QuerySet[Space]:
    """Every space, each annotated with `count`: the count after its latest row (0 before any)."""
    latest = (
        SpaceOccupancy.objects.filter(space=OuterRef("pk")).order_by(*SpaceOccupancy.LATEST_FIRST).values("count")[:1]
    )
    return Space.objects.annotate(count=Coalesce(Subquery(latest.values("count")[:1]), Value(0))).order_by("name")
