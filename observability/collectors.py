"""What GET /metrics adds up at scrape time: the recorded metrics of every worker, and gauges read from the
database when asked (no background thread, so each scrape sees the database as it is then)."""

import logging
import os
from collections.abc import Iterator

from django.db import Error as DatabaseError
from django.utils import timezone
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from dpu.selectors import dpu_status_counts
from observability.selectors import pending_row_count

logger = logging.getLogger(__name__)


class DatabaseGauges:
    """Gauges read from the database at each scrape: pending occupancy rows, DPUs by status."""

    def collect(self) -> Iterator[Metric]:
        try:
            pending = pending_row_count()
            by_status = dpu_status_counts(now=timezone.now())
        except DatabaseError as exc:
            # The scrape still answers with every worker's counters; the gap in these gauges shows the outage.
            logger.warning("Metrics: the database gauges could not be read: %s", str(exc).strip())
            return
        yield GaugeMetricFamily(
            "occupancy_pending_rows", "Occupancy rows still pending: a late event may change them.", value=pending
        )
        dpus = GaugeMetricFamily("occupancy_dpus", "DPUs by health status.", labels=["status"])
        # Every status is a key, 0 when no DPU has it: a status going to 0 reads as 0, not as a series that vanished.
        for status, count in by_status.items():
            dpus.add_metric([status], count)
        yield dpus


class Scrape:
    """Everything one scrape reports, as one prometheus_client collector."""

    def __init__(self) -> None:
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        # Several workers: each one's files, added up. One process: its own registry, as recorded.
        self.recorded = MultiProcessCollector(None, path=directory) if directory else REGISTRY
        self.database = DatabaseGauges()

    def collect(self) -> Iterator[Metric]:
        yield from self.recorded.collect()
        yield from self.database.collect()


def exposition() -> bytes:
    """The metrics in Prometheus' text format, version 0.0.4."""
    return generate_latest(Scrape())
