from django.core.management.base import BaseCommand, CommandError

from occupancy.services import occupancy_check
from spaces.models import Space

SHOWN = 20


class Command(BaseCommand):
    help = (
        "Compare the stored occupancy with a fresh rebuild from the raw events (writing nothing); exit non-zero on "
        "any difference. Repair with `manage.py occupancy_rebuild`."
    )

    def add_arguments(self, parser):
        parser.add_argument("--space", type=int, help="id of the one space to check")

    def handle(self, *args, space: int | None, **options):
        if space is not None and not Space.objects.filter(pk=space).exists():
            raise CommandError(f"No space with id {space}.")
        differences = occupancy_check(space_ids=None if space is None else [space])
        if not differences:
            self.stdout.write("Occupancy matches the raw events.")
            return
        for difference in differences[:SHOWN]:
            self.stderr.write(str(difference))
        if len(differences) > SHOWN:
            self.stderr.write(f"... and {len(differences) - SHOWN} more.")
        raise CommandError(
            f"{len(differences)} occupancy rows differ from the raw events; run `manage.py occupancy_rebuild`."
        )
