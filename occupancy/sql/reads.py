"""The statements that lock the spaces of a recalculation and read their scopes (the CTE `s`)."""

from collections.abc import Mapping, Sequence
from datetime import datetime

from django.db import connection

from config.sql import among, db_instant, for_update, q, typed, values_rows
from occupancy.latest import BLOCKS, block_of, count_sql
from occupancy.models import OccupancyBlock, SpaceOccupancy
from occupancy.sql.base import SqlBase
from occupancy.sql.scopes import EARLIEST, LATEST, NewEvents, Scope

Kind = SpaceOccupancy.Kind


class ScopeReads(SqlBase):
    """Locking the spaces and reading what each one's recalculation starts from."""

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
