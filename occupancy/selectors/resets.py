"""Reading operators' resets."""

from datetime import datetime

from django.db.models import QuerySet
from django.http import Http404

from occupancy.models import OccupancyReset


def reset_list(*, space_id: int, start: datetime | None = None, end: datetime | None = None) -> QuerySet:
    """The space's resets in [start, end) (either end open when None), in time order, with who made them."""
    resets = OccupancyReset.objects.filter(space_id=space_id).select_related("created_by").order_by("timestamp")
    if start is not None:
        resets = resets.filter(timestamp__gte=start)
    if end is not None:
        resets = resets.filter(timestamp__lt=end)
    return resets


def reset_get(*, space_id: int, reset_id: int) -> OccupancyReset:
    """The space's reset, or Http404."""
    reset = OccupancyReset.objects.filter(space_id=space_id, pk=reset_id).first()
    if reset is None:
        raise Http404  # no message: the API answers {"detail": "Not found."}
    return reset
