"""Writing the occupancy time series: the one recalculation every path goes through, and settling."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from config.sql import among, db_instant, execute, for_update, from_db_instant, q, typed, values_rows
from dpu.models import DpuAssignment, DpuEvent
from occupancy.models import SpaceOccupancy
from spaces.models import Doorway, Space


def occupancy_recalculate(
    *,
    since_by_space: Mapping[int, datetime | None] | None = None,
    new_event_ids: Sequence[int] | None = None,
    now: datetime | None = None,
) -> list[int]:
    """Make the occupancy rows of each space equal to what its events say, from `since` on; returns the spaces.

    Either `since_by_space`, after a layout change, where any event from `since` on may have gained, lost or
    flipped its row in the space (`since` None rebuilds the space's whole history); or `new_event_ids`, from
    ingest, where the only change is that those events were stored: the spaces they touch are found, each from
    its earliest new event, their rows added and nothing else looked for; then those spaces are settled.

    Rows before `since` are not read beyond the one row just before it, and not written: a late event costs the
    rows after it, never the whole history. Rows whose count changes become pending again. Incremental ingest,
    assignment changes and full rebuilds all call this. However many spaces, it is a handful of statements:
    every space is a row of one VALUES list that each statement joins (see Scope).
    """
    now = now or timezone.now()
    sql = Sql(now=now)
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        # Two writers recalculating the same space would each start from the rows they saw and the later commit
        # would silently drop the other's event. Space rows are locked in id order, so writers that share several
        # spaces queue instead of deadlocking; callers that already hold the locks re-take them for free. What
        # the statements below read, they read after the locks are held.
        if new_event_ids is None:
            cursor.execute(*sql.lock(list(since_by_space or {})))
            locked = [(space, allow, since_by_space[space]) for space, allow, _ in cursor.fetchall()]
        elif new_event_ids:
            execute(cursor, *sql.lock_touched(new_event_ids), rows=len(new_event_ids))
            locked = [(space, allow, from_db_instant(since)) for space, allow, since in cursor.fetchall()]
        else:
            locked = []
        if not locked:
            return []
        if new_event_ids is None:
            scopes, boundary = _scopes(sql, locked)
            cursor.execute(*sql.update_flipped(scopes))
            cursor.execute(*sql.delete_stale(scopes))
            cursor.execute(*sql.insert_mapped(sql.values(scopes)))
        elif connection.vendor == "postgresql":
            # One round trip: the scopes are read, the rows inserted and the spaces settled by one statement.
            execute(cursor, *sql.ingest(locked, event_ids=new_event_ids), rows=len(new_event_ids))
            scopes, boundary = _scopes_from(locked, cursor.fetchall())
        else:
            scopes, boundary = _scopes(sql, locked)
            cursor.execute(*sql.insert_mapped(sql.values(scopes), event_ids=new_event_ids))
            cursor.execute(*sql.settle([scope.space_id for scope in scopes]))
        # Rows appended after all of a space's rows got their counts as they were inserted; the rest recount.
        stale = [scope for scope in scopes if not (new_event_ids is not None and scope.appends)]
        if stale:
            # Planned for its `since` each time: how many rows follow it decides between walking the index and
            # scanning the table.
            cursor.execute(*sql.recount(stale, boundary=boundary))
    return [scope.space_id for scope in scopes]


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
    change, which is what settling is measured from. In SQL, not the ORM: ingest runs it on every request, and
    building the query cost more than running it on the partial index `occupancy_pending`.
    """
    sql, params = Sql(now=now or timezone.now()).settle(None if space_ids is None else list(space_ids))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


EARLIEST = datetime(1, 1, 1, tzinfo=UTC)  # `since` of a whole-history rebuild: before every row


@dataclass(frozen=True)
class Scope:
    """One space of a recalculation: where it starts, the count just before, and the space's last row."""

    space_id: int
    since: datetime
    start: int  # the count just before `since` (0 before the first row)
    allow_negative: bool
    last: tuple | None  # (timestamp, delta, dpu_id) of the space's latest row, None when it has none

    @property
    def appends(self) -> bool:
        """Whether everything from `since` on comes after all the space's rows (so `start` is the last count)."""
        return self.last is None or self.since > self.last[0]

    def row(self) -> tuple:
        """The scope as a row of Sql's VALUES list; the last row's delta is negated, as the row order ranks it."""
        last_timestamp, last_delta, last_dpu = self.last or (None, None, None)
        return (
            self.space_id,
            db_instant(self.since),
            self.start,
            int(self.allow_negative),
            None if last_timestamp is None else db_instant(last_timestamp),
            None if last_delta is None else -last_delta,
            last_dpu,
        )


def _scopes(sql: "Sql", locked: list[tuple[int, bool, datetime | None]]) -> tuple[list[Scope], int]:
    """The Scope of each locked (space, allow_negative, since), read in one statement, and the highest occupancy
    row id: rows above it are the ones this recalculation adds."""
    scope, params = sql.scope(locked)
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {scope} {sql.SCOPE_SELECT.format(occupancy=sql.occupancy)}", params)
        return _scopes_from(locked, cursor.fetchall())


def _scopes_from(locked: list[tuple[int, bool, datetime | None]], rows: list[tuple]) -> tuple[list[Scope], int]:
    """Scopes from the rows of Sql.SCOPE_SELECT."""
    found = {
        space: (start, last_timestamp, last_delta, last_dpu)
        for space, start, last_timestamp, last_delta, last_dpu, _ in rows
    }
    scopes = []
    for space, allow_negative, since in locked:
        start, last_timestamp, last_delta, last_dpu = found[space]
        last = None if last_timestamp is None else (from_db_instant(last_timestamp), last_delta, last_dpu)
        scopes.append(Scope(space, since or EARLIEST, start, allow_negative, last))
    return scopes, (rows[0][-1] if rows else None) or 0


class Sql:
    """The statements of a recalculation, with their parameters, for any number of spaces at once.

    Each statement starts with the CTE `s`, one row per space, joined to the events or rows it covers: read from the
    space's rows (`scope`), or the Scopes Python already holds (`values`).
    """

    ORDER = "ORDER BY {ts}, delta DESC, dpu_id ROWS UNBOUNDED PRECEDING"  # SpaceOccupancy.ORDER, in SQL
    # A count held at zero is the running sum minus the lowest the running sum has been, when that is below zero
    # (the reflection of a walk at zero): two window functions, no loop.
    CLAMPED = "running - CASE WHEN allow_negative = 1 OR low >= 0 THEN 0 ELSE low END"

    # What a scope's computed columns tell Python (see _scopes_from), and the row ids so far.
    SCOPE_SELECT = "SELECT space_id, start, last_ts, -last_rank, last_dpu, (SELECT MAX(id) FROM {occupancy}) FROM s"

    def __init__(self, *, now: datetime):
        self.occupancy = q(SpaceOccupancy._meta.db_table)
        self.event = q(DpuEvent._meta.db_table)
        self.assignment = q(DpuAssignment._meta.db_table)
        self.doorway = q(Doorway._meta.db_table)
        self.now = db_instant(now)
        self.cutoff = db_instant(now - settings.OCCUPANCY_SETTLE_AFTER)
        self.space = q(Space._meta.db_table)

    def _assigned(self) -> str:
        """Events `e`, each with the assignment `a` valid at its instant and that assignment's doorway `d`."""
        ts = f"e.{q('timestamp')}"
        return f"""FROM {self.event} e
            JOIN {self.assignment} a ON a.dpu_id = e.dpu_id AND a.valid_from <= {ts}
                 AND (a.valid_to IS NULL OR {ts} < a.valid_to)
            JOIN {self.doorway} d ON d.id = a.doorway_id"""

    def lock(self, space_ids: Sequence[int]) -> tuple[str, list]:
        """Lock the spaces; (id, allow_negative, None) of each, in id order."""
        where, params = among("id", space_ids)
        return f"SELECT id, allow_negative, NULL FROM {self.space} WHERE {where} ORDER BY id {for_update()}", params

    def lock_touched(self, event_ids: Sequence[int]) -> tuple[str, list]:
        """Lock the spaces the events touch, through the assignment valid at each event's instant; (id,
        allow_negative, earliest of its events) of each, in id order."""
        ts = f"e.{q('timestamp')}"
        where, params = among("e.id", event_ids)
        sql = f"""
            SELECT sp.id, sp.allow_negative, t.since
            FROM {self.space} sp JOIN (
                SELECT x.id AS space_id, MIN({ts}) AS since
                {self._assigned()}
                JOIN {self.space} x ON x.id = d.side_a_id OR x.id = d.side_b_id
                WHERE {where}
                GROUP BY x.id
            ) t ON t.space_id = sp.id
            ORDER BY sp.id {for_update("sp")}"""
        return sql, params

    def scope(self, locked: Sequence[tuple[int, bool, datetime | None]]) -> tuple[str, list]:
        """The CTE `s` for locked (space, allow_negative, since), its other columns read from each space's rows:
        the count just before `since` and the latest row (its delta negated, as the row order ranks it)."""
        rows = [(space, db_instant(since or EARLIEST), int(allow_negative)) for space, allow_negative, since in locked]
        values, params = values_rows(rows, ("bigint", "timestamptz", "integer"))
        latest_first = f"ORDER BY o.{q('timestamp')} DESC, o.delta ASC, o.dpu_id DESC LIMIT 1"

        def latest(column: str, before: str = "") -> str:
            return (
                f"(SELECT o.{q(column)} FROM {self.occupancy} o WHERE o.space_id = v.space_id {before} {latest_first})"
            )

        before = f"AND o.{q('timestamp')} < v.since"
        sql = f"""v (space_id, since, allow_negative) AS ({values}),
            s AS (
                SELECT v.space_id, v.since, COALESCE({latest("count", before)}, 0) AS start,
                       v.allow_negative, {latest("timestamp")} AS last_ts, -{latest("delta")} AS last_rank,
                       {latest("dpu_id")} AS last_dpu
                FROM v
            )"""
        return sql, params

    @staticmethod
    def values(scopes: Sequence[Scope]) -> tuple[str, list]:
        """The CTE `s` for Scopes already read, as a list of rows."""
        types = ("bigint", "timestamptz", "integer", "integer", "timestamptz", "integer", "bigint")
        values, params = values_rows([scope.row() for scope in scopes], types)
        return f"s (space_id, since, start, allow_negative, last_ts, last_rank, last_dpu) AS ({values})", params

    def settle(self, space_ids: Sequence[int] | str | None) -> tuple[str, list]:
        """Settle the pending rows that are old enough, in the spaces (ids, a subquery, or None for all)."""
        if space_ids is None:
            spaces, params = "", []
        elif isinstance(space_ids, str):
            spaces, params = f"AND space_id IN ({space_ids})", []
        else:
            where, params = among("space_id", space_ids)
            spaces = f"AND {where}"
        sql = f"""UPDATE {self.occupancy} SET status = 'settled'
            WHERE status = 'pending' AND modified <= %s AND {q("timestamp")} <= %s {spaces}"""
        return sql, [self.cutoff, self.cutoff, *params]

    def ingest(self, locked: Sequence[tuple[int, bool, datetime]], *, event_ids: Sequence[int]) -> tuple[str, list]:
        """PostgreSQL: the scopes of the locked spaces read (SCOPE_SELECT), the rows of the events inserted and the
        spaces settled, in one statement. Its parts all see the rows as they were before it."""
        scope, scope_params = self.scope(locked)
        insert, insert_params = self._insert(event_ids)
        settle, settle_params = self.settle("SELECT space_id FROM s")
        sql = f"WITH {scope}, inserted AS ({insert}), settled AS ({settle}) "
        sql += self.SCOPE_SELECT.format(occupancy=self.occupancy)
        return sql, [*scope_params, *insert_params, *settle_params]

    def _mapped(self) -> str:
        """Events from each scope's `since` that touch its space, each with its delta there: the assignment valid
        at its instant decides. +1 adds to the side it enters and takes from the other; NULL = NULL is not true,
        so outside works too."""
        ts = f"e.{q('timestamp')}"
        return f"""
            SELECT s.space_id, e.id AS event_id, {ts} AS ts, e.dpu_id,
                   CASE WHEN a.enters_id = s.space_id THEN e.direction ELSE -e.direction END AS delta,
                   s.start, s.allow_negative, s.last_ts, s.last_rank, s.last_dpu
            {self._assigned()}
            JOIN s ON (d.side_a_id = s.space_id OR d.side_b_id = s.space_id) AND {ts} >= s.since"""

    def update_flipped(self, scopes: Sequence[Scope]) -> tuple[str, list]:
        """Rows whose event still touches the space but now from the other side: the row changes, pending."""
        scope, params = self.values(scopes)
        o = self.occupancy
        sql = f"""
            WITH {scope}
            UPDATE {o} SET delta = m.delta, status = 'pending', modified = %s
            FROM ({self._mapped()}) m
            WHERE {o}.space_id = m.space_id AND {o}.event_id = m.event_id AND {o}.delta <> m.delta"""
        return sql, [*params, self.now]

    def delete_stale(self, scopes: Sequence[Scope]) -> tuple[str, list]:
        """Rows whose event no longer touches the space at all."""
        scope, params = self.values(scopes)
        o = self.occupancy
        sql = f"""
            WITH {scope}
            DELETE FROM {o}
            WHERE EXISTS (SELECT 1 FROM s WHERE s.space_id = {o}.space_id AND {o}.{q("timestamp")} >= s.since)
              AND NOT EXISTS (SELECT 1 FROM ({self._mapped()}) m
                              WHERE m.space_id = {o}.space_id AND m.event_id = {o}.event_id)"""
        return sql, params

    def insert_mapped(self, scope: tuple[str, list], *, event_ids: Sequence[int] | None = None) -> tuple[str, list]:
        """The rows of the events each scope covers (of `event_ids` only, when given), counted as they go in.

        The counts are right for a scope that `appends` (they continue from its last count); the others are
        recounted after. A row appended after all the space's rows extends history and settles by its age
        alone; one landing among them is a late event rewriting history, pending like the rows after it that
        change.
        """
        insert, params = self._insert(event_ids)
        return f"WITH {scope[0]} {insert}", [*scope[1], *params]

    def _insert(self, event_ids: Sequence[int] | None) -> tuple[str, list]:
        """insert_mapped without its CTE `s`."""
        ids, id_params = ("", []) if event_ids is None else among("e.id", event_ids)
        order = self.ORDER.format(ts="ts")
        partition = f"PARTITION BY space_id {order}"
        sql = f"""
            INSERT INTO {self.occupancy} (created, modified, space_id, {q("timestamp")}, event_id, dpu_id, delta,
                                          {q("count")}, status)
            SELECT {typed("timestamptz")}, {typed("timestamptz")}, space_id, ts, event_id, dpu_id, delta,
                   {self.CLAMPED},
                   CASE WHEN (last_ts IS NULL OR (ts, -delta, dpu_id) > (last_ts, last_rank, last_dpu))
                        AND ts <= %s THEN 'settled' ELSE 'pending' END
            FROM (
                SELECT *, MIN(running) OVER ({partition}) AS low
                FROM (
                    SELECT *, start + SUM(delta) OVER ({partition}) AS running
                    FROM ({self._mapped()} {"WHERE " + ids if ids else ""}) m
                ) summed
            ) lowest
            WHERE true
            ON CONFLICT (space_id, event_id) DO NOTHING"""
        return sql, [self.now, self.now, self.cutoff, *id_params]

    def recount(self, scopes: Sequence[Scope], *, boundary: int) -> tuple[str, list]:
        """Every count from each scope's `since` on, from the count before it, in one statement.

        Rows with ids above `boundary`
        were inserted by this recalculation and keep the status they were given; older rows whose count
        changes go back to pending.
        """
        scope, params = self.values(scopes)
        o = self.occupancy
        partition = f"PARTITION BY space_id {self.ORDER.format(ts=q('timestamp'))}"
        inner = f"PARTITION BY r.space_id {self.ORDER.format(ts='r.' + q('timestamp'))}"
        sql = f"""
            WITH {scope}
            UPDATE {o}
            SET {q("count")} = n.new_count,
                status = CASE WHEN {o}.id > %s THEN {o}.status ELSE 'pending' END,
                modified = CASE WHEN {o}.id > %s THEN {o}.modified ELSE %s END
            FROM (
                SELECT id, old_count, {self.CLAMPED} AS new_count
                FROM (
                    SELECT id, old_count, running, allow_negative, MIN(running) OVER ({partition}) AS low
                    FROM (
                        SELECT r.id, r.{q("count")} AS old_count, r.space_id, r.{q("timestamp")}, r.delta, r.dpu_id,
                               s.allow_negative, s.start + SUM(r.delta) OVER ({inner}) AS running
                        FROM {o} r JOIN s ON r.space_id = s.space_id AND r.{q("timestamp")} >= s.since
                    ) summed
                ) lowest
            ) n
            WHERE {o}.id = n.id AND n.new_count <> n.old_count"""
        return sql, [*params, boundary, boundary, self.now]
