"""Archiving whole months of history: their raw events to a file, their partitions dropped."""

import gzip
import os
from datetime import datetime
from pathlib import Path

from django.db import connection, transaction
from django.utils import timezone

from config.sql import q
from dpu.models import Dpu, DpuEvent
from history.models import HistoryArchive
from history.partitions import Month, default_partition, literal, partitions_list, tables
from history.selectors import archived_before

# The CHECK constraint on each default partition that keeps archived months read-only: their partitions are gone,
# so a row of theirs would land in the default partition, which refuses it (dpu.services turns that into a 409).
ARCHIVED_CONSTRAINT = "history_archived"
# The columns of the archive: those `manage.py import_events` reads, and when each event was received.
CSV_COLUMNS = ("timestamp", "direction", "dpu_id", "received_at")


class ArchiveRefused(Exception):
    """The archive cannot be made; the message says why. Nothing was changed."""


def history_archive(*, before: Month, to: Path, now: datetime | None = None) -> HistoryArchive:
    """Export the raw events of every month before `before` to `to` (CSV, gzip), then drop those months'
    partitions of the event log and of the occupancy rows, and their rows in the default partitions.

    One transaction: the months' partitions are locked against writes first, so the file holds exactly what is
    dropped. The file is written under a temporary name, flushed to disk and renamed before the commit: if the
    commit fails, the events are still in the database and the file is a spare copy. The five-minute blocks of
    those months are kept: counts and counts over time of archived months are read from them
    (occupancy.latest).
    """
    if connection.vendor != "postgresql":
        raise ArchiveRefused("Archiving needs PostgreSQL: SQLite's history is one table, not monthly partitions.")
    current = Month.of(now or timezone.now())
    if before.start > current.start:
        raise ArchiveRefused(f"{before} has not begun; only months before the current one ({current}) can be archived.")
    already = archived_before()
    if already is not None and before.start <= already:
        raise ArchiveRefused(f"Every month before {already:%Y-%m} is archived already.")
    if to.exists():
        raise ArchiveRefused(f"{to} exists; archive to a new file.")
    if not to.parent.is_dir():
        raise ArchiveRefused(f"{to.parent} is not a directory.")
    partial = to.with_name(to.name + ".partial")
    key = q("timestamp")
    older = f"{key} < {literal(before.start)}"
    with transaction.atomic(), connection.cursor() as cursor:
        # A table cannot be dropped while checks deferred to the commit wait on its rows (of writes earlier in an
        # enclosing transaction): run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        doomed = {table: [m for m in partitions_list(cursor, table) if m.end <= before.start] for table in tables()}
        # Writers of those months wait from here on; readers carry on until the partitions are dropped.
        for table, months in doomed.items():
            for name in [default_partition(table), *(month.partition(table) for month in months)]:
                cursor.execute(f"LOCK TABLE {q(name)} IN SHARE MODE")
        events = _export(cursor, partial, older)
        for table, months in doomed.items():
            for month in months:
                cursor.execute(f"DROP TABLE {q(month.partition(table))}")
            default = q(default_partition(table))
            cursor.execute(f"DELETE FROM {default} WHERE {older}")
            cursor.execute(f"ALTER TABLE {default} DROP CONSTRAINT IF EXISTS {ARCHIVED_CONSTRAINT}")
            cursor.execute(f"ALTER TABLE {default} ADD CONSTRAINT {ARCHIVED_CONSTRAINT} CHECK (NOT ({older}))")
        archive = HistoryArchive.objects.create(before=before.start, file=str(to.resolve()), events=events)
        os.replace(partial, to)
    return archive


def _export(cursor, path: Path, older: str) -> int:
    """Write the events matching `older` to `path` as gzip CSV, in time order, flushed to disk; how many."""
    events, dpus = q(DpuEvent._meta.db_table), q(Dpu._meta.db_table)
    instant = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    query = f"""
        SELECT {instant.format("e." + q("timestamp"))}, e.direction, d.serial, {instant.format("e.received_at")}
        FROM {events} e JOIN {dpus} d ON d.id = e.dpu_id
        WHERE e.{older}
        ORDER BY e.{q("timestamp")}, e.id"""
    with gzip.open(path, "wb") as handle:
        handle.write((",".join(CSV_COLUMNS) + "\n").encode())
        cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)", handle)
        count = cursor.rowcount
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
    return count
