"""Build the sample building of FLOORPLAN.md and load its events, through the same services as the API."""

from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from dpu.csvfile import events_csv_import
from dpu.models import Dpu
from dpu.services import assignment_move, dpu_create
from occupancy.selectors import space_list_with_counts
from spaces.models import Doorway, Space
from spaces.services import doorway_create, space_create

SAMPLE_CSV = Path(settings.BASE_DIR) / "fixtures" / "dpu_data.csv"
# The sample DPUs hang where FLOORPLAN.md shows them since long before their first event.
INSTALLED = datetime(2000, 1, 1, tzinfo=UTC)


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
        if not path.is_file():  # before the building is made (and its lines printed), not after
            raise CommandError(f"No CSV file at {path}.")
        with transaction.atomic():  # the building and every event, or nothing
            _sample_building(self.stdout)
            loaded = events_csv_import(path=path)
        self.stdout.write(loaded)
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
