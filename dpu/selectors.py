"""Reading DPUs and their assignments."""

from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from dpu.models import SERIAL_MAX, Dpu, DpuAssignment


def dpu_get(*, serial: int) -> Dpu:
    """The DPU with that serial, or Http404."""
    if not 0 < serial <= SERIAL_MAX:  # beyond what the column holds: no such DPU, not a database error
        raise Http404
    return get_object_or_404(Dpu, serial=serial)


def dpu_list() -> QuerySet[Dpu]:
    return Dpu.objects.order_by("serial")


def assignment_list(*, dpu: Dpu) -> QuerySet[DpuAssignment]:
    """The DPU's assignments, oldest first."""
    return DpuAssignment.objects.filter(dpu=dpu).select_related("dpu").order_by("valid_from")
