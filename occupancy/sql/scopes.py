"""What a recalculation knows of each space it recalculates (Scope), and of the events an ingest just stored."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from config.sql import among, db_instant, q

EARLIEST = datetime(1, 1, 1, tzinfo=UTC)  # `since` of a whole-history rebuild: before every row
LATEST = datetime(9999, 12, 31, tzinfo=UTC)  # `until` of a recalculation with no end: after every row


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
