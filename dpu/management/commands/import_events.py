from pathlib import Path

from django.core.management.base import BaseCommand
from django.db import transaction

from dpu.csvfile import events_csv_import


class Command(BaseCommand):
    help = (
        "Load a CSV of events (timestamp,direction,dpu_id) into the existing layout through the same ingest as the "
        "API, as one transaction: every row or none. Re-loading a file changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="the CSV file")

    def handle(self, *args, path: Path, **options):
        with transaction.atomic():
            loaded = events_csv_import(path=path)
        self.stdout.write(loaded)
