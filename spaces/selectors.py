"""Reading the layout."""

from django.db.models import QuerySet
from django.http import Http404

from spaces.models import Doorway, Space


def space_get(*, space_id: int) -> Space:
    """The space, or Http404."""
    space = Space.objects.filter(pk=space_id).first()
    if space is None:
        raise Http404  # no message: the API answers {"detail": "Not found."}
    return space


def doorway_list() -> QuerySet[Doorway]:
    return Doorway.objects.order_by("name", "id")


def doorway_get(*, doorway_id: int) -> Doorway:
    """The doorway, or Http404."""
    doorway = Doorway.objects.filter(pk=doorway_id).first()
    if doorway is None:
        raise Http404
    return doorway
