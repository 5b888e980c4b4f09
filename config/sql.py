"""Small helpers for the raw SQL the services write where the ORM cannot say it (or costs more than the query)."""

import json
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
    """The rows of a VALUES list, as parameters. PostgreSQL is told each column's type, which it cannot guess from
    NULLs; SQLite needs (and takes) no types."""
    if connection.vendor == "postgresql":
        row = "(" + ", ".join(f"%s::{type_}" for type_ in types) + ")"
    else:
        row = "(" + ", ".join(["%s"] * len(types)) + ")"
    return ", ".join([row] * len(rows)), [value for values in rows for value in values]


def for_update(of: str = "") -> str:
    """The row-lock clause, where the database has one (SQLite locks the whole database for a writer instead)."""
    if not connection.features.has_select_for_update:
        return ""
    return f"FOR UPDATE OF {of}" if of else "FOR UPDATE"
