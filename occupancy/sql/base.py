"""What every statement of a recalculation shares: the tables' names, the instants, and the SQL pieces."""

from datetime import datetime

from django.conf import settings

from config.sql import db_instant, q
from dpu.models import DpuAssignment, DpuEvent
from occupancy.models import OccupancyReset, SpaceOccupancy
from spaces.models import Doorway, Space

Kind = SpaceOccupancy.Kind


class SqlBase:
    """The tables, instants and SQL pieces every statement of a recalculation shares."""

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
