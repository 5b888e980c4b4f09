"""Writing the occupancy time series: the one recalculation every path goes through, and settling."""

from collections.abc import Iterable, Mapping
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from occupancy.models import SpaceOccupancy
from occupancy.selectors import occupancy_expected
from spaces.models import Space

BULK_BATCH = 1000


def occupancy_recalculate(*, since_by_space: Mapping[int, datetime | None], now: datetime | None = None) -> None:
    """Make the occupancy rows of each space equal to what its events say, from `since` on.

    `since` None rebuilds the space's whole history. Rows before `since` are not read beyond the one row just
    before it, and not written: a late event costs the rows after it, never the whole history. Rows whose
    count changes become pending again. Incremental ingest, assignment changes and full rebuilds all call this.
    """
    now = now or timezone.now()
    with transaction.atomic():
        # Two writers recalculating the same space would each start from the rows they saw and the later
        # commit would silently drop the other's event. Space rows are locked in id order, so writers that
        # share several spaces queue instead of deadlocking. Callers that already hold the locks re-take them
        # for free.
        spaces = list(Space.objects.select_for_update().filter(id__in=since_by_space).order_by("id"))
        for space in spaces:
            _recalculate_space(space=space, since=since_by_space[space.id], now=now)


def occupancy_rebuild(*, space_ids: Iterable[int] | None = None, now: datetime | None = None) -> None:
    """Recalculate whole histories (every space when `space_ids` is None)."""
    if space_ids is None:
        space_ids = Space.objects.values_list("id", flat=True)
    occupancy_recalculate(since_by_space=dict.fromkeys(space_ids), now=now)


def occupancy_settle(*, space_ids: Iterable[int] | None = None, now: datetime | None = None) -> int:
    """Mark pending rows settled once both their timestamp and their last change are older than the settle age.

    Ingest runs it for the spaces it touched; `manage.py occupancy_settle` runs it for all (e.g. from cron).

    Returns how many rows were settled. Only the status changes: `modified` keeps the time of the last count
    change, which is what settling is measured from.
    """
    cutoff = (now or timezone.now()) - settings.OCCUPANCY_SETTLE_AFTER
    rows = SpaceOccupancy.objects.filter(
        status=SpaceOccupancy.Status.PENDING, timestamp__lte=cutoff, modified__lte=cutoff
    )
    if space_ids is not None:
        rows = rows.filter(space_id__in=list(space_ids))
    return rows.update(status=SpaceOccupancy.Status.SETTLED)


def _recalculate_space(*, space: Space, since: datetime | None, now: datetime) -> None:
    rows = SpaceOccupancy.objects.filter(space=space)
    if since is not None:
        rows = rows.filter(timestamp__gte=since)

    existing = {}
    last_existing = None  # the order key of the space's last row before this call
    for pk, event_id, timestamp, delta, dpu_id, count in rows.values_list(
        "id", "event_id", "timestamp", "delta", "dpu_id", "count"
    ):
        existing[event_id] = (pk, delta, count)
        key = SpaceOccupancy.order_key(timestamp, delta, dpu_id)
        last_existing = key if last_existing is None else max(last_existing, key)
    wanted = occupancy_expected(space=space, since=since)

    cutoff = now - settings.OCCUPANCY_SETTLE_AFTER
    to_create, to_update = [], []
    for timestamp, delta, dpu_id, event_id, count in wanted:
        current = existing.pop(event_id, None)
        if current is None:
            # A row appended after all others extends history and settles by its age alone. One that lands
            # among existing rows is a late event rewriting history: pending, like the rows after it.
            appended = last_existing is None or SpaceOccupancy.order_key(timestamp, delta, dpu_id) > last_existing
            settled = appended and timestamp <= cutoff
            row = SpaceOccupancy(
                space=space,
                timestamp=timestamp,
                event_id=event_id,
                dpu_id=dpu_id,
                delta=delta,
                count=count,
                status=SpaceOccupancy.Status.SETTLED if settled else SpaceOccupancy.Status.PENDING,
            )
            to_create.append(_stamped(row, now))
        elif current[1:] != (delta, count):
            row = SpaceOccupancy(id=current[0], delta=delta, count=count, status=SpaceOccupancy.Status.PENDING)
            row.modified = now
            to_update.append(row)

    if existing:  # events that no longer touch this space (their DPU's assignment changed)
        SpaceOccupancy.objects.filter(id__in=[pk for pk, _, _ in existing.values()]).delete()
    SpaceOccupancy.objects.bulk_update(to_update, ["delta", "count", "status", "modified"], batch_size=BULK_BATCH)
    SpaceOccupancy.objects.bulk_create(to_create, batch_size=BULK_BATCH)


def _stamped(row: SpaceOccupancy, now: datetime) -> SpaceOccupancy:
    # TimeStampedModel would stamp the wall clock; the service's single `now` keeps settling deterministic.
    row.created = row.modified = now
    row.update_modified = False
    return row
