"""Operators' resets: "at this instant there were N people here"."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from config.api import format_instant
from dpu.models import to_millisecond
from history.selectors import history_check_writable
from occupancy.models import OccupancyReset
from occupancy.services.recalculate import occupancy_recalculate
from spaces.models import Space


def reset_create(
    *, space: Space, timestamp: datetime, count: int, created_by=None, now: datetime | None = None
) -> OccupancyReset:
    """Set the space's count at `timestamp` to `count`: events at that instant apply first, then the reset, and
    later events count on from it. Recalculates the space from `timestamp` up to its next reset; returns the
    reset. Its rules are OccupancyReset.clean's (the events' timestamp rules, no negative count unless the space
    allows it); the timestamp is kept to the millisecond, like an event's. ArchivedHistory for an instant in an
    archived month."""
    with transaction.atomic():
        # The space row's lock orders this against ingest and other resets recalculating the same space.
        space = Space.objects.select_for_update().get(pk=space.pk)
        history_check_writable(instant=timestamp, what=f"A reset at {format_instant(timestamp)}")
        reset = OccupancyReset(space=space, timestamp=to_millisecond(timestamp), count=count, created_by=created_by)
        reset.full_clean(validate_constraints=False)
        try:
            with transaction.atomic():
                reset.save()
        except IntegrityError:  # the unique constraint decides, also against a concurrent request
            # A 400, as issue 8 asked, not the 409 of other duplicates (config.api._only_duplicates).
            raise ValidationError(
                {"timestamp": f"Space {space.name!r} already has a reset at {format_instant(reset.timestamp)}."}
            ) from None
        occupancy_recalculate(since_by_space={space.pk: reset.timestamp}, to_next_reset=True, now=now)
    return reset


def reset_delete(*, reset: OccupancyReset, now: datetime | None = None) -> None:
    """Remove a reset (and its row); the space is recalculated from its instant up to its next reset."""
    with transaction.atomic():
        Space.objects.select_for_update().get(pk=reset.space_id)
        space_id, timestamp = reset.space_id, reset.timestamp
        history_check_writable(instant=timestamp, what=f"The reset at {format_instant(timestamp)}")
        reset.delete()
        occupancy_recalculate(since_by_space={space_id: timestamp}, to_next_reset=True, now=now)
