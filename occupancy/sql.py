"""The statements of a recalculation (occupancy.services.occupancy_recalculate), for any number of spaces at once.

Each statement starts with the CTE `s`, one row per space, joined to the events or rows it covers: read from the
space's rows (`Sql.scope`), or the Scopes Python already holds (`Sql.values`).
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection

from config.sql import among, db_instant, for_update, q, typed, values_rows
from dpu.models import DpuAssignment, DpuEvent
from occupancy.latest import BLOCKS, block_of, count_sql
from occupancy.models import OccupancyBlock, OccupancyReset, SpaceOccupancy
from spaces.models import Doorway, Space

EARLIEST = datetime(1, 1, 1, tzinfo=UTC)  # `since` of a whole-history rebuild: before every row
LATEST = datetime(9999, 12, 31, tzinfo=UTC)  # `until` of a recalculation with no end: after every row
Kind = SpaceOccupancy.Kind


@dataclass(frozen=True)
class Scope:
    """One space of a recalculation: where it starts, the count just before, the space's last row, and where the
    recalculation ends.

    Counts after a reset do not depend on anything before it, so a recalculation ends at the first reset after
    what changed (`until`): no late event costs more than the rows up to the space's next reset.
    """

    space_id: int
    since: datetime
    start: int  # the count just before `since` (0 before the first row)
    allow_negative: bool
    last: tuple | None  # (timestamp, kind, dpu_id) of the space's latest row but daily resets; None when none
    next_reset: datetime | None  # the first reset at or after `since`
    until: datetime | None  # rows are recounted up to the resets at this instant (None: to the end)

    def appends(self, through: datetime) -> bool:
        """Whether rows from `since` to `through` come after all the space's rows (daily resets aside) with no
        reset among them, so that they count on from `start` as they are inserted."""
        after_last = self.last is None or self.since > self.last[0]
        return after_last and (self.next_reset is None or self.next_reset >= through)

    def row(self) -> tuple:
        """The scope as a row of Sql's VALUES list."""
        last_timestamp, last_kind, last_dpu = self.last or (None, None, None)
        return (
            self.space_id,
            db_instant(self.since),
            self.start,
            int(self.allow_negative),
            None if last_timestamp is None else db_instant(last_timestamp),
            last_kind,
            last_dpu,
            db_instant(LATEST if self.until is None else self.until),
        )


@dataclass(frozen=True)
class NewEvents:
    """The events an ingest just stored: their ids, and the span of their timestamps that bounds each read of them,
    so that on PostgreSQL the database looks only in the months (partitions) that hold them."""

    ids: list[int]
    first: datetime
    last: datetime

    @classmethod
    def of(cls, events: Sequence[tuple[int, datetime]]) -> "NewEvents":
        """From (id, timestamp) of each event."""
        instants = [timestamp for _, timestamp in events]
        return cls([event_id for event_id, _ in events], min(instants), max(instants))

    def where(self) -> tuple[str, list]:
        """The condition on the events `e` that picks these."""
        where, params = among("e.id", self.ids)
        ts = f"e.{q('timestamp')}"
        return f"{where} AND {ts} >= %s AND {ts} <= %s", [*params, db_instant(self.first), db_instant(self.last)]


class Sql:
    """The statements of a recalculation, with their parameters."""

    ORDER = "ORDER BY {ts}, kind, dpu_id ROWS UNBOUNDED PRECEDING"  # SpaceOccupancy.ORDER, in SQL
    # A count held at zero is the running sum minus the lowest the running sum has been, when that is below zero
    # (the reflection of a walk at zero): two window functions, no loop.
    CLAMPED = "running - CASE WHEN allow_negative = 1 OR low >= 0 THEN 0 ELSE low END"
    # An event's kind from its delta in the space.
    KIND = f"CASE WHEN delta = 1 THEN {Kind.ENTRANCE} ELSE {Kind.EXIT} END"

    # What a scope's computed columns tell Python (see occupancy.services._scopes_from), and the row ids so far.
    SCOPE_COLUMNS = "space_id, start, last_ts, last_kind, last_dpu, next_reset, until"

    def __init__(self, *, now: datetime):
        self.occupancy = q(SpaceOccupancy._meta.db_table)
        self.event = q(DpuEvent._meta.db_table)
        self.assignment = q(DpuAssignment._meta.db_table)
        self.doorway = q(Doorway._meta.db_table)
        self.reset = q(OccupancyReset._meta.db_table)
        self.space = q(Space._meta.db_table)
        self.now = db_instant(now)
        self.cutoff = db_instant(now - settings.OCCUPANCY_SETTLE_AFTER)

    def _assigned(self) -> str:
        """Events `e`, each with the assignment `a` valid at its instant and that assignment's doorway `d`."""
        ts = f"e.{q('timestamp')}"
        return f"""FROM {self.event} e
            JOIN {self.assignment} a ON a.dpu_id = e.dpu_id AND a.valid_from <= {ts}
                 AND (a.valid_to IS NULL OR {ts} < a.valid_to)
            JOIN {self.doorway} d ON d.id = a.doorway_id"""

    SPACE_COLUMNS = "allow_negative, time_zone, daily_reset"

    def lock(self, space_ids: Sequence[int]) -> tuple[str, list]:
        """Lock the spaces; (id, allow_negative, time_zone, daily_reset) of each, in id order."""
        where, params = among("id", space_ids)
        sql = f"SELECT id, {self.SPACE_COLUMNS} FROM {self.space} WHERE {where} ORDER BY id {for_update()}"
        return sql, params

    def boundary(self) -> str:
        """SQL for the highest occupancy row id so far: rows above it are the ones a recalculation adds. On
        PostgreSQL the sequence's last value, not MAX(id), which would descend the id index of every monthly
        partition."""
        if connection.vendor != "postgresql":
            return f"(SELECT MAX(id) FROM {self.occupancy})"
        sequence = q(f"{SpaceOccupancy._meta.db_table}_id_seq")
        return f"(SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {sequence})"

    def scope_select(self, boundary: str) -> str:
        """What a scope's computed columns tell Python (see occupancy.services._scopes_from), and `boundary`."""
        return f"SELECT {self.SCOPE_COLUMNS}, {boundary} FROM s"

    def _last_from(self, space: str) -> str:
        """SQL for the start of the block that holds the space's latest row but daily resets (NULL: none), on
        PostgreSQL (NULL on SQLite, which needs none): the later of its latest block with an entrance or exit and
        the block of its latest reset. One index descent each, in the blocks and in the resets."""
        if connection.vendor != "postgresql":
            return "NULL"
        events = (
            f"(SELECT b.start FROM {BLOCKS} b WHERE b.space_id = {space} AND b.entrances + b.exits > 0 "
            "ORDER BY b.start DESC LIMIT 1)"
        )
        ts = q("timestamp")
        reset = (
            f"(SELECT date_bin('{OccupancyBlock.MINUTES} minutes', r.{ts}, timestamptz 'epoch') FROM {self.reset} r "
            f"WHERE r.space_id = {space} ORDER BY r.{ts} DESC LIMIT 1)"
        )
        return f"GREATEST({events}, {reset})"

    def lock_touched(self, events: NewEvents) -> list[tuple[str, list]]:
        """Lock the spaces the events touch, through the assignment valid at each event's instant, then read (id,
        allow_negative, time_zone, daily_reset, earliest and latest of its events, _last_from, the boundary, and
        the start of its latest block) of each, in id order: two statements, to run one after the other
        (config.sql.execute_all). The second reads the rows as they are once the locks are held: read in the
        locking statement, they would be as they were before it waited for a concurrent ingest to commit."""
        ts = f"e.{q('timestamp')}"
        where, params = events.where()
        columns = ", ".join(f"sp.{column.strip()}" for column in self.SPACE_COLUMNS.split(","))
        touched = f"""FROM {self.space} sp JOIN (
                SELECT x.id AS space_id, MIN({ts}) AS since, MAX({ts}) AS through
                {self._assigned()}
                JOIN {self.space} x ON x.id = d.side_a_id OR x.id = d.side_b_id
                WHERE {where}
                GROUP BY x.id
            ) t ON t.space_id = sp.id
            ORDER BY sp.id"""
        read = f"""
            SELECT sp.id, {columns}, t.since, t.through, {self._last_from("sp.id")}, {self.boundary()},
                   (SELECT MAX(b.start) FROM {BLOCKS} b WHERE b.space_id = sp.id)
            {touched}"""
        lock = for_update("sp")
        return [(f"SELECT sp.id {touched} {lock}", params), (read, params)] if lock else [(read, params)]

    def scope(
        self,
        locked: Sequence[tuple[int, bool, datetime | None, tuple | None]],
        *,
        last_from: Mapping[int, datetime | None] | None = None,
        rows_end: datetime | None = None,
    ) -> tuple[str, list]:
        """The CTE `s` for locked (space, allow_negative, since, after), its other columns read from each space's
        rows: the count just before `since`, the latest row but daily resets, the first reset at or after `since`
        and the first reset after `after`, a (timestamp, kind) (None: no end).

        `last_from` (PostgreSQL), by space: the start of the block that holds its latest row but daily resets
        (None: it has none), as lock_touched reads it. The latest row is then looked for from there only, and the
        database prunes the months (partitions) before the earliest of them; without, every month is walked back,
        one index descent in each partition (the default partition keeps PostgreSQL from stopping at the first
        month that has a row). `rows_end`: every row of the spaces is before it (None: unknown); it bounds the
        searches for later rows, which would otherwise visit every month ahead and the default partition.
        """
        bounded = connection.vendor == "postgresql" and last_from is not None
        rows = [
            (
                space,
                db_instant(since or EARLIEST),
                db_instant(block_of(since or EARLIEST)),
                int(allow_negative),
                None if after is None else db_instant(after[0]),
                None if after is None else after[1],
                None if not bounded or last_from[space] is None else db_instant(last_from[space]),
            )
            for space, allow_negative, since, after in locked
        ]
        types = ("bigint", "timestamptz", "timestamptz", "integer", "timestamptz", "integer", "timestamptz")
        values, params = values_rows(rows, types)
        ts = q("timestamp")
        latest_first = f"ORDER BY o.{ts} DESC, o.kind DESC, o.dpu_id DESC LIMIT 1"

        def latest(column: str, where: str = "") -> str:
            return (
                f"(SELECT o.{q(column)} FROM {self.occupancy} o WHERE o.space_id = v.space_id {where} {latest_first})"
            )

        def first_reset(where: str) -> str:
            return (
                f"(SELECT o.{ts} FROM {self.occupancy} o WHERE o.space_id = v.space_id AND o.kind >= {Kind.DAILY_RESET}"
                f" AND {where} AND o.{ts} >= {typed('timestamptz')} AND o.{ts} < {typed('timestamptz')}"
                f" ORDER BY o.{ts}, o.kind LIMIT 1)"
            )

        # Constants that hold each space's ranges below, which the database prunes the months (partitions) by when
        # it starts the statement: by the VALUES list's columns alone it would visit every month.
        instant = typed("timestamptz")
        sinces = [since or EARLIEST for _, _, since, _ in locked]
        afters = [after[0] for _, _, _, after in locked if after is not None]
        earliest_lo, latest_since = db_instant(block_of(min(sinces))), db_instant(max(sinces))
        first_after = db_instant(min(afters) if afters else LATEST)
        end = db_instant(rows_end or LATEST)
        not_daily = f"AND o.kind <> {Kind.DAILY_RESET}"
        start = count_sql("v.space_id", "v.lo", "v.since", inclusive=False, within=(instant, instant))
        bound_params = []
        if connection.vendor == "postgresql":
            find = f"SELECT o.{ts}, o.kind, o.dpu_id FROM {self.occupancy} o WHERE o.space_id = v.space_id {not_daily}"
            if bounded:
                # Each space's own bound, and the earliest of them as a constant to prune by.
                known = [instant for instant in last_from.values() if instant is not None]
                find += f" AND o.{ts} >= v.last_from AND o.{ts} >= {typed('timestamptz')}"
                bound_params = [db_instant(min(known) if known else LATEST)]
            if rows_end is not None:
                find += f" AND o.{ts} < {typed('timestamptz')}"
                bound_params.append(end)
            last = f"LEFT JOIN LATERAL ({find} {latest_first}) l ON true"
            last_columns = f"l.{ts} AS last_ts, l.kind AS last_kind, l.dpu_id AS last_dpu"
        else:
            last = ""
            last_columns = (
                f"{latest('timestamp', not_daily)} AS last_ts, {latest('kind', not_daily)} AS last_kind, "
                f"{latest('dpu_id', not_daily)} AS last_dpu"
            )
        sql = f"""v (space_id, since, lo, allow_negative, after_ts, after_kind, last_from) AS ({values}),
            s AS (
                SELECT v.space_id, v.since, {start} AS start, v.allow_negative, {last_columns},
                       {first_reset(f"o.{ts} >= v.since")} AS next_reset,
                       {first_reset(f"o.{ts} >= v.after_ts AND (o.{ts} > v.after_ts OR o.kind > v.after_kind)")}
                           AS until
                FROM v {last}
            )"""
        # In the order of their placeholders: the start's row range, the next resets', the latest row's bound.
        resets = [db_instant(min(sinces)), end, first_after, end]
        return sql, [*params, earliest_lo, latest_since, *resets, *bound_params]

    @staticmethod
    def values(scopes: Sequence[Scope]) -> tuple[str, list]:
        """The CTE `s` for Scopes already read, as a list of rows."""
        types = ("bigint", "timestamptz", "integer", "integer", "timestamptz", "integer", "bigint", "timestamptz")
        values, params = values_rows([scope.row() for scope in scopes], types)
        columns = "space_id, since, start, allow_negative, last_ts, last_kind, last_dpu, until"
        return f"s ({columns}) AS ({values})", params

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

    def ingest(
        self,
        locked: Sequence[tuple[int, bool, datetime, tuple]],
        *,
        last_from: Mapping[int, datetime | None],
        rows_end: datetime,
        boundary: int,
        events: NewEvents,
        daily: Sequence[tuple[int, datetime]],
    ) -> tuple[str, list]:
        """PostgreSQL: the scopes of the locked spaces read (scope_select, with the `boundary` lock_touched read),
        the rows of the events and the daily resets after them inserted and the spaces settled, in one statement.
        Its parts all see the rows as they were before it."""
        scope, scope_params = self.scope(locked, last_from=last_from, rows_end=rows_end)
        insert, insert_params = self._insert(events)
        resets, reset_params = self.insert_daily(daily)
        settle, settle_params = self.settle("SELECT space_id FROM s")
        sql = f"WITH {scope}, inserted AS ({insert}), daily AS ({resets}), settled AS ({settle}) "
        sql += self.scope_select(typed("bigint"))
        return sql, [*scope_params, *insert_params, *reset_params, *settle_params, boundary]

    def _mapped(self) -> str:
        """Events from each scope's `since` that touch its space, each with its delta there: the assignment valid
        at its instant decides. +1 adds to the side it enters and takes from the other; NULL = NULL is not true,
        so outside works too."""
        ts = f"e.{q('timestamp')}"
        return f"""
            SELECT s.space_id, e.id AS event_id, {ts} AS ts, e.dpu_id,
                   CASE WHEN a.enters_id = s.space_id THEN e.direction ELSE -e.direction END AS delta,
                   s.start, s.allow_negative, s.last_ts, s.last_kind, s.last_dpu
            {self._assigned()}
            JOIN s ON (d.side_a_id = s.space_id OR d.side_b_id = s.space_id) AND {ts} >= s.since"""

    def update_flipped(self, scopes: Sequence[Scope]) -> tuple[str, list]:
        """Rows whose event still touches the space but now from the other side: the row changes, pending."""
        scope, params = self.values(scopes)
        o = self.occupancy
        sql = f"""
            WITH {scope}
            UPDATE {o} SET delta = m.delta, kind = m.kind, status = 'pending', modified = %s
            FROM (SELECT *, {self.KIND} AS kind FROM ({self._mapped()}) mapped) m
            WHERE {o}.space_id = m.space_id AND {o}.event_id = m.event_id AND {o}.delta <> m.delta"""
        return sql, [*params, self.now]

    def delete_stale(self, scopes: Sequence[Scope]) -> tuple[str, list]:
        """Event rows whose event no longer touches the space at all."""
        scope, params = self.values(scopes)
        o = self.occupancy
        sql = f"""
            WITH {scope}
            DELETE FROM {o}
            WHERE {o}.kind < {Kind.DAILY_RESET}
              AND EXISTS (SELECT 1 FROM s WHERE s.space_id = {o}.space_id AND {o}.{q("timestamp")} >= s.since)
              AND NOT EXISTS (SELECT 1 FROM ({self._mapped()}) m
                              WHERE m.space_id = {o}.space_id AND m.event_id = {o}.event_id)"""
        return sql, params

    def insert_mapped(self, scope: tuple[str, list], *, events: NewEvents | None = None) -> tuple[str, list]:
        """The rows of the events each scope covers (of `events` only, when given), counted as they go in.

        The counts are right for a scope that `appends` (they continue from its last count); the others are
        recounted after. A row appended after all the space's rows extends history and settles by its age
        alone; one landing among them is a late event rewriting history, pending like the rows after it that
        change.
        """
        insert, params = self._insert(events)
        return f"WITH {scope[0]} {insert}", [*scope[1], *params]

    def _insert(self, events: NewEvents | None) -> tuple[str, list]:
        """insert_mapped without its CTE `s`."""
        ids, id_params = ("", []) if events is None else events.where()
        order = self.ORDER.format(ts="ts")
        partition = f"PARTITION BY space_id {order}"
        sql = f"""
            INSERT INTO {self.occupancy} (created, modified, space_id, {q("timestamp")}, kind, event_id, dpu_id, delta,
                                          {q("count")}, status)
            SELECT {typed("timestamptz")}, {typed("timestamptz")}, space_id, ts, kind, event_id, dpu_id, delta,
                   {self.CLAMPED},
                   CASE WHEN (last_ts IS NULL OR (ts, kind, dpu_id) > (last_ts, last_kind, last_dpu))
                        AND ts <= %s THEN 'settled' ELSE 'pending' END
            FROM (
                SELECT *, MIN(running) OVER ({partition}) AS low
                FROM (
                    SELECT *, start + SUM(delta) OVER ({partition}) AS running
                    FROM (SELECT *, {self.KIND} AS kind FROM ({self._mapped()} {"WHERE " + ids if ids else ""}) m) k
                ) summed
            ) lowest
            WHERE true
            ON CONFLICT (space_id, event_id, {q("timestamp")}) DO NOTHING"""
        return sql, [self.now, self.now, self.cutoff, *id_params]

    def insert_daily(self, daily: Sequence[tuple[int, datetime]]) -> tuple[str, list]:
        """Daily reset rows (count 0) at (space, instant), where there are none yet."""
        # A daily reset's count is 0 whatever came before it: it is settled once its instant is old enough.
        spaces, instants = [space for space, _ in daily], [db_instant(instant) for _, instant in daily]
        if connection.vendor == "postgresql":
            source, params = (
                "SELECT * FROM unnest(%s::bigint[], %s::timestamptz[]) AS r(space_id, ts)",
                [
                    spaces,
                    instants,
                ],
            )
        else:
            source = (
                "SELECT json_extract(value, '$[0]') AS space_id, json_extract(value, '$[1]') AS ts FROM json_each(%s)"
            )
            params = [json.dumps([[space, instant] for space, instant in zip(spaces, instants, strict=True)])]
        sql = f"""
            INSERT INTO {self.occupancy} (created, modified, space_id, {q("timestamp")}, kind, delta, {q("count")},
                                          status)
            SELECT {typed("timestamptz")}, {typed("timestamptz")}, space_id, ts, {Kind.DAILY_RESET}, 0, 0,
                   CASE WHEN ts <= {typed("timestamptz")} THEN 'settled' ELSE 'pending' END
            FROM ({source}) r
            WHERE true
            ON CONFLICT (space_id, {q("timestamp")}, kind) WHERE kind >= {Kind.DAILY_RESET} DO NOTHING"""
        return sql, [self.now, self.now, self.cutoff, *params]

    def insert_resets(self, scopes: Sequence[Scope]) -> tuple[str, list]:
        """The rows of the operators' resets from each scope's `since` on, where they have none yet (pending: a
        reset rewrites the counts after it)."""
        scope, params = self.values(scopes)
        ts = q("timestamp")
        sql = f"""
            WITH {scope}
            INSERT INTO {self.occupancy} (created, modified, space_id, {ts}, kind, reset_id, delta, {q("count")},
                                          status)
            SELECT %s, %s, r.space_id, r.{ts}, {Kind.RESET}, r.id, 0, r.{q("count")}, 'pending'
            FROM {self.reset} r JOIN s ON r.space_id = s.space_id AND r.{ts} >= s.since
            WHERE true
            ON CONFLICT (space_id, {ts}, kind) WHERE kind >= {Kind.DAILY_RESET} DO NOTHING"""
        return sql, [*params, self.now, self.now]

    def row_span(self, spaces: Sequence) -> tuple[str, list]:
        """(space, first row at or after its `since`, last row), daily resets aside, of each of `spaces` (objects
        with `space_id` and `since`): where its daily reset rows belong."""
        rows = [(space.space_id, db_instant(space.since or EARLIEST)) for space in spaces]
        values, params = values_rows(rows, ("bigint", "timestamptz"))
        ts = q("timestamp")

        def row(order: str, where: str = "") -> str:
            return (
                f"(SELECT o.{ts} FROM {self.occupancy} o WHERE o.space_id = v.space_id "
                f"AND o.kind <> {Kind.DAILY_RESET} {where} ORDER BY o.{ts} {order}, o.kind {order} LIMIT 1)"
            )

        sql = f"""WITH v (space_id, since) AS ({values})
            SELECT v.space_id, {row("ASC", f"AND o.{ts} >= v.since")}, {row("DESC")} FROM v"""
        return sql, params

    def recount(self, scopes: Sequence[Scope], *, boundary: int, segmented: bool) -> tuple[str, list]:
        """Every count from each scope's `since` up to its `until`, from the count before it, in one statement.

        `segmented` when there may be resets among those rows: each starts a segment that counts on from the
        reset's count (the first segment from `start`), and resets keep their counts. Without, one running sum
        (a third of the window work, measured: a late event's cost per later row). Rows with ids above `boundary`
        were inserted by this recalculation and keep the status they were given; older rows whose count changes
        go back to pending.
        """
        scope, params = self.values(scopes)
        o, ts = self.occupancy, q("timestamp")
        order = self.ORDER.format(ts=ts)
        reset = f"kind >= {Kind.DAILY_RESET}"
        # Both ends bound the index range; the resets at `until` are where the next recalculation would start.
        # The scopes' whole span bounds them too, as constants: those the database prunes the months (partitions)
        # by, when it plans the statement.
        span = f"{{table}}.{ts} >= {typed('timestamptz')} AND {{table}}.{ts} <= {typed('timestamptz')}"
        first, last = min(scope.since for scope in scopes), max(scope.until or LATEST for scope in scopes)
        span_params = [db_instant(first), db_instant(last)]
        rows = f"""FROM {o} r JOIN s ON r.space_id = s.space_id AND r.{ts} >= s.since AND r.{ts} <= s.until
                   AND NOT (r.{ts} = s.until AND r.{reset})
                   WHERE {span.format(table="r")}"""
        columns = f"r.id, r.{q('count')} AS old_count, r.space_id, r.{ts}, r.kind, r.delta, r.dpu_id, s.allow_negative"
        if segmented:
            counted = f"""
                SELECT id, {ts}, old_count, CASE WHEN {reset} THEN old_count ELSE {self.CLAMPED} END AS new_count
                FROM (
                    SELECT *, MIN(running) OVER segment AS low
                    FROM (
                        SELECT *, COALESCE(FIRST_VALUE(reset_count) OVER segment, start) + SUM(delta) OVER segment
                                  AS running
                        FROM (
                            SELECT {columns}, s.start, CASE WHEN r.{reset} THEN r.{q("count")} END AS reset_count,
                                   SUM(CASE WHEN r.{reset} THEN 1 ELSE 0 END)
                                       OVER (PARTITION BY r.space_id {self.ORDER.format(ts="r." + ts)}) AS seg
                            {rows}
                        ) segmented
                        WINDOW segment AS (PARTITION BY space_id, seg {order})
                    ) summed
                    WINDOW segment AS (PARTITION BY space_id, seg {order})
                ) lowest"""
        else:
            inner = f"PARTITION BY r.space_id {self.ORDER.format(ts='r.' + ts)}"
            counted = f"""
                SELECT id, {ts}, old_count, {self.CLAMPED} AS new_count
                FROM (
                    SELECT *, MIN(running) OVER (PARTITION BY space_id {order}) AS low
                    FROM (SELECT {columns}, s.start + SUM(r.delta) OVER ({inner}) AS running {rows}) summed
                ) lowest"""
        sql = f"""
            WITH {scope}
            UPDATE {o}
            SET {q("count")} = n.new_count,
                status = CASE WHEN {o}.id > %s THEN {o}.status ELSE 'pending' END,
                modified = CASE WHEN {o}.id > %s THEN {o}.modified ELSE %s END
            FROM ({counted}) n
            WHERE {o}.id = n.id AND {o}.{ts} = n.{ts} AND {span.format(table=o)} AND n.new_count <> n.old_count"""
        return sql, [*params, boundary, boundary, self.now, *span_params, *span_params]
