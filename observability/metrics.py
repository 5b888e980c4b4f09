"""The service's Prometheus metrics, and the calls the rest of the code makes to record them.

Other apps call the functions below, never prometheus_client directly, so that what is measured has one place.
"""

from collections.abc import Iterable

from prometheus_client import Counter, Histogram

EVENTS = Counter("occupancy_events", "Events in POSTed batches, by outcome.", ["outcome"])
REFUSED = Counter("occupancy_items_refused", "Items of POSTed batches refused, by reason.", ["reason"])
LATENESS = Histogram(
    "occupancy_event_lateness_seconds",
    "How late stored events arrived: received_at - timestamp.",
    buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 7 * 24 * 3600),
)
ROWS_RECALCULATED = Histogram(
    "occupancy_rows_recalculated",
    "Occupancy rows a batch of events recalculated.",
    buckets=(0, 1, 10, 100, 1_000, 10_000, 100_000),
)

# Why an item of a batch is refused (REFUSED's label): the batch is refused whole.
REFUSAL_REASONS = ("unknown_dpu", "clock_ahead", "clock_before_2000", "invalid")


def events_ingested(
    *, received: int, created: int, duplicates: int, lateness_seconds: Iterable[float], rows_recalculated: int | None
) -> None:
    """Record a stored batch: how many events came, were new, were repeats; how late the new ones were."""
    EVENTS.labels("received").inc(received)
    EVENTS.labels("created").inc(created)
    EVENTS.labels("duplicate").inc(duplicates)
    for seconds in lateness_seconds:
        LATENESS.observe(seconds)
    if rows_recalculated is not None:
        ROWS_RECALCULATED.observe(rows_recalculated)


def item_refused(*, reason: str) -> None:
    """Record a refused item (and with it its batch), by one of REFUSAL_REASONS."""
    if reason not in REFUSAL_REASONS:
        raise ValueError(f"unknown refusal reason {reason!r}")
    REFUSED.labels(reason).inc()
