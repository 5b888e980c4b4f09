"""Reading operators' resets."""

from datetime import datetime

from django.http import Http404

from config.paging import Page, PageRequest, keyset_page
from occupancy.models import OccupancyReset

# The reset list's order and its cursors' key. A space has one reset per instant; the id keeps the key unique anyway.
RESET_ORDER, RESET_KEY = ("timestamp", "id"), (datetime, int)


def reset_list(*, space_id: int, start: datetime | None = None, end: datetime | None = None, page: PageRequest) -> Page:
    """One page of the space's resets in [start, end) (either end open when None), in time order, with who made
    them."""
    resets = OccupancyReset.objects.filter(space_id=space_id).select_related("created_by")
    if start is not None:
        resets = resets.filter(timestamp__gte=start)
    if end is not None:
        resets = resets.filter(timestamp__lt=end)
    return keyset_page(resets, fields=RESET_ORDER, page=page)


def reset_get(*, space_id: int, reset_id: int) -> OccupancyReset:
    """The space's reset, or Http404."""
    reset = OccupancyReset.objects.filter(space_id=space_id, pk=reset_id).first()
    if reset is None:
        raise Http404  # no message: the API answers {"detail": "Not found."}
    return reset
