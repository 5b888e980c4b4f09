"""Changing the layout: spaces and the doorways between them."""

from datetime import datetime, time

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q

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


class LayoutInUse(Exception):
    """A change to a space or doorway that stored history forbids. Its message says why and what to do instead,
    for a person who did not read the code (the API answers it with 409)."""


def space_delete(*, space: Space) -> None:
    """Remove a space that nothing depends on: no counted events, no resets, no doorway leading into it.

    Raises LayoutInUse, saying why and what to do instead, when something does; then nothing is deleted.
    """
    try:
        with transaction.atomic():
            # Ingest and resets lock the space row before they write its rows: locked here, none can add a row
            # between the check and the delete.
            space = Space.objects.select_for_update().get(pk=space.pk)
            reason = _space_in_use(space)
            if reason is not None:
                raise LayoutInUse(reason)
            space.delete()  # what is left to cascade: its (empty) five-minute blocks
    except IntegrityError:  # ProtectedError too: a doorway or assignment that refers to it came after the check
        raise LayoutInUse(
            f"Space {space.pk} ({space.name!r}) was just made a side of a doorway; it cannot be deleted. "
            f"Delete that doorway first, then try again."
        ) from None


def _space_in_use(space: Space) -> str | None:
    """Why the space cannot be deleted, as a sentence; None when it can."""
    label = f"Space {space.pk} ({space.name!r})"
    history = [
        what
        for what, present in (
            ("counted events", SpaceOccupancy.objects.filter(space=space).exists()),
            ("resets", space.resets.exists()),
        )
        if present
    ]
    if history:
        return (
            f"{label} has {' and '.join(history)} (its history depends on it); it cannot be deleted. "
            f"Rename it instead, or move its DPUs to other doorways to stop counting it."
        )
    doorways = list(Doorway.objects.filter(Q(side_a=space) | Q(side_b=space)).order_by("id"))
    if doorways:
        names = ", ".join(f"{doorway.pk} ({doorway.name!r})" for doorway in doorways)
        return (
            f"{label} is a side of doorway {names}; it cannot be deleted while a doorway leads into it. "
            f"Delete those doorways first, or change their sides."
        )
    return None


def _check_sides(side_a: Space | None, side_b: Space | None) -> None:
    """A ValidationError naming `sides` for a doorway that would count nobody (the model's constraint, in words:
    left to full_clean, the answer would also carry the constraint's name)."""
    if side_a is None and side_b is None:
        raise ValidationError(
            {"sides": ["A doorway needs at least one side that is a space; outside to outside counts nobody."]}
        )
    if side_a is not None and side_b is not None and side_a.pk == side_b.pk:
        raise ValidationError(
            {
                "sides": [
                    f"A doorway must join two different sides, but both are space {side_a.pk} ({side_a.name!r}); "
                    f"use null for outside."
                ]
            }
        )


def doorway_create(*, name: str, side_a: Space | None, side_b: Space | None) -> Doorway:
    """Add a doorway between two sides, each a space or outside (None)."""
    _check_sides(side_a, side_b)
    doorway = Doorway(name=name, side_a=side_a, side_b=side_b)
    doorway.full_clean()
    doorway.save()
    return doorway


DOORWAY_FIELDS = ("name", "side_a", "side_b")


def doorway_update(*, doorway: Doorway, **changes) -> Doorway:
    """Change a doorway's `name`, `side_a` or `side_b` (the fields given; a side is a Space or outside, None).

    Its sides may change only while no DPU has ever been assigned to it: once a DPU has counted through a doorway
    its sides are history, and changing them would reinterpret past events. Then this raises LayoutInUse: create
    a new doorway and move the DPU to it instead (that recalculates from the move).
    """
    unknown = set(changes) - set(DOORWAY_FIELDS)
    if unknown:
        raise TypeError(f"doorway_update() got unexpected fields {sorted(unknown)}")
    with transaction.atomic():
        # The changes apply to the locked row, not to what the caller read: a field not given keeps its stored value
        # even when another request changed it since.
        current = Doorway.objects.select_for_update().get(pk=doorway.pk)
        sides_before = current.sides
        for field, value in changes.items():
            setattr(current, field, value)
        _check_sides(current.side_a, current.side_b)
        if current.sides != sides_before and current.assignments.exists():
            raise LayoutInUse(
                f"Doorway {current.pk} ({current.name!r}) has DPU assignments, so its sides are history: changing "
                f"them would reinterpret the events counted through it. Create a new doorway with these sides and "
                f"move the DPU to it instead."
            )
        current.full_clean()
        current.save()
    for field in DOORWAY_FIELDS:
        setattr(doorway, field, getattr(current, field))
    return doorway


def doorway_delete(*, doorway: Doorway) -> None:
    """Remove a doorway no DPU has ever been assigned to.

    Raises LayoutInUse, saying why and what to do instead, when one has: its events' history depends on it.
    """
    try:
        with transaction.atomic():
            doorway = Doorway.objects.select_for_update().get(pk=doorway.pk)
            serials = sorted(set(doorway.assignments.values_list("dpu__serial", flat=True)))
            if serials:
                dpus = ", ".join(f"DPU {serial}" for serial in serials)
                raise LayoutInUse(
                    f"Doorway {doorway.pk} ({doorway.name!r}) has DPU assignments ({dpus}): the history of their "
                    f"events depends on it, so it cannot be deleted. Rename it instead; to stop counting through it, "
                    f"move the DPU to another doorway."
                )
            doorway.delete()
    except IntegrityError:  # ProtectedError too: an assignment to it came after the check
        raise LayoutInUse(
            f"Doorway {doorway.pk} ({doorway.name!r}) was just assigned a DPU; it cannot be deleted. Rename it "
            f"instead; to stop counting through it, move the DPU to another doorway."
        ) from None
