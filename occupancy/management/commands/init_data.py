"""Build the sample building of FLOORPLAN.md and load its events, through the same services as the API."""

import csv
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from dpu.apis import ItemInvalid, event_from_item
from dpu.models import Dpu
from dpu.services import EventRejected, assignment_move, dpu_create, event_ingest
from occupancy.selectors import space_list_with_counts
from spaces.models import Doorway, Space
from spaces.services import doorway_create, space_create

SAMPLE_CSV = Path(settings.BASE_DIR) / "fixtures" / "dpu_data.csv"
# The sample DPUs hang where FLOORPLAN.md shows them since long before their first event.
INSTALLED = datetime(2000, 1, 1, tzinfo=UTC)
CHUNK = 5_000  # events per ingest call: memory stays bounded whatever the file's size
COLUMNS = {"timestamp", "direction", "dpu_id"}


class Command(BaseCommand):
    help = (
        "Create the sample building (spaces A and B, doorways X and Z, DPUs 283 and 423) and load a CSV of "
        "events (timestamp,direction,dpu_id). Running it again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--csv", dest="path", type=Path, default=SAMPLE_CSV, help=f"events to load (default: {SAMPLE_CSV})"
        )

    def handle(self, *args, path: Path, **options):
        if not path.is_file():
            raise CommandError(f"No CSV file at {path}.")
        with transaction.atomic():  # the building and every event, or nothing
            _sample_building(self.stdout)
            try:
                received, created = _load(path)
            except UnicodeDecodeError as exc:
                raise CommandError(f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV.") from None
        self.stdout.write(
            f"Loaded {path.name}: {received} rows, {created} new events, {received - created} duplicates."
        )
        for space in space_list_with_counts():
            self.stdout.write(f"space {space.name}: id {space.id}, count {space.count}")


def _sample_building(out) -> None:
    """The layout of FLOORPLAN.md, made only where it is missing."""
    a = Space.objects.filter(name="A").first() or space_create(name="A")
    b = Space.objects.filter(name="B").first() or space_create(name="B")
    x = Doorway.objects.filter(name="X").first() or doorway_create(name="X", side_a=None, side_b=a)
    z = Doorway.objects.filter(name="Z").first() or doorway_create(name="Z", side_a=b, side_b=a)
    for serial, doorway in ((283, x), (423, z)):
        dpu = Dpu.objects.filter(serial=serial).first()
        if dpu is None:
            dpu, token = dpu_create(serial=serial)
            out.write(f"DPU {serial} token (shown once; rotate with `manage.py dpu_token {serial}`): {token}")
        if not dpu.assignments.exists():
            # Both DPUs face A: a +1 is a person entering A (FLOORPLAN.md).
            assignment_move(dpu=dpu, doorway=doorway, enters=a, valid_from=INSTALLED)


def _load(path: Path) -> tuple[int, int]:
    received = created = 0
    now = timezone.now()
    with path.open(newline="", encoding="utf-8") as handle:
        rows = csv.DictReader(handle)
        missing = COLUMNS - set(rows.fieldnames or ())
        if missing:
            raise CommandError(f"{path} lacks the column(s) {', '.join(sorted(missing))}; it needs {sorted(COLUMNS)}.")
        chunk: list = []
        # The file line of each event in `chunk`: blank lines (which the reader skips) and quoted line breaks
        # mean they cannot be counted back from the reader's position.
        lines: list[int] = []
        for row in rows:
            line = rows.line_num
            try:
                chunk.append(event_from_item({k: row[k] for k in COLUMNS}, now=now))
            except ItemInvalid as exc:
                raise CommandError(f"{path}, line {line}: {exc.field}: {exc.message}") from None
            lines.append(line)
            if len(chunk) == CHUNK:
                created += _ingest(chunk, lines, path, now)
                received, chunk, lines = received + len(chunk), [], []
        created += _ingest(chunk, lines, path, now)
        received += len(chunk)
    return received, created


def _ingest(chunk: list, lines: list[int], path: Path, now) -> int:
    if not chunk:
        return 0
    try:
        return event_ingest(events=chunk, now=now).created
    except EventRejected as exc:
        raise CommandError(f"{path}, line {lines[exc.index]}: {exc.field}: {exc.message}") from None
