"""`python -m bench`: run the benchmarks on a bench database beside DATABASE_URL's and print the table.

A full run (the default, `make bench`) writes its database's section of BENCHMARKS.md; a tiny run or a run of
some benchmarks only (--only) writes to a temporary file unless --output says where.
"""

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench import db, report
from bench.db import BASE_DIR
from bench.results import SCALES

ORDER = ("count", "series", "ingest", "batch", "late", "backfill")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="full", help="full: the issue's sizes (default)")
    parser.add_argument(
        "--only", default=",".join(ORDER), help=f"comma-separated benchmarks to run, of {', '.join(ORDER)}"
    )
    parser.add_argument("--output", type=Path, help="the Markdown file to merge the table into")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="gunicorn sync workers (default: one per CPU)"
    )
    parser.add_argument("--clients", type=int, default=2, help="client processes for lookups and single events")
    parser.add_argument("--db-suffix", default="_bench", help="the bench database is DATABASE_URL's name plus this")
    parser.add_argument("--keep", action="store_true", help="keep the bench database and work folder")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(args.only) - set(ORDER))
    if unknown or not args.only:
        parser.error(f"--only takes some of {', '.join(ORDER)}; not {', '.join(unknown) or 'nothing'}.")
    if args.workers < 1 or args.clients < 1:
        parser.error("--workers and --clients must be at least 1.")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    scale = SCALES[args.scale]
    selected = [name for name in ORDER if name in args.only]
    complete = scale.name == "full" and len(selected) == len(ORDER)
    workdir = Path(tempfile.mkdtemp(prefix="occupancy-bench-"))
    output = args.output or (BASE_DIR / "BENCHMARKS.md" if complete else workdir.parent / f"{workdir.name}.md")
    database = db.bench_database(db.user_database_url(), suffix=args.db_suffix, workdir=workdir)
    started = time.monotonic()
    print(f"bench database: {database.name} ({scale.name} scale: {', '.join(selected)})", file=sys.stderr)
    try:
        results, info = _run(args, scale, selected, database, workdir, started)
    finally:
        if not args.keep:
            db.drop(database)
            shutil.rmtree(workdir, ignore_errors=True)
    text = report.section(info, results)
    print(text)
    report.merge(output, database.vendor, text)
    print(f"written to {output}", file=sys.stderr)
    if args.json:
        payload = {"database": info.database, "scale": scale.name, "problems": info.problems}
        args.json.write_text(json.dumps({**payload, "results": [r.as_dict() for r in results]}, indent=2))
    return 1 if args.strict and (info.problems or any(r.passed is False for r in results)) else 0


def _run(args, scale, selected, database, workdir, started):
    from bench import benchmarks, series, server  # after the bench database exists: they import Django's models

    runners = {**benchmarks.BENCHMARKS, "series": series.counts_over_time}

    db.create(database)
    os.environ.update(DATABASE_URL=database.url, DJANGO_SETTINGS_MODULE=db.SETTINGS)
    import django
    from django.db import connections

    django.setup()
    try:
        db.create_bare_table()
        token, version = db.staff_token(), db.server_version()
        connections.close_all()
        log_path = workdir / "gunicorn.log"
        results = []
        with server.gunicorn(env=database.env, workers=args.workers, log_path=log_path) as running:
            context = benchmarks.Context(
                database=database, scale=scale, port=running.port, token=token, clients=args.clients, workdir=workdir
            )
            try:
                for name in selected:
                    results += runners[name](context)
            except Exception:
                traceback.print_exc()
                print(f"gunicorn's log:\n{running.log()[-5000:]}", file=sys.stderr)
                raise
    finally:
        connections.close_all()
    command = "python -m bench " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "make bench"
    if database.vendor == "postgresql":
        command = "DATABASE_URL=postgres://… " + command
    notes = []
    if scale.name == "full" and "count" in selected and database.vendor == "sqlite":
        notes.append("Count lookups on SQLite stop at 1,000,000 rows, as the issue asks.")
    if scale.name == "full" and "series" in selected and database.vendor == "sqlite":
        rows = scale.series_rows["sqlite"]
        notes.append(
            f"Counts over time on SQLite read {scale.series_spaces} spaces of {rows:,} rows "
            f"({scale.series_spaces * rows:,} in all), not 1,000,000 each."
        )
    info = report.RunInfo(
        database=version,
        vendor=database.vendor,
        scale=scale.name,
        command=command,
        workers=args.workers,
        clients=args.clients,
        seconds=time.monotonic() - started,
        problems=context.problems,
        notes=notes,
    )
    return results, info


if __name__ == "__main__":
    sys.exit(main())
