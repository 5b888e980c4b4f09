"""The benchmarks of the issue but counts over time (bench/series.py). Each takes the run's Context and returns
its rows of the table.

They run in the bench process, with Django set up on the bench database (for the layout, the SQL fills and the
checks), against the gunicorn server of bench/server.py over real HTTP on 127.0.0.1.
"""

import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from bench import db, load
from bench.db import BARE_TABLE, BASE_DIR, BenchDatabase
from bench.generate import as_item, building, events, format_instant, star_building, write_csv
from bench.load import LoadResult, Request
from bench.results import Result, Scale

SERVICE_EVENTS, BASELINE_EVENTS = "/events", "/bench/baseline/events"
LOADER_TIMEOUT = 3 * 3600  # seconds: the loader is killed past this, so that a hung run ends
COUNT_TARGET, P99_TARGET, INGEST_TARGET = 0.8, 1.5, 0.5
BATCH_TARGETS = {"in order": 20_000, "shuffled": 5_000}
LATE_D1_TARGET, LINEAR_SLACK = 2.0, 1.5
LATE_RESET_TARGET = 2.0  # a late event just before a reset: about what an in-order event costs, whatever d
BACKFILL_TARGET, MEMORY_GROWTH_LIMIT = 0.3, 1.25


@dataclass
class Context:
    database: BenchDatabase
    scale: Scale
    port: int
    token: str
    clients: int
    workdir: Path
    problems: list[str] = field(default_factory=list)  # wrong answers the service gave: reported with the table


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _ms(seconds: float) -> float:
    return seconds * 1000


def _latency(result: LoadResult) -> str:
    return f"p50 {_ms(result.percentile(50)):.2f} ms, p99 {_ms(result.percentile(99)):.2f} ms"


def _deal(requests: list[Request], clients: int) -> list[list[Request]]:
    return [requests[i::clients] for i in range(clients)]


def _compare(ctx: Context, service: list[list[Request]], baseline: list[list[Request]]) -> tuple[LoadResult, ...]:
    """Time the service's requests and the baseline's, taking turns in rounds; each client sends its share in order."""
    rounds = ctx.scale.rounds
    timed: dict[str, list[LoadResult]] = {"service": [], "baseline": []}
    for round_ in range(rounds):
        for name, shares in (("service", service), ("baseline", baseline)):
            parts = [share[len(share) * round_ // rounds : len(share) * (round_ + 1) // rounds] for share in shares]
            timed[name].append(load.concurrent(ctx.port, ctx.token, parts))
    return LoadResult.merge(timed["service"]), LoadResult.merge(timed["baseline"])


def _final_counts() -> dict[str, int]:
    from occupancy.selectors import space_list_with_counts

    return {space.name: space.count for space in space_list_with_counts()}


# 1. Count lookups


def count_lookups(ctx: Context) -> list[Result]:
    """GET /space/<id>/count?ts= at random spaces and instants over the whole history, at each size."""
    from occupancy.services import occupancy_check

    scale = ctx.scale
    db.reset()
    plan = star_building(spaces=scale.count_spaces, prefix="count-")
    layout = db.create_layout(plan)
    pairs = [(layout.space_ids[i], layout.dpu_ids[dpu.serial]) for i, dpu in enumerate(plan.dpus)]
    sizes = scale.count_sizes[ctx.database.vendor]
    results, p99 = [], {}
    for size in sizes:
        log(f"count lookups at {size:,} occupancy rows")
        db.reset(("occupancy_spaceoccupancy", "dpu_dpuevent"))
        history = db.fill_sawtooth(pairs, rows_per_space=size // len(pairs))
        if size == sizes[0] and occupancy_check():
            ctx.problems.append("The filled history differs from a rebuild: the count figures are not trustworthy.")
        rng = random.Random(size)
        first, span_ms = history.first - history.step, (history.last - history.first + 2 * history.step).total_seconds()
        paths = [
            f"/space/{rng.choice(layout.space_ids)}/count"
            f"?ts={quote(format_instant(first + timedelta(milliseconds=rng.randrange(int(span_ms * 1000)))))}"
            for _ in range(scale.count_warmup + scale.count_requests)
        ]
        _check_counts_agree(ctx, paths[:20])
        service = [("GET", path, None) for path in paths]
        baseline = [("GET", "/bench/baseline" + path, None) for path in paths]
        warm = scale.count_warmup
        load.concurrent(ctx.port, ctx.token, _deal(service[:warm], ctx.clients))
        load.concurrent(ctx.port, ctx.token, _deal(baseline[:warm], ctx.clients))
        timed = _compare(ctx, _deal(service[warm:], ctx.clients), _deal(baseline[warm:], ctx.clients))
        ratio = timed[0].per_second / timed[1].per_second
        results.append(
            Result(
                key=f"count.{size}",
                name=f"Count lookup, {size:,} rows",
                value=timed[0].per_second,
                unit="req/s",
                baseline=timed[1].per_second,
                baseline_name="bare DRF view, one raw indexed query",
                ratio=ratio,
                detail=f"service {_latency(timed[0])}; baseline {_latency(timed[1])}",
                target=f"≥ {COUNT_TARGET}x baseline",
                passed=ratio >= COUNT_TARGET,
            )
        )
        p99[size] = timed[0].percentile(99)
    small, large = sizes[0], sizes[-1]
    ratio = p99[large] / p99[small]
    results.append(
        Result(
            key="count.p99",
            name=f"Count lookup p99 at {large:,} rows",
            value=_ms(p99[large]),
            unit="ms",
            baseline=_ms(p99[small]),
            baseline_name=f"p99 at {small:,} rows",
            ratio=ratio,
            target=f"≤ {P99_TARGET}x p99 at {small:,}",
            passed=ratio <= P99_TARGET,
        )
    )
    return results


def _check_counts_agree(ctx: Context, paths: list[str]) -> None:
    """The service and the baseline must give the same counts, or one of them measures the wrong thing."""
    client = load.Client(ctx.port, ctx.token)
    try:
        for path in paths:
            answers = [client.send("GET", prefix + path) for prefix in ("", "/bench/baseline")]
            counts = [json.loads(body)["count"] if status == 200 else status for _, status, body in answers]
            if counts[0] != counts[1]:
                ctx.problems.append(f"GET {path}: the service says {counts[0]}, the raw query {counts[1]}.")
    finally:
        client.close()


# 2. Single-event ingest


def single_event_ingest(ctx: Context) -> list[Result]:
    """POST /events with one event each, in time order: every client has its own building and DPUs."""
    scale = ctx.scale
    log("single-event ingest")
    db.reset()
    service, baseline = [], []
    for client in range(ctx.clients):
        plan = building(
            spaces=4, dpus=6, seed=100 + client, prefix=f"ingest{client}-", serial_base=10_000 * (client + 1)
        )
        db.create_layout(plan)
        count = scale.ingest_warmup + scale.ingest_events // ctx.clients
        bodies = [json.dumps(as_item(event)).encode() for event in events(plan, count=count, seed=100 + client)]
        service.append([("POST", SERVICE_EVENTS, body) for body in bodies])
        baseline.append([("POST", BASELINE_EVENTS, body) for body in bodies])
    warm = scale.ingest_warmup
    load.concurrent(ctx.port, ctx.token, [share[:warm] for share in service])
    load.concurrent(ctx.port, ctx.token, [share[:warm] for share in baseline])
    timed = _compare(ctx, [share[warm:] for share in service], [share[warm:] for share in baseline])
    ratio = timed[0].per_second / timed[1].per_second
    return [
        Result(
            key="ingest.single",
            name="Single-event ingest, in order",
            value=timed[0].per_second,
            unit="req/s",
            baseline=timed[1].per_second,
            baseline_name="bare DRF view: same validation, one raw INSERT",
            ratio=ratio,
            detail=f"service {_latency(timed[0])}; baseline {_latency(timed[1])}",
            target=f"≥ {INGEST_TARGET}x baseline",
            passed=ratio >= INGEST_TARGET,
        )
    ]


# 3. Batch ingest


def batch_ingest(ctx: Context) -> list[Result]:
    """POST /events with 1,000-event batches, one after another: the stream in order, then shuffled."""
    scale = ctx.scale
    plan = building(spaces=50, dpus=100, seed=7, prefix="batch-")
    stream = list(events(plan, count=scale.batch_events, seed=7, duplicates=0.005))
    shuffled = stream[:]
    random.Random(7).shuffle(shuffled)
    results, finals = [], {}
    for order, items in (("in order", stream), ("shuffled", shuffled)):
        log(f"batch ingest, {order}")
        db.reset()
        db.create_layout(plan)
        size = scale.batch_size
        bodies = [json.dumps([as_item(e) for e in items[i : i + size]]).encode() for i in range(0, len(items), size)]
        service = load.sequential(ctx.port, ctx.token, [("POST", SERVICE_EVENTS, body) for body in bodies])
        finals[order] = _final_counts()
        baseline = load.sequential(ctx.port, ctx.token, [("POST", BASELINE_EVENTS, body) for body in bodies])
        rate, baseline_rate = len(items) / service.seconds, len(items) / baseline.seconds
        results.append(
            Result(
                key=f"batch.{order.replace(' ', '_')}",
                name=f"Batch ingest, {size:,}-event batches, {order}",
                value=rate,
                unit="events/s",
                baseline=baseline_rate,
                baseline_name="bare DRF view: same validation, raw multi-row INSERT",
                ratio=rate / baseline_rate,
                detail=f"{len(items):,} events ({len(items) - len(set(items)):,} re-sent), 50 spaces, 100 DPUs, "
                f"one client; {_ms(service.percentile(50)):.0f} ms per batch (p50)",
                target=f"≥ {BATCH_TARGETS[order]:,} events/s",
                passed=rate >= BATCH_TARGETS[order],
            )
        )
    if finals["in order"] != finals["shuffled"]:
        differ = sorted(name for name in finals["in order"] if finals["in order"][name] != finals["shuffled"].get(name))
        ctx.problems.append(f"Shuffled batches ended with other counts than in-order ones in {differ[:5]}.")
    return results


# 4. Late events


def late_events(ctx: Context) -> list[Result]:
    """The time of POSTing one event that lands d rows before the end of a space's history, against an in-order
    event on the same history. Each d gets a fresh, settled history; its repeats land one after another.

    Then again on a space with a daily reset that falls just after where the late events land, d rows before the
    end: a reset ends what a late event recounts, so these should cost what an in-order event costs, whatever d.
    """
    scale = ctx.scale
    costs: dict[int, float] = {}
    reset_costs: dict[int, float] = {}
    after = pending = 0.0
    for distance in (0, *scale.late_distances):
        costs[distance], later = _late_run(ctx, distance, daily=False)
        if later is not None:
            after, pending = later
    for distance in (0, *scale.late_distances):
        reset_costs[distance], _ = _late_run(ctx, distance, daily=True)
    return [*_late_results(scale, costs, after, pending), *_reset_results(scale, reset_costs, costs[0])]


def _late_run(ctx: Context, distance: int, *, daily: bool) -> tuple[float, tuple[float, int] | None]:
    """The median time of `late_repeats` events d rows late (in order when d is 0) on a fresh history; for the
    plain history's largest d, also (the median in-order event after them, the rows they left pending).

    With `daily`, the space's daily reset falls halfway between the d-th latest row and the row before it, and
    the late events land just before that reset."""
    from django.conf import settings
    from django.utils import timezone

    from occupancy.models import SpaceOccupancy
    from occupancy.services import occupancy_check, occupancy_settle
    from spaces.models import Space
    from spaces.services import space_update

    scale = ctx.scale
    log(f"late events, d = {distance}{', daily reset after it' if daily else ''}")
    db.reset()
    plan = star_building(spaces=1, prefix="late-")
    layout = db.create_layout(plan)
    space_id, serial = layout.space_ids[0], plan.dpus[0].serial
    history = db.fill_sawtooth([(space_id, layout.dpu_ids[serial])], rows_per_space=scale.late_history)
    reset_at = None
    if daily:
        # Rows are at whole steps (plus under a second); halfway to the (rows - d)-th, d rows come after the reset.
        reset_at = history.first + history.step * (scale.late_history - max(distance, 1)) - history.step / 2
        space_update(space=Space.objects.get(pk=space_id), daily_reset=reset_at.time())  # rebuilds the history
        # Settled as the plain fill is: rows of a long-past history whose last change is older than the settle age,
        # and what the service derives from them derived again from the settled rows, as after the plain fill.
        occupancy_settle(space_ids=[space_id], now=timezone.now() + settings.OCCUPANCY_SETTLE_AFTER * 2)
        db.analyze(("occupancy_spaceoccupancy", *db.derive([space_id])))
        behind = SpaceOccupancy.objects.filter(space_id=space_id, timestamp__gt=reset_at)
        behind = behind.exclude(kind=SpaceOccupancy.Kind.DAILY_RESET).count()
        if distance and behind != distance:
            ctx.problems.append(f"Late events before a reset: {behind:,} rows after the reset, not {distance:,}.")
    client = load.Client(ctx.port, ctx.token)
    next_in_order = history.last + history.step
    rows = SpaceOccupancy.objects.filter(space_id=space_id).exclude(kind=SpaceOccupancy.Kind.DAILY_RESET)
    rows = rows.order_by(*SpaceOccupancy.LATEST_FIRST)
    later = None
    try:
        for _ in range(2):  # warm the worker's connection and caches
            _post_one(client, serial, next_in_order)
            next_in_order += timedelta(seconds=1)
        times = []
        for repeat in range(scale.late_repeats):
            if distance == 0:
                instant, next_in_order = next_in_order, next_in_order + timedelta(seconds=1)
            elif reset_at is not None:
                instant = reset_at - timedelta(milliseconds=repeat + 1)  # the row before is half a step earlier
            else:
                # Just before the d-th latest row: d rows come after it, whatever earlier repeats added.
                instant = rows.values_list("timestamp", flat=True)[distance - 1] - timedelta(milliseconds=repeat + 1)
            times.append(_post_one(client, serial, instant))
        if not daily and distance == scale.late_distances[-1]:
            left_pending = SpaceOccupancy.objects.filter(space_id=space_id, status="pending").count()
            in_order = []
            for _ in range(scale.late_repeats):
                in_order.append(_post_one(client, serial, next_in_order))
                next_in_order += timedelta(seconds=1)
            later = (statistics.median(in_order), left_pending)
    finally:
        client.close()
    # The figures are of right answers only: the rows the late events left equal a rebuild from the events.
    differences = occupancy_check(space_ids=[space_id])
    if differences:
        ctx.problems.append(f"Late events, d = {distance}, daily reset {daily}: {differences[0]} (and others).")
    return statistics.median(times), later


def _post_one(client: load.Client, serial: int, instant: datetime) -> float:
    """Seconds to POST one +1 event of DPU `serial` at `instant` (a +1 changes every later count: no clamping)."""
    body = json.dumps({"dpu_id": serial, "timestamp": format_instant(instant), "direction": 1}).encode()
    seconds, status, answer = client.send("POST", SERVICE_EVENTS, body)
    if status != 201:
        raise load.LoadError(f"POST {SERVICE_EVENTS}: {status} {answer[:300]!r}")
    return seconds


def _late_results(scale: Scale, costs: dict[int, float], after: float, pending: int) -> list[Result]:
    in_order = costs[0]
    results = []
    for distance in scale.late_distances:
        ratio = costs[distance] / in_order
        results.append(
            Result(
                key=f"late.d{distance}",
                name=f"Late event, {distance:,} row{'s' if distance > 1 else ''} late",
                value=_ms(costs[distance]),
                unit="ms",
                baseline=_ms(in_order),
                baseline_name=f"in-order event, {scale.late_history:,}-row history",
                ratio=ratio,
                detail=f"median of {scale.late_repeats}, one POST each",
                target=f"≤ {LATE_D1_TARGET}x in-order" if distance == 1 else "",
                passed=ratio <= LATE_D1_TARGET if distance == 1 else None,
            )
        )
    # No worse than linear: from one d to the next, the cost grows at most LINEAR_SLACK times as much as d does.
    ds = [d for d in scale.late_distances]
    growth = max((costs[b] / costs[a]) / (b / a) for a, b in zip(ds, ds[1:], strict=False))
    points = [(0, in_order), *((d, costs[d]) for d in ds)]
    mean_d = statistics.fmean(d for d, _ in points)
    mean_c = statistics.fmean(c for _, c in points)
    slope = sum((d - mean_d) * (c - mean_c) for d, c in points) / sum((d - mean_d) ** 2 for d, _ in points)
    results.append(
        Result(
            key="late.linear",
            name="Late event cost growth in d, against linear",
            value=growth,
            unit="x linear",
            baseline=1.0,
            baseline_name="cost growing exactly as d",
            ratio=growth,
            detail=f"least-squares fit: {_ms(mean_c - slope * mean_d):.2f} ms + {slope * 1e6:.2f} µs per late row",
            target=f"≤ {LINEAR_SLACK} (linear or better)",
            passed=growth <= LINEAR_SLACK,
        )
    )
    results.append(
        Result(
            key="late.after",
            name=f"In-order event after the {ds[-1]:,}-rows-late ones",
            value=_ms(after),
            unit="ms",
            baseline=_ms(in_order),
            baseline_name="in-order event on a settled history",
            ratio=after / in_order,
            detail=f"{pending:,} rows of the space pending (rows a late event changed stay pending for an hour)",
        )
    )
    return results


def _reset_results(scale: Scale, costs: dict[int, float], plain_in_order: float) -> list[Result]:
    in_order = costs[0]
    results = [
        Result(
            key="late.reset.in_order",
            name="In-order event, space with a daily reset",
            value=_ms(in_order),
            unit="ms",
            baseline=_ms(plain_in_order),
            baseline_name="in-order event, space without one",
            ratio=in_order / plain_in_order,
            detail=f"median of {scale.late_repeats}, one POST each",
        )
    ]
    for distance in scale.late_distances:
        ratio = costs[distance] / in_order
        results.append(
            Result(
                key=f"late.reset.d{distance}",
                name=f"Late event, {distance:,} row{'s' if distance > 1 else ''} late, a daily reset just after it",
                value=_ms(costs[distance]),
                unit="ms",
                baseline=_ms(in_order),
                baseline_name=f"in-order event, same space, {scale.late_history:,}-row history",
                ratio=ratio,
                detail=f"median of {scale.late_repeats}, one POST each; "
                f"{distance:,} row{'s' if distance > 1 else ''} after the reset",
                target=f"≤ {LATE_RESET_TARGET}x in-order",
                passed=ratio <= LATE_RESET_TARGET,
            )
        )
    return results


# 5. Backfill


def backfill(ctx: Context) -> list[Result]:
    """`manage.py import_events` of a generated CSV, timed and its peak memory taken, against a bare bulk load."""
    from django.db import connections

    scale = ctx.scale
    log(f"backfill of {scale.backfill_events:,} events")
    db.reset()
    plan = building(spaces=scale.backfill_spaces, dpus=scale.backfill_dpus, seed=11, prefix="backfill-")
    db.create_layout(plan)
    big, small = ctx.workdir / "backfill.csv", ctx.workdir / "backfill-tenth.csv"
    total = write_csv(events(plan, count=scale.backfill_events, seed=11), big)
    with big.open() as source, small.open("w") as target:
        for _, line in zip(range(total // 10 + 1), source, strict=False):  # the header and the first tenth
            target.write(line)
    connections.close_all()
    tenth = _run_loader(ctx, small, total // 10)
    db.reset(("occupancy_spaceoccupancy", "dpu_dpuevent"))
    connections.close_all()
    full = _run_loader(ctx, big, total)
    baseline_seconds, baseline_name = _bulk_baseline(big)
    rate, baseline_rate = total / full[0], total / baseline_seconds
    growth = full[1] / tenth[1]
    return [
        Result(
            key="backfill.rate",
            name=f"Backfill, {total:,} events (import_events)",
            value=rate,
            unit="events/s",
            baseline=baseline_rate,
            baseline_name=baseline_name,
            ratio=rate / baseline_rate,
            detail=f"{scale.backfill_spaces} spaces, {scale.backfill_dpus} DPUs, in time order; "
            f"{full[0]:.1f} s including the command's start-up",
            target=f"≥ {BACKFILL_TARGET}x baseline",
            passed=rate / baseline_rate >= BACKFILL_TARGET,
        ),
        Result(
            key="backfill.memory",
            name=f"Backfill peak memory (ru_maxrss), {total:,} events",
            value=full[1] / 1024,
            unit="MiB",
            baseline=tenth[1] / 1024,
            baseline_name=f"the same loader on the first {total // 10:,} events",
            ratio=growth,
            detail=f"{total // 10:,} events took {tenth[0]:.1f} s",
            target=f"≤ {MEMORY_GROWTH_LIMIT}x (bounded)",
            passed=growth <= MEMORY_GROWTH_LIMIT,
        ),
    ]


def _run_loader(ctx: Context, path: Path, expected: int) -> tuple[float, int]:
    """(seconds, peak RSS in KiB) of `manage.py import_events path`, a process of its own."""
    output = ctx.workdir / "import_events.out"
    with output.open("w") as handle:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "manage.py", "import_events", str(path)],
            cwd=BASE_DIR,
            env=ctx.database.env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        watchdog = threading.Timer(LOADER_TIMEOUT, process.kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage, not every child's maximum
        finally:
            watchdog.cancel()
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    text = output.read_text(errors="replace")
    if process.returncode != 0 or f"{expected} rows, {expected} new events" not in text:
        raise RuntimeError(f"import_events {path.name} did not load {expected} new events:\n{text[-2000:]}")
    return seconds, usage.ru_maxrss


def _bulk_baseline(path: Path) -> tuple[float, str]:
    """Seconds to load the same rows into the bare table with its unique index: COPY on PostgreSQL; SQLite has no
    COPY, so executemany of prepared rows there."""
    import csv

    from django.db import connection, transaction

    db.reset((BARE_TABLE,))
    columns = f'{BARE_TABLE} ("timestamp", direction, dpu_id)'
    started = time.perf_counter()
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor, path.open() as handle:
            cursor.copy_expert(f"COPY {columns} FROM STDIN WITH (FORMAT csv, HEADER true)", handle)
        name = "PostgreSQL COPY into a bare table with the same unique index"
    else:
        with transaction.atomic(), connection.cursor() as cursor, path.open(newline="") as handle:
            rows = csv.reader(handle)
            next(rows)
            chunk = []
            for timestamp, direction, serial in rows:
                instant = datetime.fromisoformat(timestamp).replace(tzinfo=None)
                chunk.append((str(instant), int(direction), int(serial)))
                if len(chunk) == 10_000:
                    cursor.executemany(f"INSERT INTO {columns} VALUES (%s, %s, %s)", chunk)
                    chunk = []
            if chunk:
                cursor.executemany(f"INSERT INTO {columns} VALUES (%s, %s, %s)", chunk)
        name = "SQLite executemany into a bare table with the same unique index (no COPY on SQLite)"
    return time.perf_counter() - started, name


BENCHMARKS = {
    "count": count_lookups,
    "ingest": single_event_ingest,
    "batch": batch_ingest,
    "late": late_events,
    "backfill": backfill,
}
