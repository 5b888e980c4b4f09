"""Reading the layout."""

from django.http import Http404

from config.paging import Page, PageRequest, keyset_page
from spaces.models import Doorway, Space

# The doorway list's order and its cursors' key: names repeat, so the id breaks ties.
DOORWAY_ORDER, DOORWAY_KEY = ("name", "id"), (str, int)


def space_get(*, space_id: int) -> Space:
    """The space, or Http404."""
    space = Space.objects.filter(pk=space_id).first()
    if space is None:
        raise Http404  # no message: the API answers {"detail": "Not found."}
    return space


def doorway_list(*, page: PageRequest) -> Page:
    """One page of the doorways, by name."""
    return keyset_page(Doorway.objects.all(), fields=DOORWAY_ORDER, page=page)


def doorway_get(*, doorway_id: int) -> Doorway:
    """The doorway, or Http404."""
    doorway = Doorway.objects.filter(pk=doorway_id).first()
    if doorway is None:
        raise Http404
    return doorway
