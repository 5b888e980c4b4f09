"""HTTP contract of operators' resets: POST, GET and DELETE /space/<id>/resets. A reset says "at this instant there
were N people here": events at that instant apply first, later events count on from it, and adding or removing one
recalculates the space before the answer."""

from datetime import time, timedelta

import pytest
from django.utils import timezone

from config.api import format_instant
from dpu.services import event_ingest
from occupancy.models import OccupancyReset, SpaceOccupancy
from occupancy.services import occupancy_rebuild, reset_create
from occupancy.tests.factories import NOW, at, event, floorplan, rows
from spaces.models import Space

pytestmark = pytest.mark.django_db


def database_state() -> dict:
    """What a refused request must leave as it was: every space, every reset, every occupancy row."""
    return {
        "spaces": list(Space.objects.order_by("id").values_list("id", "allow_negative", "time_zone", "daily_reset")),
        "resets": list(
            OccupancyReset.objects.order_by("id").values_list("id", "space_id", "timestamp", "count", "created_by")
        ),
        "occupancy": list(
            SpaceOccupancy.objects.order_by("id").values_list(
                "id", "space_id", "timestamp", "kind", "count", "modified"
            )
        ),
    }


def count_at(client, space: Space, ts: str) -> int:
    response = client.get(f"/space/{space.id}/count", {"ts": ts})
    assert response.status_code == 200, response.json()
    return response.json()["count"]


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


def post_reset(client, space: Space, timestamp: str, count):
    return client.post(f"/space/{space.id}/resets", {"timestamp": timestamp, "count": count}, format="json")


# --- POST /space/<id>/resets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/"])
def test_staff_posts_a_reset_and_gets_it_back(staff_client, plan, suffix):
    before = timezone.now()

    response = staff_client.post(
        f"/space/{plan.a.id}/resets{suffix}", {"timestamp": "2018-02-24T08:00:50Z", "count": 10}, format="json"
    )

    after = timezone.now()
    assert response.status_code == 201
    reset = OccupancyReset.objects.get()
    assert (reset.space_id, reset.timestamp, reset.count, reset.created_by.username) == (plan.a.id, at(50), 10, "sam")
    assert before <= reset.created <= after
    assert response.json() == {
        "id": reset.id,
        "space_id": plan.a.id,
        "timestamp": "2018-02-24T08:00:50.000Z",
        "count": 10,
        "created": format_instant(reset.created),
        "created_by": "sam",
    }


def test_a_reset_sets_the_count_at_its_instant_and_later_events_count_on_from_it(staff_client, plan):
    response = post_reset(staff_client, plan.a, "2018-02-24T08:00:50Z", 10)

    assert response.status_code == 201
    assert count_at(staff_client, plan.a, "2018-02-24T08:00:49.999Z") == 3  # before it, nothing changed
    assert count_at(staff_client, plan.a, "2018-02-24T08:00:50Z") == 10
    assert count_at(staff_client, plan.a, "2018-02-24T08:01:40Z") == 9  # the exit counts on from the reset
    assert staff_client.get(f"/space/{plan.a.id}").json()["count"] == 9


def test_events_at_the_reset_instant_apply_before_the_reset(staff_client, plan):
    event_ingest(events=[event(plan.dpu_283, 50)], now=NOW)  # one more comes in at 08:00:50: 4, then the reset

    response = post_reset(staff_client, plan.a, "2018-02-24T08:00:50Z", 10)

    assert response.status_code == 201
    assert count_at(staff_client, plan.a, "2018-02-24T08:00:50Z") == 10  # not 11: the reset came after the event
    assert count_at(staff_client, plan.a, "2018-02-24T08:01:40Z") == 9


def test_an_event_that_arrives_late_for_an_instant_before_a_reset_does_not_change_counts_after_it(staff_client, plan):
    post_reset(staff_client, plan.a, "2018-02-24T08:00:50Z", 10)

    event_ingest(events=[event(plan.dpu_283, 30)], now=NOW)  # one more came in at 08:00:30

    assert count_at(staff_client, plan.a, "2018-02-24T08:00:30Z") == 4
    assert count_at(staff_client, plan.a, "2018-02-24T08:00:50Z") == 10
    assert count_at(staff_client, plan.a, "2018-02-24T08:01:40Z") == 9


def test_counts_after_a_reset_to_zero_are_held_at_zero(staff_client, plan):
    post_reset(staff_client, plan.a, "2018-02-24T08:00:50Z", 0)

    assert count_at(staff_client, plan.a, "2018-02-24T08:01:40Z") == 0  # the exit from an empty A


def test_a_reset_at_the_instant_of_the_daily_reset_wins(staff_client):
    plan = floorplan()
    Space.objects.filter(pk=plan.a.pk).update(daily_reset=time(9, 0))
    event_ingest(events=[event(plan.dpu_283, 0)], now=NOW)  # 08:00Z, an hour before the daily reset
    assert count_at(staff_client, plan.a, "2018-02-24T09:00:00Z") == 0

    response = post_reset(staff_client, plan.a, "2018-02-24T09:00:00Z", 5)

    assert response.status_code == 201
    assert count_at(staff_client, plan.a, "2018-02-24T09:00:00Z") == 5
    assert count_at(staff_client, plan.a, "2018-02-25T08:59:59.999Z") == 5
    assert count_at(staff_client, plan.a, "2018-02-25T09:00:00Z") == 0  # the next day's daily reset


def test_a_reset_is_kept_to_the_millisecond(staff_client, plan):
    response = post_reset(staff_client, plan.a, "2018-02-24T09:00:50.123999+01:00", 10)

    assert response.status_code == 201
    assert response.json()["timestamp"] == "2018-02-24T08:00:50.123Z"
    assert OccupancyReset.objects.get().timestamp == at(50.123)


@pytest.mark.parametrize(
    "timestamp", ["2018-02-24T08:00:50", "2018-02-24", "2018-02-24 08:00:50.000"], ids=["naive", "date", "space"]
)
def test_a_reset_timestamp_needs_a_time_zone(staff_client, plan, timestamp):
    before = database_state()

    response = post_reset(staff_client, plan.a, timestamp, 10)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["timestamp"]
    assert "has no time zone" in response.json()["errors"]["timestamp"][0]
    assert database_state() == before


def test_a_reset_before_2000_is_refused(staff_client, plan):
    before = database_state()

    response = post_reset(staff_client, plan.a, "1999-12-31T23:59:59.999Z", 0)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["timestamp"]
    assert "2000" in response.json()["errors"]["timestamp"][0]
    assert database_state() == before


def test_a_reset_at_the_start_of_2000_is_accepted(staff_client, plan):
    response = post_reset(staff_client, plan.a, "2000-01-01T00:00:00Z", 2)

    assert response.status_code == 201
    assert count_at(staff_client, plan.a, "2000-01-01T00:00:00Z") == 2
    assert count_at(staff_client, plan.a, "2018-02-24T07:59:59Z") == 2
    assert count_at(staff_client, plan.a, "2018-02-24T08:00:20Z") == 5


def test_a_reset_more_than_five_minutes_ahead_is_refused(staff_client, plan):
    before = database_state()

    response = post_reset(staff_client, plan.a, (timezone.now() + timedelta(minutes=6)).isoformat(), 1)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["timestamp"]
    assert "5 minutes in the future" in response.json()["errors"]["timestamp"][0]
    assert database_state() == before


def test_a_reset_less_than_five_minutes_ahead_is_accepted(staff_client, plan):
    soon = timezone.now() + timedelta(minutes=4)  # a clock running a little fast

    response = post_reset(staff_client, plan.a, soon.isoformat(), 1)

    assert response.status_code == 201
    assert OccupancyReset.objects.get().count == 1


def test_a_negative_reset_is_refused_when_the_space_does_not_allow_negative(staff_client, plan):
    before = database_state()

    response = post_reset(staff_client, plan.a, "2018-02-24T08:00:50Z", -1)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["count"]
    assert "must be 0 or more" in response.json()["errors"]["count"][0]
    assert database_state() == before


def test_a_negative_reset_is_accepted_when_the_space_allows_negative(staff_client, plan):
    response = post_reset(staff_client, plan.b, "2018-02-24T08:00:50Z", -3)

    assert response.status_code == 201
    assert count_at(staff_client, plan.b, "2018-02-24T08:00:50Z") == -3


@pytest.mark.parametrize(
    "again",
    ["2018-02-24T08:00:50Z", "2018-02-24T09:00:50+01:00", "2018-02-24T08:00:50.000999Z"],
    ids=["same-text", "other-offset", "same-millisecond"],
)
def test_a_second_reset_of_the_same_space_at_the_same_instant_is_refused(staff_client, plan, again):
    assert post_reset(staff_client, plan.a, "2018-02-24T08:00:50Z", 10).status_code == 201
    before = database_state()

    response = post_reset(staff_client, plan.a, again, 4)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["timestamp"]
    assert "already has a reset" in response.json()["errors"]["timestamp"][0]
    assert database_state() == before
    assert count_at(staff_client, plan.a, "2018-02-24T08:00:50Z") == 10


def test_resets_of_two_spaces_may_share_an_instant(staff_client, plan):
    assert post_reset(staff_client, plan.a, "2018-02-24T08:00:50Z", 10).status_code == 201

    response = post_reset(staff_client, plan.b, "2018-02-24T08:00:50Z", 4)

    assert response.status_code == 201
    assert (
        count_at(staff_client, plan.a, "2018-02-24T08:00:50Z"),
        count_at(staff_client, plan.b, "2018-02-24T08:00:50Z"),
    ) == (10, 4)


def test_a_reset_with_an_unknown_field_is_refused_naming_it(staff_client, plan):
    before = database_state()

    response = staff_client.post(
        f"/space/{plan.a.id}/resets",
        {"timestamp": "2018-02-24T08:00:50Z", "count": 10, "created_by": "mallory"},
        format="json",
    )

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["created_by"]
    assert database_state() == before


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"count": 3}, ["timestamp"]),
        ({"timestamp": "2018-02-24T08:00:50Z"}, ["count"]),
        ({}, ["count", "timestamp"]),
        ({"timestamp": "2018-02-24T08:00:50Z", "count": "three"}, ["count"]),
        ({"timestamp": "2018-02-24T08:00:50Z", "count": 1.5}, ["count"]),
        ({"timestamp": "2018-02-24T08:00:50Z", "count": None}, ["count"]),
        ({"timestamp": "2018-02-24T08:00:50Z", "count": 2**31}, ["count"]),
        ({"timestamp": "yesterday", "count": 3}, ["timestamp"]),
        ({"timestamp": 1519459250, "count": 3}, ["timestamp"]),
        ([{"timestamp": "2018-02-24T08:00:50Z", "count": 3}], []),  # not an object: no field to name
    ],
    ids=[
        "no-timestamp",
        "no-count",
        "empty",
        "count-word",
        "count-fraction",
        "count-null",
        "count-too-large",
        "timestamp-word",
        "timestamp-epoch",
        "array",
    ],
)
def test_a_malformed_reset_is_refused_naming_the_fields(staff_client, plan, body, fields):
    before = database_state()

    response = staff_client.post(f"/space/{plan.a.id}/resets", body, format="json")

    assert response.status_code == 400
    assert sorted(response.json().get("errors", {})) == fields
    assert response.json()["detail"]
    assert database_state() == before


def test_a_reset_of_an_unknown_space_is_not_found(staff_client, plan):
    before = database_state()

    response = staff_client.post(
        "/space/999999/resets", {"timestamp": "2018-02-24T08:00:50Z", "count": 1}, format="json"
    )

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    assert database_state() == before


# --- GET /space/<id>/resets -----------------------------------------------------------------------------------------


@pytest.fixture
def berlin_resets(plan, django_user_model):
    """Space A in Europe/Berlin (UTC+1 in February) with resets half a second past 08:00Z (by Olga), 09:00Z and
    10:00Z, made out of order; B has one past 09:00Z too."""
    Space.objects.filter(pk=plan.a.pk).update(time_zone="Europe/Berlin")
    plan.a.refresh_from_db()
    olga = django_user_model.objects.create_user(username="olga", is_staff=True)
    for hour, count in ((10, 1), (8, 3), (9, 2)):
        by = olga if hour == 8 else None
        reset_create(space=plan.a, timestamp=at((hour - 8) * 3600 + 0.5), count=count, created_by=by, now=NOW)
    reset_create(space=plan.b, timestamp=at(3600.5), count=7, now=NOW)
    return plan


def listed(response) -> list[tuple[str, int, str | None]]:
    return [(reset["timestamp"], reset["count"], reset["created_by"]) for reset in response.json()]


@pytest.mark.parametrize("suffix", ["", "/"])
def test_reset_list_shows_the_spaces_resets_in_time_order(reader_client, berlin_resets, suffix):
    response = reader_client.get(f"/space/{berlin_resets.a.id}/resets{suffix}")

    assert response.status_code == 200
    assert listed(response) == [
        ("2018-02-24T08:00:00.500Z", 3, "olga"),
        ("2018-02-24T09:00:00.500Z", 2, None),
        ("2018-02-24T10:00:00.500Z", 1, None),
    ]
    first = OccupancyReset.objects.get(space=berlin_resets.a, count=3)
    assert response.json()[0] == {
        "id": first.id,
        "space_id": berlin_resets.a.id,
        "timestamp": "2018-02-24T08:00:00.500Z",
        "count": 3,
        "created": format_instant(first.created),
        "created_by": "olga",
    }


@pytest.mark.parametrize(
    ("query", "counts"),
    [
        ({"start": "2018-02-24T09:00:00.500Z"}, [2, 1]),  # start is in
        ({"end": "2018-02-24T09:00:00.500Z"}, [3]),  # end is out
        ({"start": "2018-02-24T08:30:00Z", "end": "2018-02-24T10:30:00Z"}, [2, 1]),
        ({"start": "2018-02-24T09:30:00+01:00", "end": "2018-02-24T11:00:00+01:00"}, [2]),
        ({"start": "2018-02-24T10:30:00", "end": "2018-02-24T11:30:00"}, [1]),  # naive: Berlin, 09:30Z-10:30Z
        ({"start": "2018-02-24T09:30:00"}, [2, 1]),  # naive: 08:30Z
        ({"end": "2018-02-24T10:00:00"}, [3]),  # naive: 09:00Z
        ({"start": "2018-02-24T11:30:00Z"}, []),
    ],
)
def test_reset_list_between_start_and_end(reader_client, berlin_resets, query, counts):
    response = reader_client.get(f"/space/{berlin_resets.a.id}/resets", query)

    assert response.status_code == 200
    assert [count for _, count, _ in listed(response)] == counts


def test_reset_list_reads_a_naive_start_and_end_as_the_spaces_local_time(reader_client, berlin_resets):
    # 09:00 to 10:00 in Berlin is 08:00Z to 09:00Z: only the 08:00:00.5Z reset. Read as UTC, it would be 09:00Z's.
    response = reader_client.get(
        f"/space/{berlin_resets.a.id}/resets", {"start": "2018-02-24T09:00:00", "end": "2018-02-24T10:00:00"}
    )

    assert response.status_code == 200
    assert listed(response) == [("2018-02-24T08:00:00.500Z", 3, "olga")]


@pytest.mark.parametrize("name", ["start", "end"])
def test_reset_list_refuses_an_unparseable_bound_naming_it(reader_client, berlin_resets, name):
    before = database_state()

    response = reader_client.get(f"/space/{berlin_resets.a.id}/resets", {name: "yesterday"})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [name]
    assert database_state() == before


def test_reset_list_of_an_unknown_space_is_not_found(reader_client, berlin_resets):
    response = reader_client.get("/space/999999/resets")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


# --- DELETE /space/<id>/resets/<reset_id> -------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/"])
def test_staff_deletes_a_reset_and_the_space_is_recalculated(staff_client, plan, suffix):
    reset_id = post_reset(staff_client, plan.a, "2018-02-24T08:00:50Z", 10).json()["id"]
    assert count_at(staff_client, plan.a, "2018-02-24T08:01:40Z") == 9

    response = staff_client.delete(f"/space/{plan.a.id}/resets/{reset_id}{suffix}")

    assert response.status_code == 204
    assert not response.content
    assert not OccupancyReset.objects.exists()
    assert not SpaceOccupancy.objects.filter(kind=SpaceOccupancy.Kind.RESET).exists()
    assert count_at(staff_client, plan.a, "2018-02-24T08:00:50Z") == 3
    assert count_at(staff_client, plan.a, "2018-02-24T08:01:40Z") == 2


def test_deleting_one_of_two_resets_recounts_up_to_the_other(staff_client, plan):
    first = post_reset(staff_client, plan.a, "2018-02-24T08:00:05Z", 7).json()["id"]
    post_reset(staff_client, plan.a, "2018-02-24T08:00:50Z", 10)
    assert count_at(staff_client, plan.a, "2018-02-24T08:00:20Z") == 9

    response = staff_client.delete(f"/space/{plan.a.id}/resets/{first}")

    assert response.status_code == 204
    assert count_at(staff_client, plan.a, "2018-02-24T08:00:20Z") == 3
    assert count_at(staff_client, plan.a, "2018-02-24T08:00:50Z") == 10
    assert count_at(staff_client, plan.a, "2018-02-24T08:01:40Z") == 9


def test_deleting_an_unknown_reset_is_not_found(staff_client, plan):
    post_reset(staff_client, plan.a, "2018-02-24T08:00:50Z", 10)
    before = database_state()

    response = staff_client.delete(f"/space/{plan.a.id}/resets/999999")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    assert database_state() == before


def test_deleting_a_reset_through_another_space_is_not_found(staff_client, plan):
    reset_id = post_reset(staff_client, plan.a, "2018-02-24T08:00:50Z", 10).json()["id"]
    before = database_state()

    response = staff_client.delete(f"/space/{plan.b.id}/resets/{reset_id}")

    assert response.status_code == 404
    assert database_state() == before


def test_posted_resets_rebuild_to_the_same_rows(staff_client, plan):
    post_reset(staff_client, plan.a, "2018-02-24T08:00:05Z", 7)
    post_reset(staff_client, plan.a, "2018-02-24T08:00:50Z", 10)
    incremental = rows(plan.a)
    SpaceOccupancy.objects.all().delete()

    occupancy_rebuild(now=NOW)

    assert rows(plan.a) == incremental
    assert (at(5), 7) in [(timestamp, count) for _, _, timestamp, _, count in incremental]
