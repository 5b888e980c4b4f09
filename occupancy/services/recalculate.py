"""Writing the occupancy time series: the one recalculation every path goes through, and settling."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.utils import timezone

from config.sql import execute, execute_all, from_db_instant, rows_changed
from history.selectors import archived_before
from observability import metrics
from occupancy.calendar import DailyReset
from occupancy.latest import BLOCK
from occupancy.models import SpaceOccupancy
from occupancy.services.blocks import blocks_refresh
from occupancy.signals import counts_recalculated
from occupancy.sql import EARLIEST, NewEvents, Scope, Sql
from spaces.models import Space

Kind = SpaceOccupancy.Kind


@dataclass(frozen=True)
class Locked:
    """A space a recalculation holds the lock of, and what changed in it: rows from `since` (None: its whole
    history), up to `after` (timestamp, kind), past which the first reset ends the recalculation (None: no end)."""

    space_id: int
    allow_negative: bool
    daily: DailyReset | None
    since: datetime | None
    after: tuple[datetime, int] | None

    @classmethod
    def from_row(cls, row: tuple, *, since: datetime | None, after: tuple[datetime, int] | None) -> "Locked":
        """From Sql.lock's columns (id, allow_negative, time_zone, daily_reset)."""
        space_id, allow_negative, time_zone, daily_reset = row[:4]
        if isinstance(daily_reset, str):  # SQLite hands back the column's text
            daily_reset = time.fromisoformat(daily_reset)
        daily = None if daily_reset is None else DailyReset(at=daily_reset, zone=ZoneInfo(time_zone))
        return cls(space_id, bool(allow_negative), daily, since, after)

    def scope_input(self) -> tuple:
        return (self.space_id, self.allow_negative, self.since, self.after)


def occupancy_recalculate(
    *,
    since_by_space: Mapping[int, datetime | None] | None = None,
    new_events: Sequence[tuple[int, datetime]] | None = None,
    to_next_reset: bool = False,
    now: datetime | None = None,
) -> list[int]:
    """Make the occupancy rows of each space equal to what its events and resets say, from `since` on; returns the
    spaces.

    Either `since_by_space`, after a layout change, where any event from `since` on may have gained, lost or
    flipped its row in the space (`since` None rebuilds the space's whole history), or a reset was added or
    removed at `since` (`to_next_reset`: nothing after the space's next reset can change); or `new_events` (id,
    timestamp), from
    ingest, where the only change is that those events were stored: the spaces they touch are found, each from
    its earliest new event, their rows added and nothing else looked for; then those spaces are settled.

    Rows before `since` are not read beyond the one row just before it, and not written; a reset ends what a late
    event or a reset recounts, since nothing after it depends on what came before. Rows whose count changes become
    pending again. A space with a daily reset gets its daily reset row after every row. Incremental ingest, layout
    changes, resets and full rebuilds all call this. However many spaces, it is a handful of statements: every
    space is a row of one VALUES list that each statement joins (see occupancy.sql.Scope).
    """
    now = now or timezone.now()
    sql = Sql(now=now)
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        # Two writers recalculating the same space would each start from the rows they saw and the later commit
        # would silently drop the other's event. Space rows are locked in id order, so writers that share several
        # spaces queue instead of deadlocking; callers that already hold the locks re-take them for free. What
        # the statements below read, they read after the locks are held.
        if new_events is None:
            cursor.execute(*sql.lock(list(since_by_space or {})))
            # Archived months are read-only history (history.services): nothing before them is recalculated, and
            # the count they end with is their last block's.
            archived = archived_before()
            locked = []
            for row in cursor.fetchall():
                since = since_by_space[row[0]]
                if archived is not None and (since is None or since < archived):
                    since = archived
                after = (since, Kind.RESET) if to_next_reset and since is not None else None
                locked.append(Locked.from_row(row, since=since, after=after))
            if locked:
                _recalculate_layout(cursor, sql, locked)
            return _recalculated([space.space_id for space in locked], now)
        if not new_events:
            return []
        events = NewEvents.of(new_events)
        execute_all(cursor, sql.lock_touched(events), rows=len(events.ids))
        locked, through, last_from, boundary, rows_end = [], {}, {}, 0, EARLIEST
        for row in cursor.fetchall():
            since, last = from_db_instant(row[4]), from_db_instant(row[5])
            locked.append(Locked.from_row(row, since=since, after=(last, Kind.EXIT)))
            through[row[0]] = last
            last_from[row[0]] = None if row[6] is None else from_db_instant(row[6])
            boundary = row[7] or 0
            if row[8] is not None:  # every row lies in a block: the spaces' rows end with their latest blocks
                rows_end = max(rows_end, from_db_instant(row[8]) + BLOCK)
        if not locked:
            return []
        _recalculate_ingest(
            cursor,
            sql,
            locked,
            through=through,
            events=events,
            last_from=last_from,
            rows_end=rows_end,
            boundary=boundary,
        )
        return _recalculated([space.space_id for space in locked], now)


def _recalculated(space_ids: list[int], now: datetime) -> list[int]:
    """Tell the rest of the service (occupancy.signals.counts_recalculated) which spaces were recalculated, still
    inside the transaction and holding their locks; returns them."""
    if space_ids:
        counts_recalculated.send(sender=occupancy_recalculate, space_ids=space_ids, now=now)
    return space_ids


def _recalculate_ingest(
    cursor,
    sql: Sql,
    locked: list[Locked],
    *,
    through: dict,
    events: NewEvents,
    last_from: dict[int, datetime | None],
    rows_end: datetime,
    boundary: int,
):
    """The rows of newly stored events: inserted, counted as they go in where they come after everything else in
    their space, the daily resets after them added, then the rest recounted up to their next reset."""
    daily = [
        (space.space_id, instant)
        for space in locked
        if space.daily is not None
        for instant in space.daily.between(space.since, through[space.space_id])
    ]
    if connection.vendor == "postgresql":
        # One round trip: the scopes are read, the rows inserted and the spaces settled by one statement.
        inputs = [space.scope_input() for space in locked]
        statement = sql.ingest(
            inputs, last_from=last_from, rows_end=rows_end, boundary=boundary, events=events, daily=daily
        )
        execute(cursor, *statement, rows=len(events.ids))
        scopes, boundary = _scopes_from(locked, cursor.fetchall())
    else:
        scopes, boundary = _scopes(sql, locked)
        cursor.execute(*sql.insert_mapped(sql.values(scopes), events=events))
        if daily:
            cursor.execute(*sql.insert_daily(daily))
        cursor.execute(*sql.settle([scope.space_id for scope in scopes]))
    # Ingest only adds rows: the events' and the daily resets', which end the rows now where they do not already.
    rows_end = max([rows_end, *(last + BLOCK for last in through.values()), *(at + BLOCK for _, at in daily)])
    # Rows appended after all of a space's rows, with no reset among them, got their counts as they were inserted;
    # the rest recount, each up to its first reset after the new events (one of those just added, maybe).
    by_id = {space.space_id: space for space in locked}
    plain, segmented, changed = [], [], []
    for scope in scopes:
        space, last = by_id[scope.space_id], through[scope.space_id]
        first_reset = scope.next_reset
        if space.daily is not None:
            first_daily = space.daily.next(scope.since)  # the first of the daily reset rows just added
            first_reset = first_daily if first_reset is None else min(first_reset, first_daily)
        if scope.appends(last) and (first_reset is None or first_reset >= last):
            changed.append((scope.space_id, scope.since, last))
            continue
        if space.daily is not None:
            until = space.daily.next(last)
            scope = scope if scope.until is not None and scope.until <= until else replace(scope, until=until)
        # Resets among the rows to recount need the segmented recount; most late events have none before `until`.
        (segmented if first_reset is not None and (scope.until is None or first_reset < scope.until) else plain).append(
            scope
        )
        changed.append((scope.space_id, scope.since, scope.until))
    # Planned for its `since` each time: how many rows follow it decides between walking the index and scanning the
    # table.
    recounted = 0
    for group, is_segmented in ((plain, False), (segmented, True)):
        if group:
            cursor.execute(*sql.recount(group, boundary=boundary, segmented=is_segmented, rows_end=rows_end))
            recounted += rows_changed(cursor)
    metrics.rows_recalculated(rows=recounted)
    blocks_refresh(cursor, changed, replace=False, rows_end=rows_end)  # ingest only adds rows


def _recalculate_layout(cursor, sql: Sql, locked: list[Locked]) -> None:
    """Rows from each space's `since` re-derived from the events, the operators' resets and the daily reset, and
    recounted: after an assignment change, a reset added or removed, a space's settings changed or a rebuild."""
    scopes, boundary = _scopes(sql, locked)
    cursor.execute(*sql.update_flipped(scopes))
    cursor.execute(*sql.delete_stale(scopes))
    cursor.execute(*sql.insert_mapped(sql.values(scopes)))
    cursor.execute(*sql.insert_resets(scopes))
    daily_spaces = {space.space_id: space for space in locked if space.daily is not None}
    if daily_spaces:
        cursor.execute(*sql.row_span(list(daily_spaces.values())))
        daily = []
        for space_id, first, last in cursor.fetchall():
            if first is None:
                continue
            scope = next(s for s in scopes if s.space_id == space_id)
            last = from_db_instant(last)
            if scope.until is not None:
                last = min(last, scope.until)
            instants = daily_spaces[space_id].daily.between(from_db_instant(first), last)
            daily += [(space_id, instant) for instant in instants]
        if daily:
            cursor.execute(*sql.insert_daily(daily))
    cursor.execute(*sql.recount(scopes, boundary=boundary, segmented=True))
    blocks_refresh(cursor, [(scope.space_id, scope.since, scope.until) for scope in scopes], replace=True)


def occupancy_rebuild(*, space_ids: Iterable[int] | None = None, now: datetime | None = None) -> None:
    """Recalculate whole histories (every space when `space_ids` is None)."""
    if space_ids is None:
        space_ids = Space.objects.values_list("id", flat=True)
    occupancy_recalculate(since_by_space=dict.fromkeys(space_ids), now=now)


def _scopes(sql: Sql, locked: list[Locked]) -> tuple[list[Scope], int]:
    """The Scope of each locked space, read in one statement, and the highest occupancy row id: rows above it are
    the ones this recalculation adds."""
    scope, params = sql.scope([space.scope_input() for space in locked])
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {scope} {sql.scope_select(sql.boundary())}", params)
        return _scopes_from(locked, cursor.fetchall())


def _scopes_from(locked: list[Locked], rows: list[tuple]) -> tuple[list[Scope], int]:
    """Scopes from the rows of Sql.scope_select."""

    def instant(value):
        return None if value is None else from_db_instant(value)

    found = {row[0]: row[1:7] for row in rows}
    scopes = []
    for space in locked:
        start, last_timestamp, last_kind, last_dpu, next_reset, until = found[space.space_id]
        last = None if last_timestamp is None else (from_db_instant(last_timestamp), last_kind, last_dpu)
        scopes.append(
            Scope(
                space.space_id,
                space.since or EARLIEST,
                start,
                space.allow_negative,
                last,
                instant(next_reset),
                instant(until),
            )
        )
    return scopes, (rows[0][-1] if rows else None) or 0


def occupancy_settle(*, space_ids: Iterable[int] | None = None, now: datetime | None = None) -> int:
    """Mark pending rows settled once both their timestamp and their last change are older than the settle age.

    Ingest runs it for the spaces it touched; `manage.py occupancy_settle` runs it for all (e.g. from cron).

    Returns how many rows were settled. Only the status changes: `modified` keeps the time of the last count
    change, which is what settling is measured from. In SQL, not the ORM: ingest runs it on every request, and
    building the query cost more than running it on the partial index `occupancy_pending`.
    """
    sql, params = Sql(now=now or timezone.now()).settle(None if space_ids is None else list(space_ids))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
