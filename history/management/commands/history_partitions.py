from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from history.partitions import AHEAD, Month, partitions_ensure


class Command(BaseCommand):
    help = (
        f"Create the monthly partitions of the event log and the occupancy rows for this month and the {AHEAD} "
        "after it (and for --from on, e.g. before importing old history), moving their rows out of the default "
        "partition. `make serve` and the migrations run it; run it daily from cron too. Nothing on SQLite."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="first", metavar="YYYY-MM", help="also every month from this one on")

    def handle(self, *args, first: str | None, **options):
        if connection.vendor != "postgresql":
            self.stdout.write("SQLite keeps the event log and the occupancy rows in one table each: nothing to do.")
            return
        months = []
        if first is not None:
            try:
                month = Month.parse(first)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            last = Month.of(timezone.now())
            while month.start <= last.start:
                months.append(month)
                month = month.next()
        created = partitions_ensure(months=months)
        self.stdout.write(f"Created {len(created)} partition(s)" + (f": {', '.join(created)}." if created else "."))
