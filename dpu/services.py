"""Changing DPUs: provisioning, assignments to doorways, and ingesting the events they send."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from config.api import format_instant
from config.sql import among, db_instant, execute, for_update, from_db_instant, q, values_rows
from dpu.models import (
    SERIAL_MAX,
    STATS_HOURS,
    Dpu,
    DpuAssignment,
    DpuClockRefusal,
    DpuEvent,
    DpuHourStat,
    lateness_bin,
    to_millisecond,
)
from history.selectors import archived_before
from history.services import ARCHIVED_CONSTRAINT
from occupancy.services import occupancy_recalculate
from spaces.models import Doorway, Space

INSERT_CHUNK = 500  # rows per INSERT: 3,000 parameters, well inside SQLite's limit


@dataclass(frozen=True)
class EventIn:
    """One event as a DPU reported it, already parsed: an aware timestamp and a direction of 1 or -1."""

    serial: int
    timestamp: datetime
    direction: int


@dataclass(frozen=True)
class IngestResult:
    received: int
    created: int
    duplicates: int
    # How late each newly stored event arrived (received_at - timestamp, seconds), for the metrics. Not part of
    # equality: a result is its counts.
    lateness_seconds: tuple[float, ...] = field(default=(), compare=False, repr=False)


class EventRejected(Exception):
    """An item of a batch cannot be stored; nothing of the batch was."""

    def __init__(self, *, index: int, field: str, message: str):
        super().__init__(f"item {index}: {field}: {message}")
        self.index, self.field, self.message = index, field, message


class EventArchived(EventRejected):
    """An item falls in an archived month, which is read-only history (a 409, not a 400); nothing was stored."""


def event_ingest(*, events: Sequence[EventIn], now: datetime | None = None) -> IngestResult:
    """Store a batch of raw events, all or nothing, and bring every space they touch up to date.

    Exact repeats (same DPU, same millisecond, same direction), in the batch or already stored, are stored
    once; the database's unique constraint decides, so concurrent re-sends cannot both count.
    """
    now = now or timezone.now()
    keys = list(dict.fromkeys((e.serial, to_millisecond(e.timestamp), e.direction) for e in events))
    try:
        return _ingest(events, keys, now)
    except IntegrityError as exc:
        # On PostgreSQL an event of an archived month lands in the default partition, whose check refuses it
        # (history.services): the database decides, with no query per batch. Which item it was is found after.
        if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) != ARCHIVED_CONSTRAINT:
            raise
        before = archived_before()
        index = next(i for i, event in enumerate(events) if before is not None and event.timestamp < before)
        raise EventArchived(
            index=index,
            field="timestamp",
            message=f"falls in archived history: every month before {before:%Y-%m} was exported and is read-only.",
        ) from None


def _ingest(events: Sequence[EventIn], keys: list[tuple[int, datetime, int]], now: datetime) -> IngestResult:
    with transaction.atomic():
        # A DPU's assignments decide which spaces its events touch. Locking the DPU rows (in id order) keeps an
        # assignment change from slipping in between reading them here and recalculating below.
        # Serials past what the column holds cannot be registered; leaving them out of the query keeps the
        # database from overflowing on them, and the loop below names them as unknown.
        serials = {k[0] for k in keys if 0 < k[0] <= SERIAL_MAX}
        dpus = _lock_dpus(serials)
        for index, event in enumerate(events):
            if event.serial not in dpus:
                raise EventRejected(
                    index=index, field="dpu_id", message=f"No DPU with serial {event.serial} is registered."
                )
        if not keys:
            return IngestResult(received=len(events), created=0, duplicates=len(events))

        created = _insert_new(keys=keys, dpus=dpus, now=now)
        lateness = _health_record(created=created, now=now)
        # And settles the spaces it touched.
        occupancy_recalculate(new_events=[(event_id, timestamp) for event_id, _, timestamp in created], now=now)
    return IngestResult(
        received=len(events),
        created=len(created),
        duplicates=len(events) - len(created),
        lateness_seconds=tuple(lateness),
    )


def _lock_dpus(serials: set[int]) -> dict[int, int]:
    """Lock the DPUs with these serials, in id order; serial -> id of each that is registered. Raw SQL: ingest runs
    it on every request, and building the ORM query cost more than running it."""
    where, params = among("serial", sorted(serials))
    with connection.cursor() as cursor:
        sql = f"SELECT serial, id FROM {q(Dpu._meta.db_table)} WHERE {where} ORDER BY id {for_update()}"
        execute(cursor, sql, params, rows=len(serials))
        return dict(cursor.fetchall())


def _insert_new(
    *, keys: list[tuple[int, datetime, int]], dpus: dict[int, int], now: datetime
) -> list[tuple[int, int, datetime]]:
    """Insert the events not stored yet; return (id, DPU id, timestamp) of those this call created.

    ON CONFLICT DO NOTHING ... RETURNING tells, in one statement and without a race, which rows are new: a
    check-then-insert would let two concurrent re-sends both count. Django's bulk_create cannot say which
    rows it skipped, hence SQL (both SQLite and PostgreSQL speak it).
    """
    meta = DpuEvent._meta
    columns = ", ".join(
        q(meta.get_field(name).column)
        for name in ("created", "modified", "dpu", "timestamp", "direction", "received_at")
    )
    unique = ", ".join(q(meta.get_field(name).column) for name in ("dpu", "timestamp", "direction"))
    returning = ", ".join(q(meta.get_field(name).column) for name in ("id", "dpu", "timestamp"))
    stamp = db_instant(now)
    table = q(meta.db_table)
    created = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Three arrays instead of thousands of literals: half the time, which went on building and parsing
            # the statement.
            execute(
                cursor,
                f"INSERT INTO {table} ({columns}) SELECT %s::timestamptz, %s::timestamptz, dpu, instant, direction, "
                "%s::timestamptz "
                "FROM unnest(%s::bigint[], %s::timestamptz[], %s::smallint[]) AS batch(dpu, instant, direction) "
                f"ON CONFLICT ({unique}) DO NOTHING RETURNING {returning}",
                [stamp, stamp, stamp, [dpus[k[0]] for k in keys], [k[1] for k in keys], [k[2] for k in keys]],
                rows=len(keys),
            )
            return cursor.fetchall()
        for start in range(0, len(keys), INSERT_CHUNK):
            chunk = keys[start : start + INSERT_CHUNK]
            params = []
            for serial, timestamp, direction in chunk:
                params += [stamp, stamp, dpus[serial], db_instant(timestamp), direction, stamp]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {values} ON CONFLICT ({unique}) DO NOTHING "
                f"RETURNING {returning}",
                params,
            )
            # SQLite hands back the timestamp as the UTC text Django stored.
            created += [(pk, dpu, from_db_instant(timestamp)) for pk, dpu, timestamp in cursor.fetchall()]
    return created


def _health_record(*, created: list[tuple[int, int, datetime]], now: datetime) -> list[float]:
    """Bring the health of the DPUs whose events were just created up to date; return each event's lateness.

    Runs inside event_ingest's transaction, after it locked these DPUs' rows: no other ingest of the same DPU can
    interleave, so plain updates of the DPU rows are race-free, and the statistics' upsert adds rather than
    overwrites, so ingests of other DPUs (other rows) never lose an addition either. Whatever the batch's size,
    one statement on PostgreSQL, three on SQLite: the DPUs' last event and receipt, the hour's lateness histogram,
    and pruning hours that no read looks at any more.
    """
    if not created:
        return []
    lateness = [(now - timestamp).total_seconds() for _, _, timestamp in created]
    bins = Counter((dpu, lateness_bin(seconds)) for (_, dpu, _), seconds in zip(created, lateness, strict=True))
    latest: dict[int, datetime] = {}
    for _, dpu, timestamp in created:
        if dpu not in latest or timestamp > latest[dpu]:
            latest[dpu] = timestamp
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    received = db_instant(now)

    dpu_table, stat_table = q(Dpu._meta.db_table), q(DpuHourStat._meta.db_table)
    last_event, last_received = q("last_event_at"), q("last_received_at")
    dpu_ids = sorted(latest)
    dpu_rows, dpu_params = values_rows(
        [(dpu, db_instant(latest[dpu]), received) for dpu in dpu_ids], ("bigint", "timestamptz", "timestamptz")
    )
    # The later of what is stored and what came: `now` is read before the lock, so a batch that waited for another
    # may carry the earlier `now`, and a late batch the earlier timestamps.
    update = (
        f"UPDATE {dpu_table} SET "
        f"{last_event} = CASE WHEN {dpu_table}.{last_event} IS NULL OR {dpu_table}.{last_event} < batch.last_event "
        f"THEN batch.last_event ELSE {dpu_table}.{last_event} END, "
        f"{last_received} = CASE WHEN {dpu_table}.{last_received} IS NULL "
        f"OR {dpu_table}.{last_received} < batch.received THEN batch.received ELSE {dpu_table}.{last_received} END "
        f"FROM batch WHERE {dpu_table}.id = batch.dpu"
    )
    stat_rows = sorted(bins.items())
    rows, stat_params = values_rows(
        [(dpu, db_instant(hour), bin_, n) for (dpu, bin_), n in stat_rows],
        ("bigint", "timestamptz", "smallint", "bigint"),
    )
    # ON CONFLICT ... DO UPDATE adds in one statement, on both databases; bulk_create(update_conflicts) could only
    # overwrite.
    upsert = (
        f"INSERT INTO {stat_table} (dpu_id, hour, bin, n) {rows} "
        f"ON CONFLICT (dpu_id, hour, bin) DO UPDATE SET n = {stat_table}.n + excluded.n"
    )
    where, where_params = among("dpu_id", dpu_ids)
    prune = f"DELETE FROM {stat_table} WHERE {where} AND hour < %s"
    prune_params = [*where_params, db_instant(hour - timedelta(hours=STATS_HOURS))]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One round trip: the update and the upsert as data-modifying CTEs of the prune (they touch other rows:
            # the DPUs, this hour's statistics; the prune, hours long past).
            execute(
                cursor,
                f"WITH batch (dpu, last_event, received) AS ({dpu_rows}), "
                f"touched AS ({update}), added AS ({upsert}) {prune}",
                [*dpu_params, *stat_params, *prune_params],
                rows=max(len(dpu_ids), len(stat_rows)),
            )
        else:
            cursor.execute(f"WITH batch (dpu, last_event, received) AS ({dpu_rows}) {update}", dpu_params)
            cursor.execute(upsert, stat_params)
            cursor.execute(prune, prune_params)
    return lateness


def dpu_clock_refusal_record(*, serial: int, reason: str, timestamp: datetime, now: datetime | None = None) -> bool:
    """Count an item refused because its DPU's clock is wrong (DpuClockRefusal.Reason), keeping the latest item's
    timestamp and when it was refused. Its event is not stored: this is where the broken clock shows.

    Its own small transaction, for the API to call while it refuses the batch (which stores nothing). Only a
    registered DPU is counted: returns whether `serial` is one.
    """
    now = now or timezone.now()
    if not 0 < serial <= SERIAL_MAX:
        return False
    table = q(DpuClockRefusal._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        # One upsert: concurrent refusals of the same DPU each add their one, and the latest refusal's instants win
        # whichever commits last.
        cursor.execute(
            f"INSERT INTO {table} (dpu_id, reason, count, last_timestamp, last_refused_at) "
            f"SELECT id, %s, 1, %s, %s FROM {q(Dpu._meta.db_table)} WHERE serial = %s "
            f"ON CONFLICT (dpu_id, reason) DO UPDATE SET count = {table}.count + excluded.count, "
            f"last_timestamp = CASE WHEN excluded.last_refused_at >= {table}.last_refused_at "
            f"THEN excluded.last_timestamp ELSE {table}.last_timestamp END, "
            f"last_refused_at = CASE WHEN excluded.last_refused_at >= {table}.last_refused_at "
            f"THEN excluded.last_refused_at ELSE {table}.last_refused_at END",
            [DpuClockRefusal.Reason(reason).value, db_instant(timestamp), db_instant(now), serial],
        )
        return cursor.rowcount > 0


def dpu_create(*, serial: int) -> tuple[Dpu, str]:
    """Register a DPU by the serial printed on it. Returns it with its token: the only time the token is seen,
    since only its hash is stored."""
    token = Dpu.new_token()
    dpu = Dpu(serial=serial, token_hash=Dpu.hash_token(token))
    dpu.full_clean()
    try:
        with transaction.atomic():
            dpu.save()
    except IntegrityError:  # full_clean found the serial free, but a concurrent request may have taken it since
        raise ValidationError({"serial": [f"A DPU with serial {serial} is already registered."]}) from None
    return dpu, token


class DpuHasEvents(Exception):
    """The DPU cannot be deleted: the events it sent are history that counts depend on."""

    def __init__(self, dpu: Dpu):
        super().__init__(
            f"{dpu} cannot be deleted: it has sent events, and they are the history the counts are made of. To "
            "retire it, end its current assignment (PATCH the assignment's valid_to) and rotate its token without "
            "giving the new one out."
        )


def dpu_delete(*, dpu: Dpu) -> None:
    """Remove a DPU that never sent an event, with its assignments (which, without events, count nothing).

    Raises DpuHasEvents otherwise, and removes nothing."""
    with transaction.atomic():
        # event_ingest locks the DPU row before inserting: holding it here keeps an event from arriving between
        # the check and the delete.
        dpu = Dpu.objects.select_for_update().get(pk=dpu.pk)
        if DpuEvent.objects.filter(dpu=dpu).exists():
            raise DpuHasEvents(dpu)
        dpu.delete()


def dpu_token_rotate(*, dpu: Dpu) -> str:
    """Give the DPU a new token; the old one stops working at once. Returns the new token, seen only now."""
    token = Dpu.new_token()
    dpu.token_hash = Dpu.hash_token(token)
    dpu.save(update_fields=["token_hash", "modified"])
    return token


def assignment_move(
    *, dpu: Dpu, doorway: Doorway, enters: Space | None, valid_from: datetime, now: datetime | None = None
) -> DpuAssignment:
    """Hang a DPU over `doorway` from `valid_from`: the assignment covering that instant ends there.

    The new assignment runs until the DPU's next later assignment starts, or open-ended when there is none.
    Both doorways' spaces are recalculated from `valid_from`; counts before it do not move.
    """
    with transaction.atomic():
        dpu = Dpu.objects.select_for_update().get(pk=dpu.pk)  # one assignment change per DPU at a time
        assignments = list(dpu.assignments.select_related("doorway"))
        if any(a.valid_from == valid_from for a in assignments):
            message = f"{dpu} already has an assignment starting at {format_instant(valid_from)}."
            raise ValidationError({"valid_from": ValidationError(message, code="unique")})
        later = [a.valid_from for a in assignments if a.valid_from > valid_from]
        new = DpuAssignment(
            dpu=dpu, doorway=doorway, enters=enters, valid_from=valid_from, valid_to=min(later, default=None)
        )
        new.full_clean(exclude=["dpu"], validate_constraints=False)
        touched = {s for s in doorway.sides if s}
        for current in assignments:
            if current.covers(valid_from):
                current.valid_to = valid_from
                current.save(update_fields=["valid_to", "modified"])
                touched.update(s for s in current.doorway.sides if s)
        new.save()
        occupancy_recalculate(since_by_space=dict.fromkeys(touched, valid_from), now=now)
    return new


def assignment_update(
    *,
    assignment: DpuAssignment,
    doorway: Doorway,
    enters: Space | None,
    valid_from: datetime,
    valid_to: datetime | None,
    now: datetime | None = None,
) -> DpuAssignment:
    """Correct an assignment in place (the admin's edit). Spaces of the old and new doorway are recalculated
    from the earliest instant whose mapping changes; an overlap with another assignment is refused."""
    with transaction.atomic():
        Dpu.objects.select_for_update().get(pk=assignment.dpu_id)
        before = DpuAssignment.objects.select_related("doorway").get(pk=assignment.pk)
        assignment.doorway, assignment.enters = doorway, enters
        assignment.valid_from, assignment.valid_to = valid_from, valid_to
        assignment.full_clean(validate_constraints=False)
        try:
            with transaction.atomic():
                assignment.save()
        except IntegrityError:
            # A conflict with what is stored, so code "unique": a 409, like a second assignment at one instant.
            message = f"{assignment.dpu} already has an assignment during that time."
            raise ValidationError(message, code="unique") from None
        if (before.doorway_id, before.enters_id) == (doorway.id, enters.id if enters else None):
            since = _first_difference(before.valid_from, before.valid_to, valid_from, valid_to)
        else:
            since = min(before.valid_from, valid_from)
        if since is not None:
            touched = {s for s in (*before.doorway.sides, *doorway.sides) if s}
            occupancy_recalculate(since_by_space=dict.fromkeys(touched, since), now=now)
    return assignment


def assignment_delete(*, assignment: DpuAssignment, now: datetime | None = None) -> None:
    """Remove an assignment; its events count nowhere until another assignment covers them."""
    with transaction.atomic():
        Dpu.objects.select_for_update().get(pk=assignment.dpu_id)
        touched = {s for s in assignment.doorway.sides if s}
        since = assignment.valid_from
        assignment.delete()
        occupancy_recalculate(since_by_space=dict.fromkeys(touched, since), now=now)


def _first_difference(a_from, a_to, b_from, b_to) -> datetime | None:
    """The earliest instant covered by exactly one of two intervals (None: they are the same)."""
    if a_from != b_from:
        return min(a_from, b_from)
    if a_to != b_to:
        return min(t for t in (a_to, b_to) if t is not None)
    return None
