"""Reading DPUs, their assignments and the events they sent."""

from datetime import datetime

from django.db.models import Q
from django.http import Http404

from config.paging import Page, PageRequest, keyset_page
from dpu.models import SERIAL_MAX, Dpu, DpuAssignment, DpuEvent

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
