"""Arrival order never changes the result: any permutation and batching of the same events gives the same rows."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dpu.models import Dpu
from dpu.services import EventIn, event_ingest
from dpu.tests.factories import DpuAssignmentFactory, DpuFactory
from occupancy.selectors import space_count_at
from occupancy.tests.factories import INSTALLED, NOW, T0, at, floorplan, rows, sample_events
from spaces.tests.factories import DoorwayFactory, SpaceFactory

pytestmark = pytest.mark.django_db

# The building of the property test, as plain data for the reference model. Each DPU's assignments are
# (valid_from, valid_to, the side a +1 enters, the other side), None being outside:
# - 283 watches X (outside -> A) until T0+8s, then W (outside -> B);
# - 423 watches Z (B -> A) all along;
# - 512 is hung over Y facing outside only at T0+4s: its earlier events count nowhere.
# A is held at zero, B may go negative.
ASSIGNMENTS = {
    283: [(INSTALLED, at(8), "A", None), (at(8), None, "B", None)],
    423: [(INSTALLED, None, "A", "B")],
    512: [(at(4), None, None, "B")],
}
ALLOW_NEGATIVE = {"A": False, "B": True}


@pytest.fixture
def building() -> None:
    a, b = SpaceFactory(name="A"), SpaceFactory(name="B", allow_negative=True)
    x = DoorwayFactory(name="X", side_a=None, side_b=a)
    w = DoorwayFactory(name="W", side_a=None, side_b=b)
    z = DoorwayFactory(name="Z", side_a=b, side_b=a)
    y = DoorwayFactory(name="Y", side_a=None, side_b=b)
    dpu_283, dpu_423, dpu_512 = (DpuFactory(serial=serial) for serial in sorted(ASSIGNMENTS))
    DpuAssignmentFactory(dpu=dpu_283, doorway=x, enters=a, valid_from=INSTALLED, valid_to=at(8))
    DpuAssignmentFactory(dpu=dpu_283, doorway=w, enters=b, valid_from=at(8))
    DpuAssignmentFactory(dpu=dpu_423, doorway=z, enters=a, valid_from=INSTALLED)
    DpuAssignmentFactory(dpu=dpu_512, doorway=y, enters=None, valid_from=at(4))
    # Rows tie-break on the DPU's id; the reference model breaks ties on the serial. Same order, by construction.
    assert list(Dpu.objects.order_by("id").values_list("serial", flat=True)) == sorted(ASSIGNMENTS)


def reference_rows(events: list[EventIn]) -> list[tuple]:
    """The rows the rules ask for, computed without the database: (space, serial, timestamp, delta, count)."""
    unique = {
        (e.serial, e.timestamp.replace(microsecond=e.timestamp.microsecond // 1000 * 1000), e.direction) for e in events
    }
    changes: dict[str, list] = {"A": [], "B": []}
    for serial, timestamp, direction in unique:
        for start, end, enters, other in ASSIGNMENTS[serial]:
            if start <= timestamp and (end is None or timestamp < end):
                for space, delta in ((enters, direction), (other, -direction)):
                    if space:
                        changes[space].append((timestamp, delta, serial))
    expected = []
    for space in sorted(changes):
        count = 0
        for timestamp, delta, serial in sorted(changes[space], key=lambda c: (c[0], -c[1], c[2])):
            count += delta
            if count < 0 and not ALLOW_NEGATIVE[space]:
                count = 0
            expected.append((space, serial, timestamp, delta, count))
    return expected


# Few distinct instants so that ties, same-instant increments and decrements, and exact re-sends are common;
# the microseconds are below the millisecond events are compared at, so they make re-sends too.
EVENTS = st.lists(
    st.builds(
        lambda serial, second, millisecond, microsecond, direction: EventIn(
            serial=serial,
            timestamp=T0 + timedelta(seconds=second, milliseconds=millisecond, microseconds=microsecond),
            direction=direction,
        ),
        st.sampled_from(sorted(ASSIGNMENTS)),
        st.integers(0, 11),
        st.integers(0, 1),
        st.integers(0, 999),
        st.sampled_from([1, -1]),
    ),
    max_size=20,
)


def _ingested(batches: list[list[EventIn]]) -> list[tuple]:
    """The rows after ingesting `batches` one call each, on a database left as it was found."""
    with transaction.atomic():
        for batch in batches:
            event_ingest(events=batch, now=NOW)
        result = rows()
        transaction.set_rollback(True)  # the next ingest (and the next example) starts from no events
    return result


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=EVENTS, data=st.data())
def test_any_arrival_order_and_batching_gives_the_same_rows(building, events, data):
    order = data.draw(st.permutations(events), label="arrival order")
    cuts = data.draw(st.sets(st.integers(1, len(order) - 1)) if len(order) > 1 else st.just(set()), label="cuts")
    resent = data.draw(st.lists(st.sampled_from(events), max_size=4) if events else st.just([]), label="re-sent")
    bounds = [0, *sorted(cuts), len(order)]
    shuffled_batches = [order[i:j] for i, j in zip(bounds, bounds[1:], strict=False) if i < j]
    in_order_batches = [[e] for e in sorted(events, key=lambda e: e.timestamp)]

    expected = reference_rows(events)

    assert _ingested(in_order_batches) == expected
    assert _ingested(shuffled_batches + ([resent] if resent else [])) == expected


def test_sample_data_in_any_order_gives_the_same_rows_and_the_published_counts():
    plan = floorplan()
    events = sample_events()
    shuffled = events[:]
    random.Random(2018).shuffle(shuffled)
    batches = [shuffled[i : i + 150] for i in range(0, len(shuffled), 150)]

    in_file_order = _ingested([events])
    with transaction.atomic():
        for batch in [*batches, batches[0]]:  # the first batch is sent twice
            event_ingest(events=batch, now=NOW)
        assert rows() == in_file_order
        assert space_count_at(space=plan.a, at=datetime(2018, 2, 26, 16, 8, 2, 170000, tzinfo=UTC), now=NOW).count == 3
        assert space_count_at(space=plan.a, at=datetime(2018, 3, 3, tzinfo=UTC), now=NOW).count == 4
