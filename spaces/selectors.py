"""Reading the layout."""

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from spaces.models import Doorway, Space


def space_get(*, space_id: int) -> Space:
    """The space, or Http404."""
    return get_object_or_404(Space, pk=space_id)


def doorway_list() -> QuerySet[Doorway]:
    return Doorway.objects.order_by("name", "id")
