"""The admin changes assignments through the same services as the API, so counts follow."""

from datetime import UTC, datetime

import pytest

from dpu.models import DpuAssignment, DpuEvent
from dpu.services import EventIn, event_ingest
from dpu.tests.factories import DpuAssignmentFactory
from occupancy.selectors import space_count_at
from spaces.tests.factories import DoorwayFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2018, 3, 1, tzinfo=UTC)


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2018, 2, 24, hour, minute, tzinfo=UTC)


@pytest.fixture
def admin_client_ada(client, django_user_model):
    """The Django test client signed in as Ada, a superuser."""
    ada = django_user_model.objects.create_superuser(username="ada", email="ada@example.com", password=None)
    client.force_login(ada)
    return client


def _formset_row(prefix: str, assignment: DpuAssignment | None, doorway, enters, valid_from, valid_to=None) -> dict:
    return {
        f"{prefix}-id": assignment.pk if assignment else "",
        f"{prefix}-dpu": assignment.dpu_id if assignment else "",
        f"{prefix}-doorway": doorway.pk,
        f"{prefix}-enters": enters.pk if enters else "",
        f"{prefix}-valid_from_0": valid_from.strftime("%Y-%m-%d"),
        f"{prefix}-valid_from_1": valid_from.strftime("%H:%M:%S"),
        f"{prefix}-valid_to_0": valid_to.strftime("%Y-%m-%d") if valid_to else "",
        f"{prefix}-valid_to_1": valid_to.strftime("%H:%M:%S") if valid_to else "",
    }


def _change_form(dpu, rows: list[dict], initial: int) -> dict:
    data = {
        "serial": dpu.serial,
        "assignments-TOTAL_FORMS": len(rows),
        "assignments-INITIAL_FORMS": initial,
        "assignments-MIN_NUM_FORMS": 0,
        "assignments-MAX_NUM_FORMS": 1000,
    }
    for row in rows:
        data.update(row)
    return data


def test_admin_new_assignment_row_moves_the_dpu_and_recalculates(admin_client_ada):
    current = DpuAssignmentFactory(valid_from=at(0))
    dpu, space_a = current.dpu, current.enters
    other = DoorwayFactory()
    event_ingest(events=[EventIn(serial=dpu.serial, timestamp=at(h), direction=1) for h in (10, 12)], now=NOW)

    response = admin_client_ada.post(
        f"/admin/dpu/dpu/{dpu.pk}/change/",
        _change_form(
            dpu,
            [
                _formset_row("assignments-0", current, current.doorway, space_a, at(0)),
                _formset_row("assignments-1", None, other, other.side_b, at(11)),
            ],
            initial=1,
        ),
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    current.refresh_from_db()
    assert current.valid_to == at(11)
    assert space_count_at(space=space_a, at=at(23), now=NOW).count == 1  # only the 10:00 event
    assert space_count_at(space=other.side_b, at=at(23), now=NOW).count == 1  # the 12:00 event moved here


def test_admin_overlapping_edit_is_refused_and_changes_nothing(admin_client_ada):
    first = DpuAssignmentFactory(valid_from=at(0), valid_to=at(12))
    second = DpuAssignmentFactory(dpu=first.dpu, doorway=first.doorway, valid_from=at(12))
    event_ingest(events=[EventIn(serial=first.dpu.serial, timestamp=at(13), direction=1)], now=NOW)

    response = admin_client_ada.post(
        f"/admin/dpu/dpu/{first.dpu.pk}/change/",
        _change_form(
            first.dpu,
            [
                _formset_row("assignments-0", first, first.doorway, first.enters, at(0), at(14)),
                _formset_row("assignments-1", second, second.doorway, second.enters, at(12)),
            ],
            initial=2,
        ),
    )

    assert response.status_code == 200
    assert "already has an assignment during that time" in response.content.decode()
    first.refresh_from_db()
    assert first.valid_to == at(12)
    assert space_count_at(space=first.enters, at=at(23), now=NOW).count == 1


def test_admin_deleting_an_assignment_uncounts_its_events(admin_client_ada):
    assignment = DpuAssignmentFactory(valid_from=at(0))
    event_ingest(events=[EventIn(serial=assignment.dpu.serial, timestamp=at(10), direction=1)], now=NOW)
    row = _formset_row("assignments-0", assignment, assignment.doorway, assignment.enters, at(0))
    row["assignments-0-DELETE"] = "on"

    response = admin_client_ada.post(
        f"/admin/dpu/dpu/{assignment.dpu.pk}/change/", _change_form(assignment.dpu, [row], initial=1)
    )

    assert response.status_code == 302
    assert not DpuAssignment.objects.exists()
    assert DpuEvent.objects.count() == 1  # the raw log keeps the event
    assert space_count_at(space=assignment.enters, at=at(23), now=NOW).count == 0


def test_admin_event_log_is_read_only(admin_client_ada):
    assignment = DpuAssignmentFactory(valid_from=at(0))
    event_ingest(events=[EventIn(serial=assignment.dpu.serial, timestamp=at(10), direction=1)], now=NOW)
    event = DpuEvent.objects.get()

    assert admin_client_ada.get("/admin/dpu/dpuevent/").status_code == 200
    assert admin_client_ada.get("/admin/dpu/dpuevent/add/").status_code == 403
    assert admin_client_ada.post(f"/admin/dpu/dpuevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert DpuEvent.objects.filter(pk=event.pk).exists()
