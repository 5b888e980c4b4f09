"""occupancy_rows_recalculated: what a batch of events cost in rows already stored."""

import pytest
from prometheus_client import REGISTRY

from dpu.services import event_ingest
from occupancy.tests.factories import NOW, event, floorplan

pytestmark = pytest.mark.django_db


def observed() -> tuple[float, float]:
    """(batches observed, rows recounted in all of them) so far."""
    count = REGISTRY.get_sample_value("occupancy_rows_recalculated_count") or 0
    total = REGISTRY.get_sample_value("occupancy_rows_recalculated_sum") or 0
    return count, total


def test_an_in_order_batch_recounts_no_stored_row_and_a_late_one_recounts_the_rows_after_it():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, s) for s in (10, 20, 30)], now=NOW)
    start = observed()

    event_ingest(events=[event(plan.dpu_283, 40)], now=NOW)  # after everything: appended
    appended = observed()
    event_ingest(events=[event(plan.dpu_283, 5)], now=NOW)  # before the three A rows (and the one at 40)
    late = observed()

    assert (appended[0] - start[0], appended[1] - start[1]) == (1, 0)
    assert (late[0] - appended[0], late[1] - appended[1]) == (1, 4)
