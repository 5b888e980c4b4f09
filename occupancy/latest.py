"""The count of a space at an instant (or just before it), from one five-minute block and the rows of one block.

The count at T is that of the space's latest row at or before T. Walking the rows back from T finds it, but on
PostgreSQL the rows are partitioned by month (occupancy.history), so a space idle for a year would walk back
through twelve partitions; and the rows of archived months are gone. The five-minute blocks are kept for every
month and exist wherever the space has rows, so the count at T is instead:

- the latest row in T's own block at or before T, when there is one: one index descent in one partition;
- else the end count of the space's latest block before T's block: one descent in the blocks' index;
- else 0 (nothing happened before T).

Every instant before the block's start is summed up by that end count. For an instant in an archived month, where
the rows are gone, this reads the count at the start of its five minutes.

Callers pass `lo`, the start of the block that holds the instant (block_of), as a parameter next to the instant:
the database then prunes to one partition when it plans the statement, or at the latest when it starts running it.
"""

from datetime import UTC, datetime, timedelta

from config.sql import q
from occupancy.models import OccupancyBlock, SpaceOccupancy

BLOCK = timedelta(minutes=OccupancyBlock.MINUTES)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OCCUPANCY = q(SpaceOccupancy._meta.db_table)
BLOCKS = q(OccupancyBlock._meta.db_table)
TS = q("timestamp")


def block_of(instant: datetime) -> datetime:
    """The start of the block that holds `instant`."""
    return instant - (instant - EPOCH) % BLOCK


def row_sql(space: str, lo: str, instant: str, column: str, *, inclusive: bool, within: tuple[str, ...] = ()) -> str:
    """A subquery: `column` (an expression over the row `o`) of the space's latest row in [lo, instant], or in
    [lo, instant) when not `inclusive`. `within`, (first, last): constants that hold every space's [lo, instant],
    for statements that join `lo` and `instant` from a list of spaces: the database prunes partitions by
    constants, not by the columns of a join."""
    below = "<=" if inclusive else "<"
    bounds = f" AND o.{TS} >= {within[0]} AND o.{TS} <= {within[1]}" if within else ""
    return (
        f"(SELECT {column} FROM {OCCUPANCY} o WHERE o.space_id = {space} AND o.{TS} >= {lo} AND o.{TS} {below} "
        f"{instant}{bounds} ORDER BY o.{TS} DESC, o.kind DESC, o.dpu_id DESC LIMIT 1)"
    )


def block_sql(space: str, lo: str, column: str) -> str:
    """A subquery: `column` (an expression over the block `b`) of the space's latest block that starts before `lo`."""
    return (
        f"(SELECT {column} FROM {BLOCKS} b WHERE b.space_id = {space} AND b.start < {lo} ORDER BY b.start DESC LIMIT 1)"
    )


def count_sql(space: str, lo: str, instant: str, *, inclusive: bool, within: tuple[str, ...] = ()) -> str:
    """An expression: the space's count at `instant` (`inclusive`) or just before it; 0 before its first row.

    COALESCE runs the block's subquery only when the instant's own block has no row before it."""
    rows = row_sql(space, lo, instant, f"o.{q('count')}", inclusive=inclusive, within=within)
    blocks = block_sql(space, lo, "b.end_count")
    return f"COALESCE({rows}, {blocks}, 0)"
