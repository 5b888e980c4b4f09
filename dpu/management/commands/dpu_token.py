from django.core.management.base import BaseCommand, CommandError

from dpu.models import Dpu
from dpu.services import dpu_token_rotate


class Command(BaseCommand):
    help = "Give a DPU a new secret token and print it (only its hash is kept). The old token stops working."

    def add_arguments(self, parser):
        parser.add_argument("serial", type=int, help="the serial printed on the DPU")

    def handle(self, *args, serial: int, **options):
        dpu = Dpu.objects.filter(serial=serial).first()
        if dpu is None:
            raise CommandError(f"No DPU with serial {serial} is registered; register it first (POST /dpu/ or admin).")
        self.stdout.write(dpu_token_rotate(dpu=dpu))
