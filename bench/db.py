"""The bench database: never the user's. On PostgreSQL, DATABASE_URL's database name plus a suffix ("_bench"),
created and dropped through the `postgres` maintenance database; on SQLite, a file in the run's work folder.

The functions below `django_setup` need Django set up on the bench database (bench/__main__.py does that).
"""

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import dj_database_url

from bench.generate import EPOCH, START, Building

BASE_DIR = Path(__file__).resolve().parent.parent
SETTINGS = "bench.settings"
BARE_TABLE = "bench_bare_event"  # the baselines' event table (bench/baseline.py)
DERIVED_TABLES = ("occupancy_occupancyblock",)  # derived from the occupancy rows: refilled and emptied with them
SAWTOOTH = 50  # filled histories rise from 0 to this and fall back to 0, again and again


@dataclass(frozen=True)
class BenchDatabase:
    vendor: str  # "postgresql" or "sqlite"
    url: str  # DATABASE_URL of the bench database
    name: str  # its database name, or its file
    settings: dict  # dj-database-url's parse of `url`

    @property
    def env(self) -> dict[str, str]:
        """The environment a subprocess (gunicorn, manage.py) needs to work on the bench database."""
        return {**os.environ, "DATABASE_URL": self.url, "DJANGO_SETTINGS_MODULE": SETTINGS}

    def label(self) -> str:
        return "PostgreSQL" if self.vendor == "postgresql" else "SQLite"


def user_database_url() -> str:
    """The DATABASE_URL the service would use (config/settings/base.py's default when unset)."""
    return os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"


def bench_database(user_url: str, *, suffix: str, workdir: Path) -> BenchDatabase:
    """The bench database beside the one `user_url` names."""
    settings = dj_database_url.parse(user_url)
    engine = settings.get("ENGINE", "")
    if engine == "django.db.backends.sqlite3":
        path = workdir / f"bench{suffix}.sqlite3"
        url = f"sqlite:///{path.resolve()}"
        return BenchDatabase(vendor="sqlite", url=url, name=str(path), settings=dj_database_url.parse(url))
    if engine == "django.db.backends.postgresql":
        name = f"{settings['NAME']}{suffix}"
        if len(name.encode()) > 63:
            raise ValueError(f"The bench database name {name!r} is longer than PostgreSQL's 63 bytes.")
        url = urlunsplit(urlsplit(user_url)._replace(path="/" + quote(name, safe="")))
        return BenchDatabase(vendor="postgresql", url=url, name=name, settings=dj_database_url.parse(url))
    raise ValueError(f"DATABASE_URL must point at SQLite or PostgreSQL, not {engine or user_url!r}.")


def _maintenance_connection(database: BenchDatabase):
    import psycopg2

    s = database.settings
    connection = psycopg2.connect(
        dbname="postgres",
        user=s.get("USER") or None,
        password=s.get("PASSWORD") or None,
        host=s.get("HOST") or None,
        port=s.get("PORT") or None,
        application_name="occupancy-bench",
    )
    connection.autocommit = True
    return connection


def create(database: BenchDatabase) -> None:
    """An empty bench database (a leftover of an interrupted run is dropped first), migrated."""
    drop(database)
    if database.vendor == "postgresql":
        connection = _maintenance_connection(database)
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{database.name}"')
        finally:
            connection.close()
    manage(database, "migrate", "--no-input", "-v", "0")
    # On PostgreSQL, a partition for every month from the bench's first event on, as a service with years of
    # history has: the benchmarks read and write through the monthly partitions, not the default one.
    manage(database, "history_partitions", "--from", f"{START:%Y-%m}")


def drop(database: BenchDatabase) -> None:
    if database.vendor == "postgresql":
        connection = _maintenance_connection(database)
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
        finally:
            connection.close()
    else:
        for path in (Path(database.name), Path(database.name + "-journal"), Path(database.name + "-wal")):
            path.unlink(missing_ok=True)


def exists(database: BenchDatabase) -> bool:
    if database.vendor == "sqlite":
        return Path(database.name).exists()
    connection = _maintenance_connection(database)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database.name])
            return cursor.fetchone() is not None
    finally:
        connection.close()


def manage(database: BenchDatabase, *args: str) -> subprocess.CompletedProcess:
    """Run manage.py on the bench database; its output on failure."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=database.env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=3600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


# Everything below runs with Django set up on the bench database.

# A bare event table: the columns of dpu_dpuevent (serial in place of the DPU's id) and its unique key.
BARE_TABLE_DDL = {
    "postgresql": f"""
        CREATE TABLE {BARE_TABLE} (
            id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            created timestamptz NOT NULL DEFAULT now(),
            modified timestamptz NOT NULL DEFAULT now(),
            dpu_id bigint NOT NULL,
            "timestamp" timestamptz NOT NULL,
            direction smallint NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT {BARE_TABLE}_unique UNIQUE (dpu_id, "timestamp", direction)
        )""",
    "sqlite": f"""
        CREATE TABLE {BARE_TABLE} (
            id integer NOT NULL PRIMARY KEY AUTOINCREMENT,
            created datetime NOT NULL DEFAULT CURRENT_TIMESTAMP,
            modified datetime NOT NULL DEFAULT CURRENT_TIMESTAMP,
            dpu_id bigint NOT NULL,
            "timestamp" datetime NOT NULL,
            direction smallint NOT NULL,
            received_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP,
            CONSTRAINT {BARE_TABLE}_unique UNIQUE (dpu_id, "timestamp", direction)
        )""",
}


DOMAIN_TABLES = (
    "occupancy_spaceoccupancy",
    "dpu_dpuevent",
    "dpu_dpuassignment",
    "dpu_dpu",
    "spaces_doorway",
    "spaces_space",
    BARE_TABLE,
)


def create_bare_table() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(BARE_TABLE_DDL[connection.vendor])


def staff_token() -> str:
    """The DRF token of a staff user: the service's endpoints and the baselines authenticate it alike."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_staff": True})
    return Token.objects.get_or_create(user=user)[0].key


def reset(tables: tuple[str, ...] = DOMAIN_TABLES) -> None:
    """Empty the layout, events, occupancy and bare tables (users and tokens stay), ids from 1 again; emptying the
    occupancy rows also empties what is derived from them."""
    from django.db import connection

    if "occupancy_spaceoccupancy" in tables:
        tables = (*tables, *DERIVED_TABLES)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        else:
            # Without foreign keys SQLite empties a table at once instead of checking every row's references.
            cursor.execute("PRAGMA foreign_keys = OFF")
            try:
                for table in tables:
                    cursor.execute(f"DELETE FROM {table}")
                placeholders = ", ".join(["%s"] * len(tables))
                cursor.execute(f"DELETE FROM sqlite_sequence WHERE name IN ({placeholders})", list(tables))
            finally:
                cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("VACUUM")  # give back the pages of the last benchmark's rows


@dataclass(frozen=True)
class Layout:
    space_ids: list[int]  # in Building.spaces order
    dpu_ids: dict[int, int]  # serial -> id


def create_layout(plan: Building) -> Layout:
    """The building's spaces, doorways, DPUs and assignments, written in bulk (there are no events yet)."""
    from django.db import transaction

    from dpu.models import Dpu, DpuAssignment
    from spaces.models import Doorway, Space

    with transaction.atomic():
        spaces = Space.objects.bulk_create([Space(name=name) for name in plan.spaces])
        doorways = Doorway.objects.bulk_create(
            [
                Doorway(name=d.name, side_a=spaces[d.side_a] if d.side_a is not None else None, side_b=spaces[d.side_b])
                for d in plan.doorways
            ]
        )
        dpus = Dpu.objects.bulk_create([Dpu(serial=spec.serial) for spec in plan.dpus])
        DpuAssignment.objects.bulk_create(
            [
                DpuAssignment(
                    dpu=dpu,
                    doorway=doorways[spec.doorway],
                    enters=spaces[plan.doorways[spec.doorway].side_b],
                    valid_from=spec.valid_from,
                )
                for dpu, spec in zip(dpus, plan.dpus, strict=True)
            ]
        )
    return Layout(space_ids=[s.id for s in spaces], dpu_ids={d.serial: d.id for d in dpus})


@dataclass(frozen=True)
class History:
    """Rows filled by fill_sawtooth: row i of each space is at first + i * step (plus a few milliseconds)."""

    rows_per_space: int
    first: datetime
    step: timedelta

    @property
    def last(self) -> datetime:
        return self.first + self.step * self.rows_per_space


def fill_sawtooth(pairs: list[tuple[int, int]], *, rows_per_space: int, step_ms: int = 60_000) -> History:
    """Give each (space id, DPU id) `rows_per_space` events and occupancy rows, in SQL: no ORM, no ingest.

    The DPU must hang over a doorway between the space and outside, entering the space. Row i is a +1 or -1
    event at START + i * step_ms (plus 1 to 997 ms, so that no instant is a whole second: SQLite stores those
    without a fraction) with the count the service would give it: a sawtooth from 0 up to SAWTOOTH and down to 0,
    never clamped. Ids continue from the tables' largest; rows are settled; the service's five-minute blocks are
    derived from them (`derive`); the tables are analyzed.
    """
    from django.db import connection

    if step_ms < 1000 or step_ms % 1000:
        raise ValueError("step_ms must be a whole number of seconds so that no two rows share an instant.")
    start_ms = (START - EPOCH) // timedelta(milliseconds=1)
    # Row i of the k-th pair: i = n % rows, k = n / rows for n counting from 0 over all rows.
    # Every statement goes with parameters, so a literal % is written %% (psycopg2 and Django's SQLite alike).
    i, k = f"(n %% {rows_per_space})", f"(n / {rows_per_space})"
    instant_ms = f"({start_ms} + {i} * {step_ms} + 1 + {i} %% 997)"
    phase = f"({i} %% {2 * SAWTOOTH})"
    delta = f"(CASE WHEN {phase} < {SAWTOOTH} THEN 1 ELSE -1 END)"
    count = f"(CASE WHEN {phase} < {SAWTOOTH} THEN {phase} + 1 ELSE {2 * SAWTOOTH - 1} - {phase} END)"
    total = rows_per_space * len(pairs)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM dpu_dpuevent")
        event_base = cursor.fetchone()[0]
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM occupancy_spaceoccupancy")
        row_base = cursor.fetchone()[0]
        if connection.vendor == "postgresql":
            instant = f"(timestamptz '1970-01-01 00:00:00+00' + {instant_ms} * interval '1 millisecond')"
            spaces = "(%s::bigint[])[" + k + " + 1]"
            dpus = "(%s::bigint[])[" + k + " + 1]"
            source = f"FROM generate_series(0::bigint, {total - 1}) AS n"
            params = [[space for space, _ in pairs], [dpu for _, dpu in pairs]]
            # The rows are consistent by construction; skipping the per-row foreign key triggers (allowed to a
            # superuser, for this session only) makes ten million rows minutes faster.
            cursor.execute("SET session_replication_role = replica")
        else:
            instant = (
                f"(strftime('%%Y-%%m-%%d %%H:%%M:%%S', {instant_ms} / 1000, 'unixepoch') "
                f"|| printf('.%%03d000', {instant_ms} %% 1000))"
            )
            values = ", ".join(f"({index}, {space}, {dpu})" for index, (space, dpu) in enumerate(pairs))
            cursor.execute("DROP TABLE IF EXISTS temp.bench_pairs")
            cursor.execute("CREATE TEMP TABLE bench_pairs (k integer PRIMARY KEY, space_id bigint, dpu_id bigint)")
            cursor.execute(f"INSERT INTO temp.bench_pairs VALUES {values}")
            spaces = f"(SELECT space_id FROM temp.bench_pairs WHERE k = {k})"
            dpus = f"(SELECT dpu_id FROM temp.bench_pairs WHERE k = {k})"
            source = f"FROM (WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < {total - 1}) "
            source += "SELECT n FROM seq)"
            params = []
        started = time.monotonic()
        cursor.execute(
            f"""INSERT INTO dpu_dpuevent (id, created, modified, dpu_id, "timestamp", direction, received_at)
                SELECT {event_base} + n + 1, t, t, dpu, t, {delta}, t
                FROM (SELECT n, {instant} AS t, {dpus} AS dpu {source}) g""",
            params[1:],
        )
        cursor.execute(
            f"""INSERT INTO occupancy_spaceoccupancy
                    (id, created, modified, space_id, "timestamp", kind, event_id, dpu_id, delta, "count", status)
                SELECT {row_base} + n + 1, t, t, space, t, (1 - {delta}) / 2, {event_base} + n + 1, dpu, {delta},
                       {count}, 'settled'
                FROM (SELECT n, {instant} AS t, {spaces} AS space, {dpus} AS dpu {source}) g""",
            params,
        )
        if connection.vendor == "postgresql":
            cursor.execute("SET session_replication_role = DEFAULT")
            for table in ("dpu_dpuevent", "occupancy_spaceoccupancy"):
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
        else:
            cursor.execute("DROP TABLE temp.bench_pairs")
        filled = time.monotonic() - started
    print(f"  filled {total:,} events and occupancy rows in {filled:.1f} s", file=sys.stderr, flush=True)
    derived = derive([space for space, _ in pairs])
    analyze(("dpu_dpuevent", "occupancy_spaceoccupancy", *derived))
    return History(rows_per_space=rows_per_space, first=START, step=timedelta(milliseconds=step_ms))


def derive(space_ids: list[int]) -> tuple[str, ...]:
    """What the service derives from the occupancy rows (the five-minute blocks that counts over time read), over
    the spaces' whole histories, by the service's own code, as its migration does for existing rows; the tables
    written."""
    from django.db import connection

    from occupancy.services.blocks import blocks_refresh
    from occupancy.sql import EARLIEST

    started = time.monotonic()
    with connection.cursor() as cursor:
        blocks_refresh(cursor, [(space_id, EARLIEST, None) for space_id in space_ids], replace=True)
    print(f"  derived the five-minute blocks in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    return DERIVED_TABLES


def analyze(tables: tuple[str, ...]) -> None:
    """Fresh planner statistics after a bulk fill; on PostgreSQL also hint bits, the visibility map, a checkpoint."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}" if connection.vendor == "postgresql" else f"ANALYZE {table}")
        if connection.vendor == "postgresql":
            # The fill's writes are flushed now, not by a checkpoint in the middle of the measurements.
            cursor.execute("CHECKPOINT")


def server_version() -> str:
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            return f"PostgreSQL {cursor.fetchone()[0]}"
    import sqlite3

    return f"SQLite {sqlite3.sqlite_version}"
