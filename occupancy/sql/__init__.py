"""The statements of a recalculation (occupancy.services.occupancy_recalculate), for any number of spaces at once.

Each statement starts with the CTE `s`, one row per space, joined to the events or rows it covers: read from the
space's rows (`Sql.scope`), or the Scopes Python already holds (`Sql.values`).
"""

from collections.abc import Mapping, Sequence
from datetime import datetime

from config.sql import typed
from occupancy.sql.reads import ScopeReads
from occupancy.sql.scopes import EARLIEST, LATEST, NewEvents, Scope
from occupancy.sql.writes import RowWrites

__all__ = ["EARLIEST", "LATEST", "NewEvents", "Scope", "Sql"]


class Sql(ScopeReads, RowWrites):
    """The statements of a recalculation, with their parameters."""

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
