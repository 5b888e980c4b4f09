"""The table: printed, and merged into BENCHMARKS.md as one section per database (a run replaces its own)."""

import os
import platform
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bench.results import Result

SECTIONS = (
    "sqlite",
    "postgresql",
    "stream-sqlite",
    "stream-postgresql",
    "fleet-sqlite",
    "fleet-postgresql",
)  # their order in BENCHMARKS.md
HEADER = """# Benchmarks

Measured by the suite in `bench/`: `make bench` runs it on SQLite, `DATABASE_URL=postgres://… make bench` on
PostgreSQL (in a database of its own, the URL's name plus `_bench`, created and dropped by the run). Each run
replaces its database's section below; `python -m bench --help` lists the options (`--only`, `--scale tiny`).

Every figure is measured over real HTTP against gunicorn (sync workers) on 127.0.0.1, with the load client on
the same machine. Client and server share the CPUs, so each figure comes with a baseline measured in the same run,
on the same server and database, and their ratio is what the targets judge:

- **Count lookup**: `GET /space/<id>/count?ts=` at random spaces and random instants over the whole history,
  after filling the occupancy table to the size shown (in SQL: a sawtooth history per space, the counts the
  service would give it, checked against a rebuild at the smallest size). Baseline: a bare DRF view, same
  token authentication, running one raw indexed "latest row at or before ts" query.
- **Single-event ingest**: `POST /events` with one event, in time order, one building and set of DPUs per
  client. Baseline: a bare DRF view that validates the item as the service does and inserts one row with raw
  SQL into a bare table with `dpu_dpuevent`'s unique key.
- **Batch ingest**: 1,000-event batches of a generated building's stream (`bench/generate.py`, with 0.5 %
  re-sends), posted one after another, in time order and shuffled. Baseline: the bare view with the same
  batches (validation plus multi-row INSERT).
- **Counts over time**: `GET /space/<id>/counts` and `GET /counts` on 50 spaces of 10^6 rows each (SQLite: 20,000),
  filled in SQL over 460 days, answers checked against the stored rows and the count lookup first. A day in
  5-minute buckets at random spaces and days, against the count lookup on the same history (requests/s); a year
  in hourly buckets, one request at a time (p50, p99), against the same request for one day; the 50 spaces' day
  in one `GET /counts`, against 50 `GET /space/<id>/counts` one after another (medians over days).
- **Late events**: one event landing d rows before the end of a space's history, against an in-order event on
  the same history (medians); then on a space with a daily reset that falls just after where the late events
  land, d rows before the end, against an in-order event on that space.
- **Backfill**: `manage.py import_events` of a generated CSV (many spaces and DPUs, time order), wall time of
  the command and its peak RSS. Baseline: `COPY` of the same file into a bare table with the same unique index
  (PostgreSQL); executemany on SQLite. Memory is bounded when loading ten times the events takes at most 1.25
  times the memory.
"""


@dataclass(frozen=True)
class RunInfo:
    database: str  # "PostgreSQL 15.4" / "SQLite 3.40.1"
    vendor: str
    scale: str
    command: str
    workers: int
    clients: int
    seconds: float
    problems: list[str]
    notes: list[str]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f", {int(line.split()[1]) / 1024 / 1024:.1f} GiB memory"
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}){memory}, {platform.system()} {platform.release()}"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def versions(database: str) -> str:
    packages = ("Django", "djangorestframework", "gunicorn", "psycopg2-binary")
    return ", ".join(
        [f"Python {platform.python_version()}", *(f"{name} {_version(name)}" for name in packages), database]
    )


def _number(value: float, unit: str) -> str:
    if unit in {"ms", "MiB"}:
        text = f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    elif unit.startswith("x"):
        text = f"{value:.2f}"
    else:
        text = f"{value:,.0f}"
    return f"{text} {unit}"


def table(results: list[Result]) -> str:
    lines = [
        "| Benchmark | Figure | Baseline | Ratio | Target | Result |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        figure = _number(r.value, r.unit) + (f" <br>{r.detail}" if r.detail else "")
        baseline = f"{_number(r.baseline, r.unit)} <br>{r.baseline_name}"
        verdict = "" if r.passed is None else ("PASS" if r.passed else "**FAIL**")
        lines.append(f"| {r.name} | {figure} | {baseline} | {r.ratio:.2f}x | {r.target} | {verdict} |")
    return "\n".join(lines)


def section(info: RunInfo, results: list[Result]) -> str:
    title = "PostgreSQL" if info.vendor == "postgresql" else "SQLite"
    passed = sum(1 for r in results if r.passed)
    judged = sum(1 for r in results if r.passed is not None)
    parts = [
        f"## {title}",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; run: `{info.command}` (scale {info.scale}, "
        f"{info.seconds / 60:.1f} min)",
        f"- Machine: {machine()}",
        f"- Versions: {versions(info.database)}",
        f"- Server: gunicorn, {info.workers} sync workers; load: {info.clients} client processes on the same "
        "machine (batch, late, backfill, a year of counts and many spaces' counts: one client)",
        f"- Targets met: {passed} of {judged}",
        "",
        table(results),
    ]
    if info.notes:
        parts += ["", *(f"- {note}" for note in info.notes)]
    if info.problems:
        parts += ["", "**Wrong answers seen during the run:**", "", *(f"- {problem}" for problem in info.problems)]
    return "\n".join(parts) + "\n"


def _marker(vendor: str, edge: str) -> str:
    return f"<!-- bench:{vendor}:{edge} -->"


def merge(path: Path, vendor: str, text: str) -> None:
    """Write `text` as the section of `vendor` in `path`. Everything else in the file stays as it is (the other
    database's section, and what was written by hand about the figures); a new file starts with HEADER."""
    start, end = _marker(vendor, "start"), _marker(vendor, "end")
    block = f"{start}\n{text}{end}\n"
    existing = path.read_text() if path.exists() else HEADER
    found = re.search(re.escape(start) + r"\n.*?" + re.escape(end) + r"\n?", existing, re.S)
    if found:
        path.write_text(existing[: found.start()] + block + existing[found.end() :])
        return
    # A new section goes before the sections that come after it in SECTIONS, else at the end.
    later = [existing.find(_marker(name, "start")) for name in SECTIONS[SECTIONS.index(vendor) + 1 :]]
    at = min((position for position in later if position >= 0), default=len(existing))
    before = existing[:at].rstrip("\n") + "\n\n"
    path.write_text(before + block + ("\n" + existing[at:] if at < len(existing) else ""))
