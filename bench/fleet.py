"""`python -m bench.fleet` (`make fleet`): a compressed day of a DPU fleet against gunicorn, measured.

N DPUs over M spaces post a day of events along a diurnal curve (a few post each event at once, most buffer and
post a batch every hour, 1 % are offline for hours and then post their buffer as one batch, some batches
come twice, one DPU is moved at midday and the move posted an hour later) while dashboards read counts and a
day's 5-minute buckets. The simulated day is mapped onto the real recent past, ending when the run ends, so every
timestamp is one the service accepts. At the end `manage.py occupancy_check` must find no difference, and every
space's count must be what the simulation says: else the run fails.

Runs on a throwaway database beside DATABASE_URL's (its name plus "_fleet"; SQLite: a file in the work folder).
With --url it targets a server already running (`make cluster`'s front) instead, and writes its layout into that
server's PostgreSQL database (--database-url, the primary; never dropped): DPU serials after the highest there,
space names of their own, and its checks count only the day's own events and spaces.
"""

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

from bench import db, fleet_load, report
from bench.db import BASE_DIR
from bench.fleet_plan import DAY_MS, Size, build, layout
from bench.load import HOST, percentile

PRESETS = {
    "small": Size(dpus=50, spaces=10, events_per_dpu=20, day_seconds=6, clients=2, reads_per_second=5),
    "default": Size(dpus=1000, spaces=200, events_per_dpu=40, day_seconds=180, clients=4, flush_minutes=60),
}
START_MARGIN = 3.0  # seconds for the client processes to start before the day does
INGEST = ("single", "batch", "late", "resend")
KINDS = (*INGEST, "count", "counts", "move")
SAMPLE_EVERY = 0.2  # seconds between reads of the PostgreSQL backends' CPU times


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default", help="sizes to start from")
    parser.add_argument("--dpus", type=int, help="DPUs (default preset: 1,000)")
    parser.add_argument("--spaces", type=int, help="spaces (default preset: 200)")
    parser.add_argument("--events-per-dpu", type=int, help="a DPU's events on the day, on average (40)")
    parser.add_argument("--day-seconds", type=float, help="wall seconds the simulated day lasts (180)")
    parser.add_argument("--clients", type=int, help="client processes posting events (4); dashboards get one more")
    parser.add_argument("--reads-per-second", type=float, help="dashboard requests a wall second (10)")
    parser.add_argument("--seed", type=int, help="the simulation's random seed")
    parser.add_argument(
        "--flush-minutes", type=int, help="a buffering DPU posts what it holds every this many simulated minutes (60)"
    )
    parser.add_argument("--live-share", type=float, help="the share of DPUs that post each event at once (0.05)")
    parser.add_argument("--workers", type=int, default=None, help="gunicorn sync workers (default: 2 per CPU + 1)")
    parser.add_argument("--output", type=Path, help="the Markdown file to merge the section into")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--db-suffix", default="_fleet", help="the run's database is DATABASE_URL's name plus this")
    parser.add_argument("--keep", action="store_true", help="keep the database and work folder")
    parser.add_argument("--url", help=f"a running server to target, http://{HOST}:PORT, instead of starting gunicorn")
    parser.add_argument("--database-url", help="with --url: the server's PostgreSQL database (default DATABASE_URL)")
    args = parser.parse_args(argv)
    if args.url:
        target = urlsplit(args.url)
        if target.scheme != "http" or target.hostname not in (HOST, "localhost") or not target.port:
            parser.error(f"--url must be http://{HOST}:PORT: the load clients send to {HOST} only.")
        args.port = target.port
        args.database_url = args.database_url or db.user_database_url()
        if not args.database_url.startswith(("postgres://", "postgresql://")):
            parser.error("--url needs the server's PostgreSQL database: --database-url postgres://… (the primary).")
    elif args.database_url:
        parser.error("--database-url goes with --url.")
    overrides = {
        name: getattr(args, name)
        for name in (
            "dpus",
            "spaces",
            "events_per_dpu",
            "day_seconds",
            "clients",
            "reads_per_second",
            "seed",
            "flush_minutes",
            "live_share",
        )
        if getattr(args, name) is not None
    }
    args.size = replace(PRESETS[args.preset], **overrides)
    args.standard = args.preset == "default" and not overrides and not args.url
    if min(args.size.dpus, args.size.spaces, args.size.events_per_dpu, args.size.clients) < 1:
        parser.error("--dpus, --spaces, --events-per-dpu and --clients must be at least 1.")
    if args.size.day_seconds <= 0:
        parser.error("--day-seconds must be positive.")
    if args.workers is None:
        import os

        args.workers = 2 * (os.cpu_count() or 1) + 1
    return args


def process_cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of `pid` and of its live children (gunicorn's master and its workers), from
    /proc. Workers that lived through the run hold all the app's CPU of it."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


class PostgresMeter:
    """CPU seconds of the PostgreSQL processes serving one database (backends and autovacuum workers: whatever
    pg_stat_activity shows on it), from /proc/<pid>/stat, and the WAL the whole server wrote.

    Backends come and go (Django reconnects after CONN_MAX_AGE), so a thread reads every SAMPLE_EVERY seconds and
    keeps each process's last reading: what a backend spent after its last reading and before it exited is lost.
    """

    def __init__(self, database: db.BenchDatabase):
        self.database, self.tick = database, os.sysconf("SC_CLK_TCK")
        self.connection = db._maintenance_connection(database)  # on `postgres`: not one of the measured backends
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.stopping = threading.Event()
        self.unreadable = 0

    def _cpu(self, pid: int) -> float | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / self.tick

    def _sample(self, *, baseline: bool) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [self.database.name])
            pids = [row[0] for row in cursor.fetchall()]
        for pid in pids:
            cpu = self._cpu(pid)
            if cpu is None:
                self.unreadable += 1
                continue
            # A process first seen after the start was born during the run: all its time counts.
            self.first.setdefault(pid, cpu if baseline else 0.0)
            self.last[pid] = cpu

    def wal(self) -> str:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()")
            return cursor.fetchone()[0]

    def __enter__(self):
        self.wal_start = self.wal()
        self._sample(baseline=True)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def _loop(self) -> None:
        while not self.stopping.wait(SAMPLE_EVERY):
            self._sample(baseline=False)

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join()
        self._sample(baseline=False)
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [self.wal_start])
            self.wal_bytes = int(cursor.fetchone()[0])
        self.cpu_seconds = sum(self.last[pid] - self.first[pid] for pid in self.last)
        self.connection.close()


def get(port: int, token: str, path: str) -> bytes:
    # no-cache: from the primary, when the server reads from replicas (README, "Reads from replicas").
    headers = {"Authorization": f"Token {token}", "Accept": "application/json", "Cache-Control": "no-cache"}
    with urllib.request.urlopen(
        urllib.request.Request(f"http://{HOST}:{port}{path}", headers=headers), timeout=60
    ) as r:
        return r.read()


def rows_recalculated(port: int, token: str) -> tuple[float, float]:
    """(sum, count) of the occupancy_rows_recalculated histogram, added up over the workers by GET /metrics."""
    found = {}
    for line in get(port, token, "/metrics").decode().splitlines():
        name, _, value = line.partition(" ")
        if name in ("occupancy_rows_recalculated_sum", "occupancy_rows_recalculated_count"):
            found[name.rpartition("_")[2]] = float(value)
    return found.get("sum", 0.0), found.get("count", 0.0)


# An event is late in a space when an earlier batch (an earlier received_at) already brought the space a later
# event: then its row lands inside the space's history and the rows after it are recounted.
LATE_ROWS_SQL = """
    SELECT COUNT(*) FROM (
        SELECT o."timestamp" AS ts,
               MAX(o."timestamp") OVER (
                   PARTITION BY o.space_id ORDER BY e.received_at
                   RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW EXCLUDE GROUP
               ) AS before
        FROM occupancy_spaceoccupancy o JOIN dpu_dpuevent e ON e.id = o.event_id JOIN dpu_dpu d ON d.id = e.dpu_id
        WHERE d.serial BETWEEN %s AND %s
    ) t
    WHERE before > ts"""


def create_layout(size: Size, *, first_serial: int = 1, label: str = "fleet") -> tuple[list[int], list[int], list[int]]:
    """The plan's spaces, doorways, DPUs (serials first_serial.. on) and their assignments, written through the ORM;
    the ids."""
    from django.db import transaction

    from dpu.models import Dpu, DpuAssignment
    from spaces.models import Doorway, Space

    plan = layout(size)
    since = datetime(2000, 1, 1, tzinfo=UTC)
    with transaction.atomic():
        spaces = Space.objects.bulk_create([Space(name=f"{label} space {i + 1}") for i in range(size.spaces)])
        doorways = Doorway.objects.bulk_create(
            [
                Doorway(name=f"{label} door {k + 1}", side_a=None if a is None else spaces[a], side_b=spaces[b])
                for k, (a, b) in enumerate(plan.doorways)
            ]
        )
        dpus = Dpu.objects.bulk_create([Dpu(serial=first_serial + k) for k in range(size.dpus)])
        DpuAssignment.objects.bulk_create(
            [
                DpuAssignment(dpu=dpu, doorway=doorways[k], enters=spaces[plan.doorways[k][1]], valid_from=since)
                for k, dpu in enumerate(dpus)
            ]
        )
    return [s.id for s in spaces], [d.id for d in doorways], [d.serial for d in dpus]


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    workdir = Path(tempfile.mkdtemp(prefix="occupancy-fleet-"))
    if args.url:  # the running server's own database, as it is
        database = db.bench_database(args.database_url, suffix="", workdir=workdir)
    else:
        database = db.bench_database(db.user_database_url(), suffix=args.db_suffix, workdir=workdir)
    print(f"fleet database: {database.name}; {args.size}", file=sys.stderr, flush=True)
    started = time.monotonic()
    try:
        figures = _run(args, database, workdir)
    finally:
        if not args.keep:
            if not args.url:
                db.drop(database)
            shutil.rmtree(workdir, ignore_errors=True)
    figures["seconds"] = round(time.monotonic() - started, 1)
    text = section(figures)
    print(text)
    output = args.output or (BASE_DIR / "BENCHMARKS.md" if args.standard else None)
    if output:
        report.merge(output, f"fleet-{database.vendor}", text)
        print(f"written to {output}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    if figures["problems"]:
        print("FAILED:\n" + "\n".join(f"- {p}" for p in figures["problems"]), file=sys.stderr)
        return 1
    return 0


def _run(args, database: db.BenchDatabase, workdir: Path) -> dict:
    import os
    from contextlib import nullcontext

    if not args.url:
        db.create(database)
    os.environ.update(DATABASE_URL=database.url, DJANGO_SETTINGS_MODULE=db.SETTINGS)
    import django
    from django.db import connection, connections

    from bench import server  # after Django's environment is set, as bench/__main__.py does

    django.setup()
    from django.db.models import Max

    from dpu.models import Dpu

    size = args.size
    first_serial, label = 1, "fleet"
    if args.url:  # beside what the server's database holds already, and beside earlier runs against it
        first_serial = (Dpu.objects.aggregate(Max("serial"))["serial__max"] or 0) + 1
        label = f"fleet {datetime.now(UTC):%Y-%m-%d %H:%M:%S}"
    space_ids, doorway_ids, serials = create_layout(size, first_serial=first_serial, label=label)
    token, version = db.staff_token(), db.server_version()
    connections.close_all()
    # Every worker counts its metrics in files of this directory, and GET /metrics adds them up (config/gunicorn.py).
    metrics_dir = workdir / "metrics"
    metrics_dir.mkdir()
    env = {**database.env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    postgres = database.vendor == "postgresql"
    if args.url:
        running_here = nullcontext(SimpleNamespace(port=args.port))
    else:
        running_here = server.gunicorn(env=env, workers=args.workers, log_path=workdir / "gunicorn.log")
    with running_here as running:
        start = time.time() + START_MARGIN
        day_start_ms = round((start + size.day_seconds) * 1000) - DAY_MS  # the day ends as the run does
        day = build(
            size, day_start_epoch_ms=day_start_ms, serials=serials, doorway_ids=doorway_ids, space_ids=space_ids
        )
        print(
            f"  {len(day.events):,} events, {sum(map(len, day.by_client)):,} posts, {len(day.reads):,} reads",
            file=sys.stderr,
            flush=True,
        )
        # With --url, GET /metrics adds up the workers of whichever app server answers it: not the whole cluster's.
        recalculated_before = None if args.url else rows_recalculated(running.port, token)
        meter = PostgresMeter(database) if postgres else None
        app_cpu_before = None if args.url else process_cpu_seconds(running.process.pid)
        if meter:
            meter.__enter__()
        try:
            sent, failures, problems = fleet_load.run(
                running.port,
                token,
                [*day.by_client, day.reads],
                start=start,
                day_seconds=size.day_seconds,
                timeout=size.day_seconds * 20 + 600,
            )
        finally:
            if meter:
                meter.__exit__(None, None, None)
        app_cpu = None if args.url else process_cpu_seconds(running.process.pid) - app_cpu_before
        recalculated_after = None if args.url else rows_recalculated(running.port, token)
        counts = json.loads(get(running.port, token, "/space/?limit=10000"))
        if failures and not args.url:
            print(f"gunicorn's log:\n{running.log()[-3000:]}", file=sys.stderr)
    with connection.cursor() as cursor:
        serial_range = [serials[0], serials[-1]]
        cursor.execute(
            "SELECT COUNT(*) FROM dpu_dpuevent e JOIN dpu_dpu d ON d.id = e.dpu_id WHERE d.serial BETWEEN %s AND %s",
            serial_range,
        )
        stored = cursor.fetchone()[0]
        cursor.execute(LATE_ROWS_SQL, serial_range)
        late_rows = cursor.fetchone()[0]
    connections.close_all()
    if failures:
        problems.insert(0, f"{failures} requests got a wrong answer or none")
    if stored != len(day.events):
        problems.append(f"{stored:,} events stored, but the day had {len(day.events):,}")
    by_id = {space["id"]: space["count"] for space in counts}
    wrong = [
        (i, by_id.get(sid), day.final_counts[i])
        for i, sid in enumerate(space_ids)
        if by_id.get(sid) != day.final_counts[i]
    ]
    if wrong:
        problems.append(
            f"{len(wrong)} spaces end with another count than the simulation's, e.g. {wrong[:5]} (index, got, expected)"
        )
    try:
        db.manage(database, "occupancy_check")
        check = "no differences"
    except RuntimeError as exc:
        check = "DIFFERENCES"
        problems.append(f"occupancy_check: {str(exc)[-2000:]}")

    ingest = [s for s in sent if s.kind in INGEST]
    ended = max((s.sent + s.seconds for s in ingest), default=start)
    wall = max(ended - start, 1e-9)
    quarter = size.day_seconds / 96
    windows: dict[int, int] = {}  # events answered in each simulated quarter hour of wall time
    for s in ingest:
        if s.kind != "resend":
            window = int((s.sent + s.seconds - start) // quarter)
            windows[window] = windows.get(window, 0) + s.events
    lags = sorted(max(0.0, s.sent - s.due) for s in ingest)
    latency = {}
    for kind in (*KINDS, "ingest", "read"):
        group = INGEST if kind == "ingest" else ("count", "counts") if kind == "read" else (kind,)
        values = sorted(s.seconds * 1000 for s in sent if s.kind in group)
        if values:
            latency[kind] = {"n": len(values), "p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99)}
    events = len(day.events)
    measured = recalculated_before is not None
    recalculated = recalculated_after[0] - recalculated_before[0] if measured else None
    command = "python -m bench.fleet " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "make fleet"
    return {
        "database": version,
        "vendor": database.vendor,
        "command": ("DATABASE_URL=postgres://… " if postgres else "") + command,
        "size": asdict(size),
        "workers": None if args.url else args.workers,
        "url": args.url,
        "events": events,
        "late_events": day.late_events,
        "resent_events": day.resent_events,
        "outage_dpus": len(day.layout.outages),
        "posts": sum(1 for s in ingest),
        "peak_to_mean": round(day.peak_ratio(), 1),
        "day_wall_seconds": round(wall, 1),
        "events_per_second": round(events / wall, 1),
        "peak_events_per_second": round(max(windows.values(), default=0) / quarter, 1),
        "lag_p99_s": round(percentile(lags, 99), 2) if lags else None,
        "lag_max_s": round(lags[-1], 2) if lags else None,
        "latency_ms": {k: {m: round(v, 2) for m, v in d.items()} for k, d in latency.items()},
        "app_cpu_seconds": round(app_cpu, 2) if app_cpu is not None else None,
        "app_cpu_per_1000": round(app_cpu / events * 1000, 3) if app_cpu is not None else None,
        "postgres_cpu_seconds": round(meter.cpu_seconds, 2) if meter else None,
        "postgres_cpu_per_1000": round(meter.cpu_seconds / events * 1000, 3) if meter else None,
        "wal_bytes": meter.wal_bytes if meter else None,
        "wal_bytes_per_1000": round(meter.wal_bytes / events * 1000) if meter else None,
        "unreadable_cpu_samples": meter.unreadable if meter else None,
        "rows_recalculated": int(recalculated) if measured else None,
        "recalculations": int(recalculated_after[1] - recalculated_before[1]) if measured else None,
        "late_rows": late_rows,
        "rows_per_late_event": (round(recalculated / late_rows, 1) if late_rows else 0.0) if measured else None,
        "check": check,
        "problems": problems,
    }


def _ms(latency: dict, kind: str) -> str:
    d = latency.get(kind)
    return f"{d['p50_ms']:,.1f} / {d['p99_ms']:,.1f} ms ({d['n']:,})" if d else "n/a"


def section(f: dict) -> str:
    s = f["size"]
    na = "n/a (SQLite)"
    app = (
        f"{f['app_cpu_per_1000']:.3f} s ({f['app_cpu_seconds']:.1f} s in all)"
        if f.get("app_cpu_seconds") is not None
        else "n/a"
    )
    cpu = (
        f"{f['postgres_cpu_per_1000']:.3f} s ({f['postgres_cpu_seconds']:.1f} s in all)"
        if f["postgres_cpu_seconds"] is not None
        else na
    )
    wal = (
        f"{f['wal_bytes_per_1000'] / 1024:,.0f} KiB ({f['wal_bytes'] / 2**20:,.1f} MiB in all)"
        if f["wal_bytes"] is not None
        else na
    )
    title = "PostgreSQL" if f["vendor"] == "postgresql" else "SQLite"
    rows = [
        (
            "Sustained ingest",
            f"{f['events_per_second']:,.0f} events/s ({f['events']:,} events in {f['day_wall_seconds']} s, "
            f"{s['day_seconds']:g} s planned)",
        ),
        (
            "Busiest quarter hour",
            f"{f['peak_events_per_second']:,.0f} events/s (the plan's peak is {f['peak_to_mean']}x its mean)",
        ),
        ("Behind schedule", f"p99 {f['lag_p99_s']} s, at most {f['lag_max_s']} s"),
        ("Ingest p50 / p99, all posts", _ms(f["latency_ms"], "ingest")),
        ("— single events", _ms(f["latency_ms"], "single")),
        ("— buffered batches", _ms(f["latency_ms"], "batch")),
        ("— outage batches, hours late", _ms(f["latency_ms"], "late")),
        ("— re-sent batches (all duplicates)", _ms(f["latency_ms"], "resend")),
        ("Read p50 / p99, count now", _ms(f["latency_ms"], "count")),
        ("— a day in 5-minute buckets", _ms(f["latency_ms"], "counts")),
        ("App (gunicorn) CPU per 1,000 events", app),
        ("PostgreSQL CPU per 1,000 events", cpu),
        ("WAL per 1,000 events", wal),
        (
            "Rows recalculated per late event",
            f"{f['rows_per_late_event']:,} ({f['rows_recalculated']:,} rows, {f['late_rows']:,} late event rows)"
            if f["rows_recalculated"] is not None
            else f"n/a (--url: GET /metrics counts one app server's; {f['late_rows']:,} late event rows)",
        ),
        ("occupancy_check", f["check"]),
    ]
    served_by = f"gunicorn {f['workers']} sync workers" if f["workers"] else f"the server at {f['url']}"
    parts = [
        f"## Fleet day, {title}",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; run: `{f['command']}` ({f['seconds'] / 60:.1f} min)",
        f"- Machine: {report.machine()}",
        f"- Versions: {report.versions(f['database'])}",
        f"- Sizes: {s['dpus']:,} DPUs over {s['spaces']:,} spaces, {s['events_per_dpu']} events a DPU, a day of "
        f"{s['day_seconds']:g} s; {f['outage_dpus']} DPUs offline for hours ({f['late_events']:,} events late), "
        f"{f['resent_events']:,} events re-sent, one DPU moved; "
        f"{served_by}, "
        f"{s['clients']} client processes posting and one reading ({s['reads_per_second']:g} reads/s)",
        "",
        "| Figure | Value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
    ]
    if f["problems"]:
        parts += ["", "**Wrong answers:**", "", *(f"- {p}" for p in f["problems"])]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    sys.exit(main())
