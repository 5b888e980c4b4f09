"""Loading events from a CSV file (timestamp,direction,dpu_id), as DPU logs and fixtures/dpu_data.csv come."""

import csv
from datetime import datetime
from pathlib import Path

from django.core.management.base import CommandError
from django.utils import timezone

from dpu.apis import ItemInvalid, event_from_item
from dpu.services import EventRejected, event_ingest

CHUNK = 5_000  # events per ingest call
COLUMNS = {"timestamp", "direction", "dpu_id"}


def events_csv_import(*, path: Path, now: datetime | None = None) -> str:
    """events_csv_load for a management command: a missing or unloadable file is a CommandError saying why, and
    the line to print is returned. Run it inside the command's transaction."""
    if not path.is_file():
        raise CommandError(f"No CSV file at {path}.")
    try:
        received, created = events_csv_load(path=path, now=now)
    except CsvRejected as exc:
        raise CommandError(str(exc)) from None
    return f"Loaded {path.name}: {received} rows, {created} new events, {received - created} duplicates."


class CsvRejected(Exception):
    """The file cannot be loaded; the message names the line and the reason."""


def events_csv_load(*, path: Path, now: datetime | None = None) -> tuple[int, int]:
    """Ingest a CSV of events (timestamp,direction,dpu_id) in chunks; returns (rows read, events created).

    Each chunk goes through event_ingest like an API batch, so memory stays bounded whatever the file's size.
    Run it inside a transaction to make the whole file all or nothing.
    """
    now = now or timezone.now()
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return _read(path, handle, now)
    except UnicodeDecodeError as exc:
        raise CsvRejected(f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV.") from None


def _read(path: Path, handle, now: datetime) -> tuple[int, int]:
    received = created = 0
    rows = csv.DictReader(handle)
    missing = COLUMNS - set(rows.fieldnames or ())
    if missing:
        raise CsvRejected(f"{path} lacks the column(s) {', '.join(sorted(missing))}; it needs {sorted(COLUMNS)}.")
    chunk: list = []
    # The file line of each event in `chunk`: blank lines (which the reader skips) and quoted line breaks
    # mean they cannot be counted back from the reader's position.
    lines: list[int] = []
    for row in rows:
        line = rows.line_num
        try:
            chunk.append(event_from_item({k: row[k] for k in COLUMNS}, now=now))
        except ItemInvalid as exc:
            raise CsvRejected(f"{path}, line {line}: {exc.field}: {exc.message}") from None
        lines.append(line)
        if len(chunk) == CHUNK:
            created += _ingest(chunk, lines, path, now)
            received, chunk, lines = received + len(chunk), [], []
    created += _ingest(chunk, lines, path, now)
    received += len(chunk)
    return received, created


def _ingest(chunk: list, lines: list[int], path: Path, now: datetime) -> int:
    if not chunk:
        return 0
    try:
        return event_ingest(events=chunk, now=now).created
    except EventRejected as exc:
        raise CsvRejected(f"{path}, line {lines[exc.index]}: {exc.field}: {exc.message}") from None
