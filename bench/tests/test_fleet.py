"""The fleet day (bench/fleet.py) runs end to end at its small size, on the database the tests run on (DATABASE_URL:
SQLite or PostgreSQL), in a process of its own and on a throwaway database of its own that it drops when done:
every kind of request answered as expected, occupancy_check finding no difference, and every figure present.
"""

import json
import os

from bench import db
from bench.tests.runs import run_module

RUN_TIMEOUT = 120  # seconds; the small size takes about 20 on a 2-CPU machine


def test_a_small_fleet_day_ends_with_no_differences_and_every_figure(tmp_path):
    suffix = f"_fleet_smoke_{os.getpid()}"  # never the database of a `make fleet` running at the same time
    output, figures_path = tmp_path / "BENCHMARKS.md", tmp_path / "fleet.json"
    arguments = ["bench.fleet", "--preset", "small", "--db-suffix", suffix]
    run = run_module(
        [*arguments, "--output", str(output), "--json", str(figures_path)], work=tmp_path, timeout=RUN_TIMEOUT
    )
    assert run.returncode == 0, run.stderr[-5000:]

    figures = json.loads(figures_path.read_text())
    assert figures["problems"] == []
    assert figures["check"] == "no differences"
    assert figures["events"] > 500 and figures["events_per_second"] > 0
    # Every kind of request was made and timed: DPUs posting alone, in batches, hours late and twice; the move;
    # the dashboards.
    for kind in ("single", "batch", "late", "resend", "move", "count", "counts", "ingest", "read"):
        latency = figures["latency_ms"][kind]
        assert latency["n"] > 0 and 0 < latency["p50_ms"] <= latency["p99_ms"], kind
    assert figures["late_events"] > 0 and figures["resent_events"] > 0
    assert figures["late_rows"] > 0 and figures["rows_recalculated"] > 0 and figures["rows_per_late_event"] > 0
    assert figures["app_cpu_seconds"] > 0 and figures["app_cpu_per_1000"] > 0  # gunicorn's workers did the work
    postgres = figures["vendor"] == "postgresql"
    for name in ("postgres_cpu_per_1000", "wal_bytes_per_1000"):
        assert (figures[name] > 0) if postgres else (figures[name] is None), name
    section = output.read_text()
    assert f"<!-- bench:fleet-{figures['vendor']}:start -->" in section
    assert "| occupancy_check | no differences |" in section
    assert ("n/a" in section) != postgres

    # Cleaned up: the work folder is gone, and on PostgreSQL the database too.
    assert not list(tmp_path.glob("occupancy-fleet-*/"))
    assert not db.exists(db.bench_database(db.user_database_url(), suffix=suffix, workdir=tmp_path))
