"""Changing the layout: spaces and the doorways between them."""

from datetime import datetime, time

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from occupancy.models import SpaceOccupancy
from occupancy.services import occupancy_rebuild
from spaces.models import Doorway, Space


def space_create(
    *,
    name: str,
    allow_negative: bool = False,
    time_zone: str = "UTC",
    capacity: int | None = None,
    daily_reset: time | None = None,
) -> Space:
    """Add a space to count; it starts at 0."""
    space = Space(
        name=name, allow_negative=allow_negative, time_zone=time_zone, capacity=capacity, daily_reset=daily_reset
    )
    space.full_clean()
    try:
        with transaction.atomic():
            space.save()
    except IntegrityError:  # full_clean found the name free, but a concurrent request may have taken it since
        raise ValidationError({"name": [f"A space named {name!r} already exists."]}) from None
    return space


def space_update(*, space: Space, now: datetime | None = None, **changes) -> Space:
    """Change a space's `name`, `allow_negative`, `time_zone`, `capacity` or `daily_reset` (the fields given).

    Changing `allow_negative`, `time_zone` or `daily_reset` recalculates the space's whole history before this
    returns: the clamp at zero shaped every count after the first time it applied, and the daily reset (whose
    local time the time zone places) every count after the first one.
    """
    unknown = set(changes) - set(SPACE_SETTINGS)
    if unknown:
        raise TypeError(f"space_update() got unexpected fields {sorted(unknown)}")
    with transaction.atomic():
        # Locked while the history is recalculated: ingest and resets of this space wait for the new settings.
        before = Space.objects.select_for_update().get(pk=space.pk)
        for field, value in changes.items():
            setattr(space, field, value)
        space.full_clean()
        try:
            with transaction.atomic():
                space.save()
        except IntegrityError:
            raise ValidationError({"name": [f"A space named {space.name!r} already exists."]}) from None
        days_moved = (before.time_zone, before.daily_reset) != (space.time_zone, space.daily_reset)
        if days_moved:
            # Every daily reset row is somewhere else now (or gone): the rebuild lays them anew.
            SpaceOccupancy.objects.filter(space=space, kind=SpaceOccupancy.Kind.DAILY_RESET).delete()
        if days_moved or before.allow_negative != space.allow_negative:
            occupancy_rebuild(space_ids=[space.pk], now=now)
    return space


SPACE_SETTINGS = ("name", "allow_negative", "time_zone", "capacity", "daily_reset")


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
