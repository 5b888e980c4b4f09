"""Monthly partitions of the event log and the occupancy rows, on PostgreSQL. SQLite keeps one table each.

Each table is range-partitioned by its `timestamp`: one partition per UTC month, named `<table>_pYYYYMM`, and a
default partition, `<table>_default`, that holds the rows of any month without one (a late event into a month
nobody created, an import of old history), so that no write ever fails for want of a partition.
partitions_ensure creates the months ahead of time and moves a month's rows out of the default partition when it
creates that month. Old months go whole to history.services.history_archive.

Primary and unique keys of a partitioned table must hold the partition key: the tables' keys are (id, timestamp),
and every unique constraint has the timestamp among its columns. Django still takes `id` for the primary key,
which it stays in practice: ids come from one sequence.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection, transaction
from django.utils import timezone

from config.sql import q

AHEAD = 3  # months created ahead of the current one
PARTITION_KEY = "timestamp"
NAME = re.compile(r"_p(\d{4})(\d{2})$")
DDL_LOCK_TIMEOUT = "10s"  # a partition's DDL waits this long for a lock, then fails rather than stall every query


def tables() -> list[str]:
    """The partitioned tables: the event log and the occupancy rows."""
    from dpu.models import DpuEvent
    from occupancy.models import SpaceOccupancy

    return [DpuEvent._meta.db_table, SpaceOccupancy._meta.db_table]


@dataclass(frozen=True)
class Month:
    """A UTC month, the span of one partition."""

    start: datetime

    @classmethod
    def of(cls, instant: datetime) -> "Month":
        instant = instant.astimezone(UTC)
        return cls(datetime(instant.year, instant.month, 1, tzinfo=UTC))

    @classmethod
    def parse(cls, text: str) -> "Month":
        """From "YYYY-MM"; ValueError otherwise."""
        if not re.fullmatch(r"\d{4}-\d{2}", text):
            raise ValueError(f"{text!r} is not a month; write it as YYYY-MM, e.g. 2025-01.")
        return cls(datetime(int(text[:4]), int(text[5:]), 1, tzinfo=UTC))

    @property
    def end(self) -> datetime:
        year, month = divmod(self.start.month, 12)
        return datetime(self.start.year + year, month + 1, 1, tzinfo=UTC)

    def next(self) -> "Month":
        return Month(self.end)

    def partition(self, table: str) -> str:
        return f"{table}_p{self.start:%Y%m}"

    def __str__(self) -> str:
        return f"{self.start:%Y-%m}"


def default_partition(table: str) -> str:
    return f"{table}_default"


def literal(instant: datetime) -> str:
    """A timestamptz literal, in UTC whatever the session's time zone."""
    return f"'{instant.astimezone(UTC):%Y-%m-%d %H:%M:%S}+00'"


def is_partitioned(cursor, table: str) -> bool:
    cursor.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass(%s)", [table])
    found = cursor.fetchone()
    return bool(found and found[0])


def partitions_list(cursor, table: str) -> list[Month]:
    """The months that have a partition of `table`, in order."""
    cursor.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s)",
        [table],
    )
    months = []
    for (name,) in cursor.fetchall():
        found = NAME.search(name)
        if found and name == f"{table}_p{found[1]}{found[2]}":
            months.append(Month(datetime(int(found[1]), int(found[2]), 1, tzinfo=UTC)))
    return sorted(months, key=lambda month: month.start)


def months_ahead(now: datetime) -> list[Month]:
    """The current month and AHEAD more."""
    months = [Month.of(now)]
    for _ in range(AHEAD):
        months.append(months[-1].next())
    return months


def partitions_ensure(*, months: Iterable[Month] = (), now: datetime | None = None) -> list[str]:
    """Create the partitions of the current month, AHEAD more and `months`, for each partitioned table, where they
    are missing and not archived; returns the partitions created. Nothing on SQLite."""
    if connection.vendor != "postgresql":
        return []
    from history.selectors import archived_before

    before = archived_before()
    wanted = {month.start: month for month in [*months_ahead(now or timezone.now()), *months]}
    created = []
    with connection.cursor() as cursor:
        for table in tables():
            if not is_partitioned(cursor, table):
                continue
            have = {month.start for month in partitions_list(cursor, table)}
            for start, month in sorted(wanted.items()):
                if start not in have and (before is None or start >= before):
                    partition_create(cursor, table, month)
                    created.append(month.partition(table))
    return created


def partition_create(cursor, table: str, month: Month) -> None:
    """Create the month's partition of `table`, with the month's rows moved out of the default partition, in one
    transaction.

    The partition is created on its own and then attached, which locks the parent only against other DDL, not
    against reads and writes (CREATE TABLE ... PARTITION OF would lock it against everything). Attaching checks
    that the default partition holds no row of the month, hence the move first, with the default partition locked
    so that none arrives in between.
    """
    name, default = q(month.partition(table)), q(default_partition(table))
    start, end = literal(month.start), literal(month.end)
    key = q(PARTITION_KEY)
    in_month = f"{key} >= {start} AND {key} < {end}"
    with transaction.atomic():
        cursor.execute(f"SET LOCAL lock_timeout = '{DDL_LOCK_TIMEOUT}'")
        cursor.execute(f"LOCK TABLE {default} IN ACCESS EXCLUSIVE MODE")
        cursor.execute(
            f"CREATE TEMPORARY TABLE history_moving ON COMMIT DROP AS SELECT * FROM {default} WHERE {in_month}"
        )
        moved = cursor.rowcount
        if moved:
            cursor.execute(f"DELETE FROM {default} WHERE {in_month}")
        cursor.execute(f"CREATE TABLE {name} (LIKE {q(table)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cursor.execute(f"ALTER TABLE {q(table)} ATTACH PARTITION {name} FOR VALUES FROM ({start}) TO ({end})")
        if moved:
            cursor.execute(f"INSERT INTO {q(table)} SELECT * FROM history_moving")
        cursor.execute("DROP TABLE history_moving")


def partition_convert(cursor, table: str, *, now: datetime | None = None) -> None:
    """Turn the plain table `table` into one partitioned by month, with its rows, for a migration.

    A partition for each month that has rows, the current month and AHEAD more, and the default partition. The
    table's constraints and indexes are made again on the partitioned table, under the same names, after its rows
    are copied (faster than keeping them up to date row by row); its primary key and unique constraints gain the
    timestamp where they lack it. Its id keeps counting from where it was.
    """
    cursor.execute(
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = to_regclass(%s) "
        "ORDER BY contype = 'p' DESC, conname",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = to_regclass(%s) "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY i.indexrelid",
        [table],
    )
    indexes = [definition for (definition,) in cursor.fetchall()]
    key, old = q(PARTITION_KEY), q(f"{table}_unpartitioned")
    cursor.execute(f"ALTER TABLE {q(table)} RENAME TO {old}")
    cursor.execute(
        f"CREATE TABLE {q(table)} (LIKE {old} INCLUDING DEFAULTS INCLUDING IDENTITY) PARTITION BY RANGE ({key})"
    )
    cursor.execute(f"CREATE TABLE {q(default_partition(table))} PARTITION OF {q(table)} DEFAULT")
    cursor.execute(f"SELECT DISTINCT date_trunc('month', {key}, 'UTC') FROM {old}")
    months = {Month.of(start) for (start,) in cursor.fetchall()} | set(months_ahead(now or timezone.now()))
    for month in sorted(months, key=lambda month: month.start):
        cursor.execute(
            f"CREATE TABLE {q(month.partition(table))} PARTITION OF {q(table)} "
            f"FOR VALUES FROM ({literal(month.start)}) TO ({literal(month.end)})"
        )
    cursor.execute(f"INSERT INTO {q(table)} OVERRIDING SYSTEM VALUE SELECT * FROM {old}")
    cursor.execute(f"SELECT MAX(id) FROM {old}")
    (highest,) = cursor.fetchone()
    cursor.execute(f"DROP TABLE {old}")
    # The identity's sequence took a spare name while the old table held its own; it gets that name back.
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    (sequence,) = cursor.fetchone()
    cursor.execute(f"ALTER SEQUENCE {sequence} RENAME TO {q(f'{table}_id_seq')}")
    if highest is not None:
        cursor.execute(f"ALTER TABLE {q(table)} ALTER COLUMN id RESTART WITH {int(highest) + 1}")
    for name, kind, definition in constraints:
        if kind in ("p", "u") and key not in definition:
            definition = re.sub(r"\)$", f", {key})", definition, count=1)
        cursor.execute(f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(name)} {definition}")
    for definition in indexes:
        cursor.execute(definition)
    cursor.execute(f"ANALYZE {q(table)}")


def converting(table: str):
    """A migration's RunPython function that partitions the plain table `table` (partition_convert); nothing on
    SQLite, which keeps one table."""

    def convert(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            partition_convert(cursor, table)

    return convert
