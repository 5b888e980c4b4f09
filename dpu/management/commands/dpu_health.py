"""`manage.py dpu_health`: the fleet page as text, for cron and monitors."""

from datetime import datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from config.api import format_instant
from dpu.selectors import DpuHealth, dpu_health_fleet

COLUMNS = ("DPU", "STATUS", "DOORWAY", "LAST REPORT", "LATEST EVENT", "EVENTS 24H", "LATENESS P95", "CLOCK REFUSED")


def _instant(value: datetime | None) -> str:
    return format_instant(value) if value else "-"


def _row(health: DpuHealth) -> tuple[str, ...]:
    last = health.last_refusal
    refused = "-"
    if last is not None:
        refused = (
            f"{health.refused_clock_before_2000} before 2000, {health.refused_clock_ahead} ahead; "
            f"last {_instant(last.last_refused_at)} ({last.reason} {_instant(last.last_timestamp)})"
        )
    return (
        str(health.serial),
        health.status,
        health.doorway.name if health.doorway else "-",
        _instant(health.last_received_at),
        _instant(health.last_event_at),
        str(health.events_24h),
        "-" if health.lateness_p95_s is None else f"<= {health.lateness_p95_s} s",
        refused,
    )


class Command(BaseCommand):
    help = (
        "Print every DPU's health, worst first (as the dashboard's fleet page), and exit with status 1 when any DPU "
        "is silent: assigned, and nothing of it stored for longer than DPU_SILENT_AFTER."
    )

    def handle(self, *args, **options):
        fleet = dpu_health_fleet(now=timezone.now())
        rows = [COLUMNS, *(_row(health) for health in fleet)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
        for row in rows:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        silent = [health.serial for health in fleet if health.status == "silent"]
        if silent:
            hours = settings.DPU_SILENT_AFTER.total_seconds() / 3600
            raise CommandError(
                f"{len(silent)} DPU(s) silent for more than {hours:g} hours: {', '.join(map(str, silent))}. Check "
                "their power and network, or end their assignments if they were taken down."
            )
