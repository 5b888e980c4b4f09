"""Layout edits in the admin go through the services."""

from datetime import UTC, datetime

import pytest

from dpu.services import EventIn, event_ingest
from dpu.tests.factories import DpuAssignmentFactory
from occupancy.selectors import space_count_at
from spaces.models import Doorway, Space
from spaces.tests.factories import DoorwayFactory, SpaceFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2018, 3, 1, tzinfo=UTC)


@pytest.fixture
def admin_client_ada(client, django_user_model):
    """The Django test client signed in as Ada, a superuser."""
    ada = django_user_model.objects.create_superuser(username="ada", email="ada@example.com", password=None)
    client.force_login(ada)
    return client


# The management form of the resets inline, with no rows.
NO_RESETS = {"resets-TOTAL_FORMS": "0", "resets-INITIAL_FORMS": "0"}


def test_admin_allowing_negative_counts_recalculates_the_space(admin_client_ada):
    assignment = DpuAssignmentFactory(valid_from=datetime(2018, 1, 1, tzinfo=UTC))
    space = assignment.enters
    event_ingest(
        events=[EventIn(serial=assignment.dpu.serial, timestamp=datetime(2018, 2, 1, tzinfo=UTC), direction=-1)],
        now=NOW,
    )
    assert space_count_at(space=space, at=NOW, now=NOW).count == 0  # held at zero

    response = admin_client_ada.post(
        f"/admin/spaces/space/{space.pk}/change/",
        {"name": space.name, "allow_negative": "on", "time_zone": "UTC", **NO_RESETS},
    )

    assert response.status_code == 302
    assert Space.objects.get(pk=space.pk).allow_negative
    assert space_count_at(space=space, at=NOW, now=NOW).count == -1


def test_admin_list_shows_current_counts(admin_client_ada):
    assignment = DpuAssignmentFactory(valid_from=datetime(2018, 1, 1, tzinfo=UTC))
    event_ingest(
        events=[EventIn(serial=assignment.dpu.serial, timestamp=datetime(2018, 2, 1, tzinfo=UTC), direction=1)],
        now=NOW,
    )

    response = admin_client_ada.get("/admin/spaces/space/")

    assert response.status_code == 200
    assert '<td class="field-current_count">1</td>' in response.content.decode()


def test_admin_doorway_sides_are_read_only_once_a_dpu_counted_through_it(admin_client_ada):
    assignment = DpuAssignmentFactory()
    doorway = assignment.doorway
    elsewhere = SpaceFactory()

    admin_client_ada.post(
        f"/admin/spaces/doorway/{doorway.pk}/change/",
        {"name": "Renamed", "side_a": elsewhere.pk, "side_b": doorway.side_b_id},
    )

    doorway.refresh_from_db()
    assert doorway.name == "Renamed"
    assert doorway.side_a_id is None  # the side was not editable


def test_admin_doorway_without_assignments_can_change_sides(admin_client_ada):
    doorway = DoorwayFactory()
    elsewhere = SpaceFactory()

    response = admin_client_ada.post(
        f"/admin/spaces/doorway/{doorway.pk}/change/",
        {"name": doorway.name, "side_a": elsewhere.pk, "side_b": doorway.side_b_id},
    )

    assert response.status_code == 302
    assert Doorway.objects.get(pk=doorway.pk).side_a_id == elsewhere.pk


def test_admin_refuses_a_doorway_from_a_space_into_itself(admin_client_ada):
    space = SpaceFactory()

    response = admin_client_ada.post(
        "/admin/spaces/doorway/add/", {"name": "Loop", "side_a": space.pk, "side_b": space.pk}
    )

    assert response.status_code == 200
    assert "must join two different sides" in response.content.decode()
    assert not Doorway.objects.filter(name="Loop").exists()
