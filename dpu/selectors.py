"""Reading DPUs, their assignments, the events they sent, and their health."""

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, Sum
from django.http import Http404

from config.paging import Page, PageRequest, keyset_page
from dpu.models import (
    SERIAL_MAX,
    STATS_HOURS,
    Dpu,
    DpuAssignment,
    DpuClockRefusal,
    DpuEvent,
    DpuHourStat,
    lateness_bin_upper,
)

# The event log's order, and its cursors' key: (timestamp, id) is unique, so no row is on two pages or on none.
EVENT_ORDER = ("timestamp", "id")
EVENT_KEY = (datetime, int)
# The other lists' orders and keys, each unique: the serial alone, an assignment's start then its id.
DPU_ORDER, DPU_KEY = ("serial",), (int,)
ASSIGNMENT_ORDER, ASSIGNMENT_KEY = ("valid_from", "id"), (datetime, int)


def dpu_get(*, serial: int) -> Dpu:
    """The DPU with that serial, or Http404."""
    # A serial beyond what the column holds is no DPU, not a database error.
    dpu = Dpu.objects.filter(serial=serial).first() if 0 < serial <= SERIAL_MAX else None
    if dpu is None:
        raise Http404  # no message: the API answers {"detail": "Not found."}
    return dpu


def dpu_list(*, page: PageRequest) -> Page:
    """One page of the DPUs, by serial."""
    return keyset_page(Dpu.objects.all(), fields=DPU_ORDER, page=page)


def assignment_list(*, dpu: Dpu, page: PageRequest) -> Page:
    """One page of the DPU's assignments, oldest first."""
    return keyset_page(DpuAssignment.objects.filter(dpu=dpu).select_related("dpu"), fields=ASSIGNMENT_ORDER, page=page)


def assignment_current(*, dpu: Dpu, at: datetime) -> DpuAssignment | None:
    """The assignment covering `at`, None when the DPU hangs nowhere then."""
    return (
        DpuAssignment.objects.filter(dpu=dpu, valid_from__lte=at)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=at))
        .select_related("dpu")
        .first()
    )


def assignment_get(*, dpu: Dpu, assignment_id: int) -> DpuAssignment:
    """The DPU's assignment with that id, or Http404 (also when it is another DPU's)."""
    found = None
    if 0 < assignment_id <= SERIAL_MAX:
        found = DpuAssignment.objects.filter(dpu=dpu, pk=assignment_id).select_related("dpu", "doorway").first()
    if found is None:
        raise Http404
    return found


def event_list(*, dpu: Dpu, start: datetime | None, end: datetime | None, page: PageRequest) -> Page:
    """One page of the DPU's raw events with timestamps in [start, end), in (timestamp, id) order."""
    events = DpuEvent.objects.filter(dpu=dpu)
    if start is not None:
        events = events.filter(timestamp__gte=start)
    if end is not None:
        events = events.filter(timestamp__lt=end)
    return keyset_page(events.select_related("dpu"), fields=EVENT_ORDER, page=page)


# A DPU's health, worst first: the order of the fleet page and of `manage.py dpu_health`. Silent first: it reported
# and stopped, the one that makes `dpu_health` fail. Then never seen (registered, never reported), unassigned
# (counting nowhere), ok.
STATUSES = ("silent", "never_seen", "unassigned", "ok")


def dpu_status(*, last_received_at: datetime | None, assigned: bool, now: datetime) -> str:
    """One of STATUSES. A DPU that never sent an event is `never_seen`, whatever else; one that no assignment
    covers now is `unassigned` (a retired DPU is expected to be quiet, so it is not called silent); one whose
    latest event was stored longer than DPU_SILENT_AFTER ago is `silent`; the rest are `ok`."""
    if last_received_at is None:
        return "never_seen"
    if not assigned:
        return "unassigned"
    if now - last_received_at > settings.DPU_SILENT_AFTER:
        return "silent"
    return "ok"


@dataclass(frozen=True)
class DpuHealth:
    """How a DPU is doing at `now`: what dpu_health reads for one DPU."""

    dpu: Dpu
    status: str
    assignment: DpuAssignment | None  # the one covering now (with its doorway), None when none does
    events_24h: int  # events stored in the current hour and the 24 before it (duplicates not counted)
    lateness_p95_s: int | None  # over those; None when there are none
    refusals: dict[str, DpuClockRefusal] = field(default_factory=dict)  # by reason, only the reasons it had

    @property
    def serial(self) -> int:
        return self.dpu.serial

    @property
    def last_event_at(self) -> datetime | None:
        return self.dpu.last_event_at

    @property
    def last_received_at(self) -> datetime | None:
        return self.dpu.last_received_at

    @property
    def assigned(self) -> bool:
        return self.assignment is not None

    @property
    def doorway(self):
        return self.assignment.doorway if self.assignment else None

    @property
    def refused_clock_ahead(self) -> int:
        refusal = self.refusals.get(DpuClockRefusal.Reason.CLOCK_AHEAD)
        return refusal.count if refusal else 0

    @property
    def refused_clock_before_2000(self) -> int:
        refusal = self.refusals.get(DpuClockRefusal.Reason.CLOCK_BEFORE_2000)
        return refusal.count if refusal else 0

    @property
    def last_refusal(self) -> DpuClockRefusal | None:
        """The latest item refused for its clock, of either reason."""
        return max(self.refusals.values(), key=lambda refusal: refusal.last_refused_at, default=None)


def stats_window_start(now: datetime) -> datetime:
    """The first hour whose statistics count towards "the last 24 hours": the current hour and the 24 before it."""
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=STATS_HOURS)


def lateness_percentile(histogram: dict[int, int], fraction: float) -> int | None:
    """The nearest-rank percentile of a lateness histogram (bin -> events), as its bin's upper edge in seconds."""
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = math.ceil(fraction * total), 0
    for bin_ in sorted(histogram):
        seen += histogram[bin_]
        if seen >= rank:
            return lateness_bin_upper(bin_)
    raise AssertionError("unreachable: the ranks add up to the total")


def dpu_health(*, dpus: Iterable[Dpu], now: datetime) -> list[DpuHealth]:
    """The health of each of `dpus` at `now`, in their order.

    Three queries whatever their number: the assignments covering now, the hourly statistics of the last 24 hours
    (at most 25 hours x 27 bins a DPU, summed by the database), and the clock refusals. The event log is not read:
    the last event and receipt are the DPU's own fields, which event_ingest keeps.
    """
    dpus = list(dpus)
    ids = [dpu.pk for dpu in dpus]
    covering = (
        DpuAssignment.objects.filter(dpu_id__in=ids, valid_from__lte=now)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=now))
        .select_related("dpu", "doorway")
    )
    assignments = {assignment.dpu_id: assignment for assignment in covering}
    histograms: dict[int, dict[int, int]] = defaultdict(dict)
    stats = (
        DpuHourStat.objects.filter(dpu_id__in=ids, hour__gte=stats_window_start(now))
        .values_list("dpu_id", "bin")
        .annotate(events=Sum("n"))
        .order_by()
    )
    for dpu_id, bin_, events in stats:
        histograms[dpu_id][bin_] = events
    refusals: dict[int, dict[str, DpuClockRefusal]] = defaultdict(dict)
    for refusal in DpuClockRefusal.objects.filter(dpu_id__in=ids):
        refusals[refusal.dpu_id][refusal.reason] = refusal
    found = []
    for dpu in dpus:
        assignment, histogram = assignments.get(dpu.pk), histograms.get(dpu.pk, {})
        found.append(
            DpuHealth(
                dpu=dpu,
                status=dpu_status(last_received_at=dpu.last_received_at, assigned=assignment is not None, now=now),
                assignment=assignment,
                events_24h=sum(histogram.values()),
                lateness_p95_s=lateness_percentile(histogram, 0.95),
                refusals=refusals.get(dpu.pk, {}),
            )
        )
    return found


def worst_first(health: DpuHealth) -> tuple:
    """The sort key of the fleet: by status (STATUSES), then the oldest last report first, then by serial."""
    received = health.last_received_at or datetime.min.replace(tzinfo=UTC)
    return STATUSES.index(health.status), received, health.serial


def dpu_health_fleet(*, now: datetime) -> list[DpuHealth]:
    """Every DPU's health, worst first (worst_first): the fleet page and `manage.py dpu_health`."""
    return sorted(dpu_health(dpus=Dpu.objects.all(), now=now), key=worst_first)


def dpu_status_counts(*, now: datetime) -> dict[str, int]:
    """How many DPUs have each status at `now`; every status is a key, 0 when none has it. One query."""
    covering = DpuAssignment.objects.filter(dpu=OuterRef("pk"), valid_from__lte=now).filter(
        Q(valid_to__isnull=True) | Q(valid_to__gt=now)
    )
    counts = dict.fromkeys(STATUSES, 0)
    for last_received_at, assigned in Dpu.objects.annotate(assigned=Exists(covering)).values_list(
        "last_received_at", "assigned"
    ):
        counts[dpu_status(last_received_at=last_received_at, assigned=assigned, now=now)] += 1
    return counts
