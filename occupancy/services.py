"""Writing the occupancy time series: the one recalculation every path goes through, and settling."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from dpu.models import DpuAssignment, DpuEvent
from occupancy.models import SpaceOccupancy
from spaces.models import Doorway, Space

ID_CHUNK = 1000  # event ids per INSERT: parameters stay well inside SQLite's limit


def occupancy_recalculate(
    *,
    since_by_space: Mapping[int, datetime | None],
    now: datetime | None = None,
    new_events_by_space: Mapping[int, Sequence[int]] | None = None,
) -> None:
    """Make the occupancy rows of each space equal to what its events say, from `since` on.

    `new_events_by_space`, from ingest, says the only change since the rows were last right is that those
    events were stored: their rows are added and nothing else is looked for.

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
            new = None if new_events_by_space is None else new_events_by_space.get(space.id, [])
            _recalculate_space(space=space, since=since_by_space[space.id], now=now, event_ids=new)


def occupancy_rebuild(*, space_ids: Iterable[int] | None = None, now: datetime | None = None) -> None:
    """Recalculate whole histories (every space when `space_ids` is None)."""
    if space_ids is None:
        space_ids = Space.objects.values_list("id", flat=True)
    occupancy_recalculate(since_by_space=dict.fromkeys(space_ids), now=now)


@dataclass(frozen=True)
class Difference:
    """One row where the stored occupancy and a rebuild from the raw events disagree."""

    space: str
    event_id: int
    stored: tuple | None  # (timestamp, delta, count), None when the row is missing
    rebuilt: tuple | None  # likewise, None when the row should not exist

    def __str__(self) -> str:
        return f"space {self.space}, event {self.event_id}: stored {self.stored}, rebuilt {self.rebuilt}"


def occupancy_check(*, space_ids: Iterable[int] | None = None) -> list[Difference]:
    """Where the stored rows differ from a rebuild from the raw events, made with the code every write path uses
    and rolled back: nothing is written."""
    spaces = Space.objects.order_by("id")
    if space_ids is not None:
        spaces = spaces.filter(id__in=list(space_ids))
    ids = list(spaces.values_list("id", flat=True))
    with transaction.atomic():
        stored = _snapshot(ids)
        occupancy_rebuild(space_ids=ids)
        rebuilt = _snapshot(ids)
        transaction.set_rollback(True)
    differences = []
    for space, event_id in sorted(stored.keys() | rebuilt.keys()):
        before, after = stored.get((space, event_id)), rebuilt.get((space, event_id))
        if before != after:
            differences.append(Difference(space=space, event_id=event_id, stored=before, rebuilt=after))
    return differences


def _snapshot(space_ids: list[int]) -> dict[tuple[str, int], tuple]:
    rows = SpaceOccupancy.objects.filter(space_id__in=space_ids).values_list(
        "space__name", "event_id", "timestamp", "delta", "count"
    )
    return {(name, event_id): (timestamp, delta, count) for name, event_id, timestamp, delta, count in rows}


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


def _recalculate_space(
    *, space: Space, since: datetime | None, now: datetime, event_ids: Sequence[int] | None = None
) -> None:
    """Bring one space's rows from `since` on in line with its events, in the database, in three statements.

    With `event_ids` the only change is that those events are new (ingest): their rows are added. Without, any
    event may have gained or lost the space (an assignment changed): stale rows go and missing ones come.
    Then every count from `since` on is recalculated in one window-function UPDATE.
    """
    table = Sql(space=space, now=now)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MAX(id) FROM {table.occupancy}")  # rows above it are the ones this call adds
        boundary = cursor.fetchone()[0] or 0
        last = (
            SpaceOccupancy.objects.filter(space=space)
            .order_by(*SpaceOccupancy.LATEST_FIRST)
            .values_list("timestamp", "delta", "dpu_id")
            .first()
        )
        if event_ids is None:
            cursor.execute(*table.update_flipped(since))
            cursor.execute(*table.delete_stale(since))
            cursor.execute(*table.insert_mapped(since, last_row=last))
        else:
            for start in range(0, len(event_ids), ID_CHUNK):
                cursor.execute(
                    *table.insert_mapped(since, last_row=last, event_ids=event_ids[start : start + ID_CHUNK])
                )
        previous = None
        if since is not None:
            previous = (
                SpaceOccupancy.objects.filter(space=space, timestamp__lt=since)
                .order_by(*SpaceOccupancy.LATEST_FIRST)
                .values_list("count", flat=True)
                .first()
            )
        cursor.execute(*table.recount(since, start=previous or 0, boundary=boundary))


class Sql:
    """The statements of a recalculation for one space, with their parameters."""

    def __init__(self, *, space: Space, now: datetime):
        quote = connection.ops.quote_name
        self.occupancy = quote(SpaceOccupancy._meta.db_table)
        self.event = quote(DpuEvent._meta.db_table)
        self.assignment = quote(DpuAssignment._meta.db_table)
        self.doorway = quote(Doorway._meta.db_table)
        self.space = space
        self.now = _db_instant(now)
        self.cutoff = _db_instant(now - settings.OCCUPANCY_SETTLE_AFTER)

    def _mapped(self) -> tuple[str, list]:
        """Events that touch the space, each with its delta there: the assignment valid at its instant decides."""
        sql = f"""
            FROM {self.event} e
            JOIN {self.assignment} a ON a.dpu_id = e.dpu_id AND a.valid_from <= e.{q("timestamp")}
                 AND (a.valid_to IS NULL OR e.{q("timestamp")} < a.valid_to)
            JOIN {self.doorway} d ON d.id = a.doorway_id
            WHERE (d.side_a_id = %s OR d.side_b_id = %s)"""
        return sql, [self.space.id, self.space.id]

    def _delta(self) -> tuple[str, list]:
        # +1 adds to the side it enters and takes from the other; NULL = NULL is not true, so outside works too.
        return "CASE WHEN a.enters_id = %s THEN e.direction ELSE -e.direction END", [self.space.id]

    def update_flipped(self, since: datetime | None) -> tuple[str, list]:
        """Rows whose event still touches the space but now from the other side: the row changes, pending."""
        mapped, mapped_params = self._mapped()
        delta, delta_params = self._delta()
        sql = f"""
            UPDATE {self.occupancy} SET delta = m.delta, status = 'pending', modified = %s
            FROM (SELECT e.id AS event_id, {delta} AS delta {mapped} {self._since("e." + q("timestamp"), since)}) m
            WHERE {self.occupancy}.space_id = %s {self._since(self.occupancy + "." + q("timestamp"), since)}
              AND {self.occupancy}.event_id = m.event_id AND {self.occupancy}.delta <> m.delta"""
        params = [self.now, *delta_params, *mapped_params, *self._since_params(since)]
        return sql, [*params, self.space.id, *self._since_params(since)]

    def delete_stale(self, since: datetime | None) -> tuple[str, list]:
        """Rows whose event no longer touches the space at all."""
        mapped, mapped_params = self._mapped()
        sql = f"""
            DELETE FROM {self.occupancy} WHERE space_id = %s {self._since("timestamp", since)}
            AND NOT EXISTS (SELECT 1 {mapped} AND e.id = {self.occupancy}.event_id)"""
        return sql, [self.space.id, *self._since_params(since), *mapped_params]

    def insert_mapped(
        self, since: datetime | None, *, last_row: tuple | None, event_ids: Sequence[int] | None = None
    ) -> tuple[str, list]:
        mapped, mapped_params = self._mapped()
        delta, delta_params = self._delta()
        # A row appended after all the space's rows extends history and settles by its age alone; one landing
        # among them is a late event rewriting history, pending like the rows after it that change.
        if last_row is None:
            appended, appended_params = "1 = 1", []
        else:
            appended = f"(e.{q('timestamp')}, -({delta}), e.dpu_id) > (%s, %s, %s)"
            timestamp, last_delta, last_dpu = last_row
            appended_params = [*delta_params, _db_instant(timestamp), -last_delta, last_dpu]
        ids = f"AND e.id IN ({', '.join(['%s'] * len(event_ids))})" if event_ids else ""
        sql = f"""
            INSERT INTO {self.occupancy} (created, modified, space_id, {q("timestamp")}, event_id, dpu_id, delta,
                                          {q("count")}, status)
            SELECT %s, %s, %s, e.{q("timestamp")}, e.id, e.dpu_id, {delta}, 0,
                   CASE WHEN {appended} AND e.{q("timestamp")} <= %s THEN 'settled' ELSE 'pending' END
            {mapped} {self._since("e." + q("timestamp"), since)} {ids}
            ON CONFLICT (space_id, event_id) DO NOTHING"""
        params = [self.now, self.now, self.space.id, *delta_params, *appended_params, self.cutoff, *mapped_params]
        return sql, [*params, *self._since_params(since), *(event_ids or [])]

    def recount(self, since: datetime | None, *, start: int, boundary: int) -> tuple[str, list]:
        """Every count from `since` on, from the count before it, in one statement.

        A count held at zero is the running sum minus the lowest the running sum has been, when that is below
        zero (the reflection of a walk at zero): two window functions, no loop. Rows this call inserted keep
        the status they were given; older rows whose count changes go back to pending.
        """
        order = f"ORDER BY {q('timestamp')}, delta DESC, dpu_id ROWS UNBOUNDED PRECEDING"
        clamp = "0" if self.space.allow_negative else "CASE WHEN low < 0 THEN low ELSE 0 END"
        sql = f"""
            UPDATE {self.occupancy}
            SET {q("count")} = n.new_count,
                status = CASE WHEN {self.occupancy}.id > %s THEN {self.occupancy}.status ELSE 'pending' END,
                modified = CASE WHEN {self.occupancy}.id > %s THEN {self.occupancy}.modified ELSE %s END
            FROM (
                SELECT id, old_count, running - {clamp} AS new_count
                FROM (
                    SELECT id, old_count, running, MIN(running) OVER ({order}) AS low
                    FROM (
                        SELECT id, {q("count")} AS old_count, {q("timestamp")}, delta, dpu_id,
                               %s + SUM(delta) OVER ({order}) AS running
                        FROM {self.occupancy}
                        WHERE space_id = %s {self._since("timestamp", since)}
                    ) summed
                ) lowest
            ) n
            WHERE {self.occupancy}.id = n.id AND n.new_count <> n.old_count"""
        return sql, [boundary, boundary, self.now, start, self.space.id, *self._since_params(since)]

    @staticmethod
    def _since(column: str, since: datetime | None) -> str:
        return "" if since is None else f"AND {column} >= %s"

    @staticmethod
    def _since_params(since: datetime | None) -> list:
        return [] if since is None else [_db_instant(since)]


def q(name: str) -> str:
    return connection.ops.quote_name(name)


def _db_instant(instant: datetime):
    return connection.ops.adapt_datetimefield_value(instant)
