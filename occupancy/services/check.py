"""Checking the stored occupancy against a rebuild from the raw events and resets."""

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from occupancy.models import OccupancyBlock, SpaceOccupancy
from occupancy.services.recalculate import occupancy_rebuild
from spaces.models import Space

Kind = SpaceOccupancy.Kind


@dataclass(frozen=True)
class Difference:
    """One row where the stored occupancy and a rebuild from the raw events disagree."""

    space: str
    row: str  # "event 12", "reset 3" or "daily reset at ..."
    stored: tuple | None  # (timestamp, delta, count), None when the row is missing
    rebuilt: tuple | None  # likewise, None when the row should not exist

    def __str__(self) -> str:
        return f"space {self.space}, {self.row}: stored {self.stored}, rebuilt {self.rebuilt}"


def occupancy_check(*, space_ids: Iterable[int] | None = None) -> list[Difference]:
    """Where the stored rows differ from a rebuild from the raw events, made with the code every write path uses
    and rolled back: nothing is written.

    Rows of events and resets must be equal. A daily reset row must be there after each of them; more of them
    change no count (each sets 0 where the count is 0 already), so they are no difference.
    """
    spaces = Space.objects.order_by("id")
    if space_ids is not None:
        spaces = spaces.filter(id__in=list(space_ids))
    ids = list(spaces.values_list("id", flat=True))
    with transaction.atomic():
        stored, stored_daily = _snapshot(ids)
        stored_blocks = _blocks(ids)
        occupancy_rebuild(space_ids=ids)
        rebuilt, rebuilt_daily = _snapshot(ids)
        rebuilt_blocks = _blocks(ids)
        transaction.set_rollback(True)
    differences = []
    for space, row in sorted(stored.keys() | rebuilt.keys()):
        before, after = stored.get((space, row)), rebuilt.get((space, row))
        if before != after:
            differences.append(Difference(space=space, row=f"{row[0]} {row[1]}", stored=before, rebuilt=after))
    for (space, (kind, _)), (timestamp, _, _) in sorted(rebuilt.items()):
        daily = rebuilt_daily.get(space, [])
        # The next daily reset: at or after an event's instant, strictly after a reset's (which wins at its own).
        position = (bisect_left if kind == "event" else bisect_right)(daily, timestamp)
        if position < len(daily) and daily[position] not in stored_daily.get(space, ()):
            missing = daily[position]
            differences.append(
                Difference(
                    space=space, row=f"daily reset at {missing.isoformat()}", stored=None, rebuilt=(missing, 0, 0)
                )
            )
    for space, start in sorted(stored_blocks.keys() | rebuilt_blocks.keys()):
        before, after = stored_blocks.get((space, start)), rebuilt_blocks.get((space, start))
        if before != after:
            differences.append(
                Difference(space=space, row=f"block at {start.isoformat()}", stored=before, rebuilt=after)
            )
    return list(dict.fromkeys(differences))


def _blocks(space_ids: list[int]) -> dict[tuple[str, object], tuple]:
    """The five-minute blocks in which the count moved, by (space name, start). Areas to a millionth of a
    person-second: sums of the same terms in another order may differ past that."""
    fields = ["start_count", "low", "high", "high_at", "entrances", "exits", "area", "end_count"]
    # Counts over time read a pending change only while it is younger than the settle age; the settle job marks
    # rows settled without rewriting their blocks, so an older one is the same as none.
    cutoff = timezone.now() - settings.OCCUPANCY_SETTLE_AFTER

    def recent(changed):
        return changed if changed is not None and changed > cutoff else None

    found = {}
    for block in OccupancyBlock.objects.filter(space_id__in=space_ids).select_related("space"):
        if block.entrances == block.exits == 0 and block.start_count == block.low == block.high == block.end_count:
            continue  # the count did not move: the same as no block (the rows of a spare daily reset, say)
        values = [getattr(block, field) for field in fields]
        values[fields.index("area")] = round(block.area, 6)
        found[(block.space.name, block.start)] = (
            *values,
            recent(block.pending_changed),
            recent(block.end_pending_changed),
        )
    return found


def _snapshot(space_ids: list[int]) -> tuple[dict[tuple[str, tuple], tuple], dict[str, list]]:
    """The rows of events and resets by (space name, ("event" or "reset", id)), and each space's daily reset
    instants in order."""
    rows = (
        SpaceOccupancy.objects.filter(space_id__in=space_ids)
        .order_by("timestamp")
        .values_list("space__name", "kind", "event_id", "reset_id", "timestamp", "delta", "count")
    )
    found, daily = {}, defaultdict(list)
    for name, kind, event_id, reset_id, timestamp, delta, count in rows:
        if kind == Kind.DAILY_RESET:
            daily[name].append(timestamp)
        else:
            key = ("event", event_id) if event_id is not None else ("reset", reset_id)
            found[(name, key)] = (timestamp, delta, count)
    return found, daily
