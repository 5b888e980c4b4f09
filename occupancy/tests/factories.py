"""Test building blocks for counting: the FLOORPLAN.md building, events at fixed instants, and row snapshots."""

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

from django.conf import settings

from dpu.models import Dpu
from dpu.services import EventIn
from dpu.tests.factories import DpuAssignmentFactory, DpuFactory
from occupancy.models import SpaceOccupancy
from spaces.models import Doorway, Space
from spaces.tests.factories import DoorwayFactory, SpaceFactory

# Every instant in the tests is an offset from T0 (the day the sample data starts). Services get an explicit
# `now`: NOW is a day after T0, so rows of events near T0 are long past the one-hour settle age.
T0 = datetime(2018, 2, 24, 8, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=1)
INSTALLED = datetime(2000, 1, 1, tzinfo=UTC)
SAMPLE_CSV = Path(settings.BASE_DIR) / "fixtures" / "dpu_data.csv"


def at(seconds: float) -> datetime:
    """The instant `seconds` after T0."""
    return T0 + timedelta(seconds=seconds)


def event(dpu: Dpu, seconds: float, direction: int = 1) -> EventIn:
    """An event of `dpu` at `seconds` after T0."""
    return EventIn(serial=dpu.serial, timestamp=at(seconds), direction=direction)


@dataclass(frozen=True)
class Floorplan:
    """FLOORPLAN.md: doorway X joins outside and A (DPU 283), doorway Z joins B and A (DPU 423); a +1 enters A."""

    a: Space
    b: Space
    x: Doorway
    z: Doorway
    dpu_283: Dpu
    dpu_423: Dpu


def floorplan(*, b_allow_negative: bool = False) -> Floorplan:
    """The sample building, with both DPUs hanging since 2000 (before any event)."""
    a = SpaceFactory(name="A")
    b = SpaceFactory(name="B", allow_negative=b_allow_negative)
    x = DoorwayFactory(name="X", side_a=None, side_b=a)
    z = DoorwayFactory(name="Z", side_a=b, side_b=a)
    dpu_283, dpu_423 = DpuFactory(serial=283), DpuFactory(serial=423)
    DpuAssignmentFactory(dpu=dpu_283, doorway=x, enters=a, valid_from=INSTALLED)
    DpuAssignmentFactory(dpu=dpu_423, doorway=z, enters=a, valid_from=INSTALLED)
    return Floorplan(a=a, b=b, x=x, z=z, dpu_283=dpu_283, dpu_423=dpu_423)


def rows(space: Space | None = None) -> list[tuple]:
    """(space name, DPU serial, timestamp, delta, count) of every occupancy row, in row order.

    Natural keys only: ids differ between two ingests of the same events, the rows they describe must not.
    """
    queryset = SpaceOccupancy.objects.order_by("space__name", *SpaceOccupancy.ORDER)
    if space is not None:
        queryset = queryset.filter(space=space)
    return list(queryset.values_list("space__name", "dpu__serial", "timestamp", "delta", "count"))


def counts(space: Space) -> list[int]:
    """The count after each row of `space`, in row order."""
    return [count for *_, count in rows(space)]


def row_states(space: Space) -> dict[datetime, tuple]:
    """Each row of `space` by timestamp: (id, count, status, modified), what a rewrite would change."""
    return {
        timestamp: (pk, count, status, modified)
        for pk, timestamp, count, status, modified in SpaceOccupancy.objects.filter(space=space).values_list(
            "id", "timestamp", "count", "status", "modified"
        )
    }


def sample_events() -> list[EventIn]:
    """fixtures/dpu_data.csv as events, in file order (duplicates included)."""
    with SAMPLE_CSV.open(newline="") as handle:
        return [
            EventIn(
                serial=int(row["dpu_id"]),
                timestamp=datetime.fromisoformat(row["timestamp"]),
                direction=int(row["direction"]),
            )
            for row in csv.DictReader(handle)
        ]


@contextmanager
def clock(instant: datetime) -> Iterator[None]:
    """django.utils.timezone.now() is `instant`: what the API calls now, and the reset rules' clock."""
    with mock.patch("django.utils.timezone.now", return_value=instant):
        yield
