from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from dpu.csvfile import CsvRejected, events_csv_load


class Command(BaseCommand):
    help = (
        "Load a CSV of events (timestamp,direction,dpu_id) into the existing layout through the same ingest as the "
        "API, as one transaction: every row or none. Re-loading a file changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="the CSV file")

    def handle(self, *args, path: Path, **options):
        if not path.is_file():
            raise CommandError(f"No CSV file at {path}.")
        with transaction.atomic():
            try:
                received, created = events_csv_load(path=path)
            except CsvRejected as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Loaded {path.name}: {received} rows, {created} new events, {received - created} duplicates."
        )
