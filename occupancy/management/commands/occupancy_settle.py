from django.core.management.base import BaseCommand

from occupancy.services import occupancy_settle


class Command(BaseCommand):
    help = "Mark occupancy rows settled once their instant and their last change are older than OCCUPANCY_SETTLE_AFTER."

    def handle(self, *args, **options):
        self.stdout.write(f"Settled {occupancy_settle()} rows.")
