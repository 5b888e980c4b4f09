from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from history.partitions import Month
from history.services import ArchiveRefused, history_archive


class Command(BaseCommand):
    help = (
        "Archive every month before --before: export its raw events to --to (CSV, gzip; `import_events` reads it "
        "once gunzipped), then drop its partitions of the event log and the occupancy rows. Counts and counts over "
        "time of archived months are still answered, from the five-minute blocks kept; events posted into them "
        "are refused with a 409. PostgreSQL only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--before", required=True, metavar="YYYY-MM", help="the first month to keep")
        parser.add_argument("--to", required=True, type=Path, help="the file to write, e.g. events-2024.csv.gz")

    def handle(self, *args, before: str, to: Path, **options):
        try:
            archive = history_archive(before=Month.parse(before), to=to)
        except (ValueError, ArchiveRefused) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Archived {archive.events} events from before {before} to {archive.file}.")
