"""The resets inline of the Space change page: resets added and deleted there go through reset_create and
reset_delete (which recalculate the space), are made by the signed-in admin, and refuse what the API refuses."""

from datetime import time

import pytest
from django.db import connection

from dpu.services import event_ingest
from history.partitions import Month
from history.services import history_archive
from occupancy.models import OccupancyReset, SpaceOccupancy
from occupancy.selectors import space_count_at
from occupancy.services import reset_create
from occupancy.tests.factories import NOW, at, event, floorplan
from spaces.models import Space

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_ada(client, django_user_model):
    """The Django test client signed in as Ada, a superuser."""
    ada = django_user_model.objects.create_superuser(username="ada", email="ada@example.com", password=None)
    client.force_login(ada)
    return client


@pytest.fixture
def plan():
    """FLOORPLAN.md's building (B may go negative). Through X at 08:00:00, :10 and :20 three come into A, and at
    08:01:40 one leaves: A holds 3, then 2."""
    plan = floorplan(b_allow_negative=True)
    event_ingest(
        events=[event(plan.dpu_283, 0), event(plan.dpu_283, 10), event(plan.dpu_283, 20), event(plan.dpu_283, 100, -1)],
        now=NOW,
    )
    return plan


def database_state() -> dict:
    """What a refused form must leave as it was: every space's settings, every reset, every occupancy row."""
    return {
        "spaces": list(
            Space.objects.order_by("id").values_list("id", "name", "allow_negative", "time_zone", "daily_reset")
        ),
        "resets": list(OccupancyReset.objects.order_by("id").values_list("id", "space_id", "timestamp", "count")),
        "occupancy": list(
            SpaceOccupancy.objects.order_by("id").values_list("id", "space_id", "timestamp", "count", "modified")
        ),
    }


def settings_form(space: Space, **changes) -> dict:
    """The space's own fields as the change form posts them."""
    fields = {
        "name": space.name,
        "time_zone": space.time_zone,
        "capacity": "" if space.capacity is None else str(space.capacity),
        "daily_reset": "" if space.daily_reset is None else space.daily_reset.strftime("%H:%M:%S"),
    }
    if space.allow_negative:
        fields["allow_negative"] = "on"
    fields.update(changes)
    return {key: value for key, value in fields.items() if value is not None}


def resets_form(space: Space, *, existing=(), delete=(), new=()) -> dict:
    """The resets inline's management form and rows: `existing` resets (deleted when in `delete`), then `new` ones
    as (date, time, count) in UTC, the admin's time zone."""
    data = {
        "resets-TOTAL_FORMS": str(len(existing) + len(new)),
        "resets-INITIAL_FORMS": str(len(existing)),
        "resets-MIN_NUM_FORMS": "0",
        "resets-MAX_NUM_FORMS": "1000",
    }
    for index, reset in enumerate(existing):
        data |= {f"resets-{index}-id": str(reset.pk), f"resets-{index}-space": str(space.pk)}
        if reset in delete:
            data[f"resets-{index}-DELETE"] = "on"
    for index, (day, clock, count) in enumerate(new, start=len(existing)):
        data |= {
            f"resets-{index}-space": str(space.pk),
            f"resets-{index}-timestamp_0": day,
            f"resets-{index}-timestamp_1": clock,
            f"resets-{index}-count": str(count),
        }
    return data


def change(client, space: Space, data: dict):
    return client.post(f"/admin/spaces/space/{space.pk}/change/", data)


def test_the_change_page_lists_the_spaces_resets(admin_client_ada, plan):
    reset_create(space=plan.a, timestamp=at(50), count=10, now=NOW)

    response = admin_client_ada.get(f"/admin/spaces/space/{plan.a.pk}/change/")

    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="resets-TOTAL_FORMS"' in page
    assert 'name="resets-INITIAL_FORMS" value="1"' in page


def test_admin_adds_a_reset_and_the_space_is_recalculated(admin_client_ada, plan, django_user_model):
    response = change(
        admin_client_ada, plan.a, settings_form(plan.a) | resets_form(plan.a, new=[("2018-02-24", "08:00:50", 10)])
    )

    assert response.status_code == 302
    reset = OccupancyReset.objects.get()
    assert (reset.space_id, reset.timestamp, reset.count) == (plan.a.pk, at(50), 10)
    assert reset.created_by == django_user_model.objects.get(username="ada")
    assert space_count_at(space=plan.a, at=at(49), now=NOW).count == 3
    assert space_count_at(space=plan.a, at=at(50), now=NOW).count == 10
    assert space_count_at(space=plan.a, at=at(100), now=NOW).count == 9


def test_admin_deletes_a_reset_and_the_space_is_recalculated(admin_client_ada, plan):
    reset = reset_create(space=plan.a, timestamp=at(50), count=10, now=NOW)
    assert space_count_at(space=plan.a, at=at(100), now=NOW).count == 9

    response = change(
        admin_client_ada, plan.a, settings_form(plan.a) | resets_form(plan.a, existing=[reset], delete=[reset])
    )

    assert response.status_code == 302
    assert not OccupancyReset.objects.exists()
    assert not SpaceOccupancy.objects.filter(kind=SpaceOccupancy.Kind.RESET).exists()
    assert space_count_at(space=plan.a, at=at(50), now=NOW).count == 3
    assert space_count_at(space=plan.a, at=at(100), now=NOW).count == 2


def test_admin_adds_one_reset_and_deletes_another_in_one_save(admin_client_ada, plan):
    old = reset_create(space=plan.a, timestamp=at(5), count=7, now=NOW)

    response = change(
        admin_client_ada,
        plan.a,
        settings_form(plan.a) | resets_form(plan.a, existing=[old], delete=[old], new=[("2018-02-24", "08:00:50", 10)]),
    )

    assert response.status_code == 302
    assert list(OccupancyReset.objects.values_list("timestamp", "count")) == [(at(50), 10)]
    assert space_count_at(space=plan.a, at=at(20), now=NOW).count == 3
    assert space_count_at(space=plan.a, at=at(100), now=NOW).count == 9


def test_admin_keeps_an_existing_reset_it_was_not_asked_to_change(admin_client_ada, plan):
    reset = reset_create(space=plan.a, timestamp=at(50), count=10, now=NOW)
    before = database_state()

    response = change(admin_client_ada, plan.a, settings_form(plan.a) | resets_form(plan.a, existing=[reset]))

    assert response.status_code == 302
    assert database_state() == before


def test_admin_refuses_a_negative_reset_of_a_space_that_does_not_allow_negative(admin_client_ada, plan):
    before = database_state()

    response = change(
        admin_client_ada, plan.a, settings_form(plan.a) | resets_form(plan.a, new=[("2018-02-24", "08:00:50", -1)])
    )

    assert response.status_code == 200  # the form again, with the error
    assert "must be 0 or more" in response.content.decode()
    assert database_state() == before


def test_admin_accepts_a_negative_reset_of_a_space_that_allows_negative(admin_client_ada, plan):
    response = change(
        admin_client_ada, plan.b, settings_form(plan.b) | resets_form(plan.b, new=[("2018-02-24", "08:00:50", -2)])
    )

    assert response.status_code == 302
    assert space_count_at(space=plan.b, at=at(50), now=NOW).count == -2


def test_admin_refuses_a_reset_before_2000(admin_client_ada, plan):
    before = database_state()

    response = change(
        admin_client_ada, plan.a, settings_form(plan.a) | resets_form(plan.a, new=[("1999-12-31", "23:59:59", 1)])
    )

    assert response.status_code == 200
    assert "before 2000-01-01" in response.content.decode()
    assert database_state() == before


def test_admin_refuses_a_second_reset_at_the_same_instant(admin_client_ada, plan):
    reset = reset_create(space=plan.a, timestamp=at(50), count=10, now=NOW)
    before = database_state()

    response = change(
        admin_client_ada,
        plan.a,
        settings_form(plan.a) | resets_form(plan.a, existing=[reset], new=[("2018-02-24", "08:00:50", 4)]),
    )

    assert response.status_code == 200  # the form again, with the error; not a server error
    assert database_state() == before


def test_admin_refuses_two_new_resets_at_the_same_instant(admin_client_ada, plan):
    before = database_state()

    response = change(
        admin_client_ada,
        plan.a,
        settings_form(plan.a) | resets_form(plan.a, new=[("2018-02-24", "08:00:50", 4), ("2018-02-24", "08:00:50", 5)]),
    )

    assert response.status_code == 200
    assert database_state() == before


def test_admin_refuses_turning_allow_negative_off_while_a_reset_below_zero_exists(admin_client_ada, plan):
    reset = reset_create(space=plan.b, timestamp=at(50), count=-2, now=NOW)
    before = database_state()

    response = change(
        admin_client_ada, plan.b, settings_form(plan.b, allow_negative=None) | resets_form(plan.b, existing=[reset])
    )

    assert response.status_code == 200  # the form again, with the error; not a server error
    assert "delete them first" in response.content.decode()
    assert database_state() == before


def test_admin_change_of_daily_reset_moves_the_daily_resets(admin_client_ada, plan):
    response = change(admin_client_ada, plan.a, settings_form(plan.a, daily_reset="09:00:00") | resets_form(plan.a))

    assert response.status_code == 302
    assert Space.objects.get(pk=plan.a.pk).daily_reset == time(9, 0)
    assert space_count_at(space=plan.a, at=at(3599.999), now=NOW).count == 2
    assert space_count_at(space=plan.a, at=at(3600), now=NOW).count == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="archiving drops monthly partitions")
def test_resets_in_an_archived_month_are_refused_on_the_page_and_nothing_changes(admin_client_ada, plan, tmp_path):
    reset = reset_create(space=plan.a, timestamp=at(50), count=10, now=NOW)
    history_archive(before=Month.parse("2018-03"), to=tmp_path / "archive.csv.gz")
    before = database_state()

    deleted = change(
        admin_client_ada, plan.a, settings_form(plan.a) | resets_form(plan.a, existing=[reset], delete=[reset])
    )
    added = change(
        admin_client_ada,
        plan.a,
        settings_form(plan.a, name="A2") | resets_form(plan.a, existing=[reset], new=[("2018-02-24", "09:00:00", 4)]),
    )

    assert deleted.status_code == added.status_code == 200  # the page again, with the errors
    assert "archived history" in deleted.content.decode() and "archived history" in added.content.decode()
    assert database_state() == before
