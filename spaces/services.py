"""Changing the layout: spaces and the doorways between them."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from occupancy.services import occupancy_rebuild
from spaces.models import Doorway, Space


def space_create(*, name: str, allow_negative: bool = False) -> Space:
    """Add a space to count; it starts at 0."""
    space = Space(name=name, allow_negative=allow_negative)
    space.full_clean()
    try:
        with transaction.atomic():
            space.save()
    except IntegrityError:  # full_clean found the name free, but a concurrent request may have taken it since
        raise ValidationError({"name": [f"A space named {name!r} already exists."]}) from None
    return space


def space_update(*, space: Space, name: str, allow_negative: bool, now: datetime | None = None) -> Space:
    """Rename a space or change whether it may go negative; the latter recalculates its whole history,
    because the clamp at zero shaped every count after the first time it applied."""
    with transaction.atomic():
        before = Space.objects.select_for_update().get(pk=space.pk)
        space.name, space.allow_negative = name, allow_negative
        space.full_clean()
        space.save()
        if before.allow_negative != allow_negative:
            occupancy_rebuild(space_ids=[space.pk], now=now)
    return space


def doorway_create(*, name: str, side_a: Space | None, side_b: Space | None) -> Doorway:
    """Add a doorway between two sides, each a space or outside (None)."""
    doorway = Doorway(name=name, side_a=side_a, side_b=side_b)
    doorway.full_clean()
    doorway.save()
    return doorway


def doorway_update(*, doorway: Doorway, name: str, side_a: Space | None, side_b: Space | None) -> Doorway:
    """Rename a doorway, or change what it joins while no DPU has ever been assigned to it.

    Once a DPU has counted through a doorway its sides are history: changing them would reinterpret past
    events. Assign the DPU to a new doorway instead (that recalculates from the move).
    """
    with transaction.atomic():
        before = Doorway.objects.select_for_update().get(pk=doorway.pk)
        if before.sides != (getattr(side_a, "pk", None), getattr(side_b, "pk", None)) and before.assignments.exists():
            raise ValidationError(
                "This doorway's sides cannot change: DPUs have counted through it. Create a new doorway and move "
                "the DPU to it."
            )
        doorway.name, doorway.side_a, doorway.side_b = name, side_a, side_b
        doorway.full_clean()
        doorway.save()
    return doorway
