"""What GET /metrics reads from the database at scrape time."""

from occupancy.models import SpaceOccupancy


def pending_row_count() -> int:
    """How many occupancy rows are pending (a late event may still change them; see OCCUPANCY_SETTLE_AFTER).

    The filter is the condition of the partial index `occupancy_pending`, so PostgreSQL counts that index's entries
    (an index-only scan) rather than reading the table: a cost in the pending rows, not in all of them.
    """
    return SpaceOccupancy.objects.filter(status=SpaceOccupancy.Status.PENDING).count()
