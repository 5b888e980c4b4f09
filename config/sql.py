"""Small helpers for the raw SQL the services write where the ORM cannot say it (or costs more than the query)."""

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime

from django.db import connection
from django.utils import timezone
from django.utils.dateparse import parse_datetime


def q(name: str) -> str:
    """A quoted identifier."""
    return connection.ops.quote_name(name)


def db_instant(instant: datetime):
    """An aware datetime as the database takes it as a parameter."""
    return connection.ops.adapt_datetimefield_value(instant)


def from_db_instant(value: datetime | str) -> datetime:
    """An instant a raw query returned, aware: PostgreSQL hands back an aware datetime; SQLite the UTC text Django
    stored (or, for a plain column, a naive datetime)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


def among(column: str, values: Sequence[int]) -> tuple[str, list]:
    """`column` among integer `values`, as one parameter however many: an array on PostgreSQL, JSON on SQLite,
    whose limit on parameters a list of placeholders would soon reach."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s::bigint[])", [list(values)]
    return f"{column} IN (SELECT value FROM json_each(%s))", [json.dumps(list(values))]


def values_rows(rows: Sequence[tuple], types: tuple[str, ...]) -> tuple[str, list]:
    """A VALUES list of `rows`, for a CTE body. PostgreSQL is told each column's type, which it cannot guess from
    NULLs. A VALUES list (not arrays) tells the planner how many rows there are: with few, it walks the index
    from each space's `since` instead of scanning the table."""
    if connection.vendor == "postgresql":
        row = "(" + ", ".join(f"%s::{type_}" for type_ in types) + ")"
    else:
        row = "(" + ", ".join(["%s"] * len(types)) + ")"
    return "VALUES " + ", ".join([row] * len(rows)), [value for values in rows for value in values]


# Batches up to this size run the ingest statements prepared, with one plan for all sizes; larger ones are planned
# for their size each time, which is what a batch of thousands needs and costs little against running it.
PREPARED_MAX_ROWS = 16


def execute(cursor, sql: str, params: Sequence, *, rows: int | None) -> None:
    """Run a statement that handles `rows` rows (None: unknown, any number); a small one, on PostgreSQL, as a
    prepared statement with a generic plan, made once per database session.

    For a single event, planning these statements took longer than running them: 1.3 of 2.3 ms in process. Each
    text is prepared once; a statement with a VALUES list has a text per length, at most PREPARED_MAX_ROWS.
    Prepared statements need session pooling (pgbouncer in transaction mode drops them).
    """
    execute_all(cursor, [(sql, params)], rows=rows)


def execute_all(cursor, statements: Sequence[tuple[str, Sequence]], *, rows: int | None) -> None:
    """Run statements one after the other, as `execute` runs each; on PostgreSQL, prepared ones in one round trip.
    The cursor holds the last statement's rows. Each statement reads what has committed when it starts: one that
    follows a lock sees what committed while the lock was awaited."""
    if connection.vendor != "postgresql" or rows is None or rows > PREPARED_MAX_ROWS:
        for sql, params in statements:
            cursor.execute(sql, params)
        return
    texts, values = [], []
    for sql, params in statements:
        name = _prepared(cursor, sql)
        texts.append(f"EXECUTE {name} ({', '.join(['%s'] * len(params))})" if params else f"EXECUTE {name}")
        values += params
    cursor.execute("; ".join(texts), values)


def _prepared(cursor, sql: str) -> str:
    """The name of `sql` prepared in the cursor's database session, preparing it the first time."""
    name = "occupancy_" + hashlib.sha1(sql.encode()).hexdigest()[:20]
    db = cursor.db  # the cursor's connection: the primary's, or a replica's (config.replicas)
    raw = db.connection
    # Prepared statements belong to the database session: start afresh when Django has opened a new one.
    if getattr(db, "prepared_statements", (None,))[0] is not raw:
        # Only the statements prepared here are affected: the ORM and psycopg2 prepare none.
        cursor.execute("SET plan_cache_mode = force_generic_plan")
        db.prepared_statements = (raw, set())
    prepared = db.prepared_statements[1]
    if name not in prepared:
        placeholders = iter(range(1, sql.count("%s") + 1))
        cursor.execute(f"PREPARE {name} AS " + re.sub("%s", lambda _: f"${next(placeholders)}", sql))
        prepared.add(name)
    return name


def typed(type_: str) -> str:
    """A placeholder PostgreSQL is told the type of (which a prepared statement needs where the context does not
    say it); SQLite takes the value as it comes."""
    return f"%s::{type_}" if connection.vendor == "postgresql" else "%s"


def for_update(of: str = "") -> str:
    """The row-lock clause, where the database has one (SQLite locks the whole database for a writer instead)."""
    if not connection.features.has_select_for_update:
        return ""
    return f"FOR UPDATE OF {of}" if of else "FOR UPDATE"


def rows_changed(cursor) -> int:
    """How many rows the statement just run changed. Python 3.11's sqlite3 leaves rowcount at -1 for a statement
    that starts with WITH; SQLite's changes() still knows."""
    if connection.vendor == "sqlite":
        cursor.execute("SELECT changes()")
        return cursor.fetchone()[0]
    return max(cursor.rowcount, 0)
