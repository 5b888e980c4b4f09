from django.core.management.base import BaseCommand, CommandError

from occupancy.services import occupancy_rebuild
from spaces.models import Space


class Command(BaseCommand):
    help = "Recalculate the occupancy of every space (or one) from its raw events, with the same code as ingest."

    def add_arguments(self, parser):
        parser.add_argument("--space", type=int, help="id of the one space to rebuild")

    def handle(self, *args, space: int | None, **options):
        if space is not None and not Space.objects.filter(pk=space).exists():
            raise CommandError(f"No space with id {space}.")
        occupancy_rebuild(space_ids=None if space is None else [space])
        self.stdout.write("Rebuilt the occupancy of " + ("every space." if space is None else f"space {space}."))
