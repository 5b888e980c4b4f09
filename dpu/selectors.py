"""Reading DPUs and their assignments."""

from django.db.models import QuerySet
from django.http import Http404

from dpu.models import SERIAL_MAX, Dpu, DpuAssignment


def dpu_get(*, serial: int) -> Dpu:
    """The DPU with that serial, or Http404."""
    # A serial beyond what the column holds is no DPU, not a database error.
    dpu = Dpu.objects.filter(serial=serial).first() if 0 < serial <= SERIAL_MAX else None
    if dpu is None:
        raise Http404  # no message: the API answers {"detail": "Not found."}
    return dpu


def dpu_list() -> QuerySet[Dpu]:
    return Dpu.objects.order_by("serial")


def assignment_list(*, dpu: Dpu) -> QuerySet[DpuAssignment]:
    """The DPU's assignments, oldest first."""
    return DpuAssignment.objects.filter(dpu=dpu).select_related("dpu").order_by("valid_from")
