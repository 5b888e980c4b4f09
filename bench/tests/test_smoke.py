"""The benchmark suite runs, so that it cannot rot between full runs: every benchmark at tiny scale, on the database
the tests run on (DATABASE_URL: SQLite or PostgreSQL), each giving a positive figure, baseline and ratio.

The suite runs as `make bench` runs it, in a process of its own, on a throwaway database of its own (PostgreSQL: the
URL's name plus a suffix; SQLite: a file in its work folder) that it drops when done; the test checks that too.
It needs no test database from pytest-django.
"""

import json
import os

from bench import db
from bench.tests.runs import run_module

RUN_TIMEOUT = 300  # seconds; a tiny run takes about 30 on a 2-CPU machine
EXPECTED = {
    "count.1000",
    "count.10000",
    "count.p99",
    "series.day",
    "series.year",
    "series.spaces_1h",
    "series.spaces_5m",
    "ingest.single",
    "batch.in_order",
    "batch.shuffled",
    "late.d1",
    "late.d100",
    "late.d10000",
    "late.linear",
    "late.after",
    "late.reset.in_order",
    "late.reset.d1",
    "late.reset.d100",
    "late.reset.d10000",
    "backfill.rate",
    "backfill.memory",
}


def test_every_benchmark_gives_a_figure_a_baseline_and_a_ratio_at_tiny_scale(tmp_path):
    suffix = f"_bench_smoke_{os.getpid()}"  # never the database of a `make bench` running at the same time
    output, results = tmp_path / "BENCHMARKS.md", tmp_path / "results.json"
    run = run_module(
        ["bench", "--scale", "tiny", "--db-suffix", suffix, "--output", str(output), "--json", str(results)],
        work=tmp_path,
        timeout=RUN_TIMEOUT,
    )
    assert run.returncode == 0, run.stderr[-5000:]

    report = json.loads(results.read_text())
    assert report["problems"] == []
    assert {row["key"] for row in report["results"]} == EXPECTED
    for row in report["results"]:
        assert row["value"] > 0 and row["baseline"] > 0 and row["ratio"] > 0, row
        assert row["passed"] in (True, False, None), row
    assert "| Count lookup, 10,000 rows |" in output.read_text()

    # Cleaned up: the work folder is gone, and on PostgreSQL the bench database too.
    assert not list(tmp_path.glob("occupancy-bench-*/"))
    database = db.bench_database(db.user_database_url(), suffix=suffix, workdir=tmp_path)
    assert not db.exists(database)
