"""The service's Prometheus metrics, and the calls the rest of the code makes to record them.

Other apps call the functions below, never prometheus_client directly, so that what is measured has one place.

Under gunicorn with several workers every worker counts in files of its own in PROMETHEUS_MULTIPROC_DIR (see
config/gunicorn.py), and GET /metrics adds them up; prometheus_client picks that mode when it is imported, so the
variable must be set before then. Without it (`make run`, the tests) the metrics live in this process.
"""

from collections.abc import Iterable
from functools import cache

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

EVENTS = Counter("occupancy_events", "Events in POSTed batches, by outcome.", ["outcome"])
REFUSED = Counter("occupancy_items_refused", "Items of POSTed batches refused, by reason.", ["reason"])
LATENESS = Histogram(
    "occupancy_event_lateness_seconds",
    "How late stored events arrived: received_at - timestamp.",
    buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 7 * 24 * 3600),
)
ROWS_RECALCULATED = Histogram(
    "occupancy_rows_recalculated",
    "Occupancy rows already stored whose count a batch of events recounted: 0 when every event of the batch came "
    "after everything else in its spaces, more the earlier a late event lands.",
    buckets=(0, 1, 10, 100, 1_000, 10_000, 100_000),
)

# Why an item of a batch is refused (REFUSED's label): the batch is refused whole.
REFUSAL_REASONS = ("unknown_dpu", "clock_ahead", "clock_before_2000", "invalid", "archived")

# Requests by endpoint: the URL pattern's route (/space/{space_id}/counts), never the path itself, whose ids would
# make a new series per space. Paths no pattern matches share UNMATCHED.
REQUESTS = Counter(
    "http_requests",
    "HTTP requests answered, by endpoint (URL pattern), method and status.",
    ["endpoint", "method", "status"],
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from the request reaching Django to its response, by endpoint (URL pattern), method and status.",
    ["endpoint", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
UNMATCHED = "unmatched"

# livesum: under several workers, the sum over the workers alive now; a worker that dies takes its clients with it
# (config/gunicorn.py's child_exit removes its file).
STREAM_CLIENTS = Gauge(
    "occupancy_stream_clients", "Server-Sent Events clients connected now.", multiprocess_mode="livesum"
)


def events_ingested(*, received: int, created: int, duplicates: int, lateness_seconds: Iterable[float]) -> None:
    """Record a stored batch: how many events came, were new, were repeats; how late the new ones were."""
    _series(EVENTS, "received").inc(received)
    _series(EVENTS, "created").inc(created)
    _series(EVENTS, "duplicate").inc(duplicates)
    for seconds in lateness_seconds:
        LATENESS.observe(seconds)


def rows_recalculated(*, rows: int) -> None:
    """Record how many stored rows a batch of new events recounted (occupancy_recalculate calls this)."""
    ROWS_RECALCULATED.observe(rows)


def item_refused(*, reason: str) -> None:
    """Record a refused item (and with it its batch), by one of REFUSAL_REASONS."""
    if reason not in REFUSAL_REASONS:
        raise ValueError(f"unknown refusal reason {reason!r}")
    REFUSED.labels(reason).inc()


def request_answered(*, endpoint: str, method: str, status: int, seconds: float) -> None:
    """Record an answered HTTP request (observability.middleware calls this for every request)."""
    labels = (endpoint, method, str(status))
    _series(REQUESTS, *labels).inc()
    _series(LATENCY, *labels).observe(seconds)


@cache
def _series(metric: MetricWrapperBase, *labels: str) -> MetricWrapperBase:
    """metric.labels(*labels), looked up once: prometheus_client checks the labels and takes a lock on every call,
    and these run on every request. Bounded like the metric's own series, which it returns (so a series appears in
    the metrics only once something is recorded in it, as before)."""
    return metric.labels(*labels)


def stream_client_connected() -> None:
    """Record a Server-Sent Events client connecting; call stream_client_disconnected() when it goes, however."""
    STREAM_CLIENTS.inc()


def stream_client_disconnected() -> None:
    """Record a Server-Sent Events client going (closed, timed out, or failed)."""
    STREAM_CLIENTS.dec()
