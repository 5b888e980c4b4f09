"""HTTP contract of POST /events: one event or a batch, stored all or nothing, duplicates once."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from dpu.models import DpuEvent
from occupancy.models import SpaceOccupancy
from occupancy.tests.factories import floorplan

pytestmark = pytest.mark.django_db

FIRST = {"dpu_id": 283, "timestamp": "2018-02-24T08:45:21.893Z", "direction": 1}
SECOND = {"dpu_id": 423, "timestamp": "2018-02-24T14:01:52.470Z", "direction": -1}


@pytest.fixture
def plan():
    return floorplan()


def stored() -> tuple[int, int]:
    """(events, occupancy rows): both must stay put when a batch is refused."""
    return DpuEvent.objects.count(), SpaceOccupancy.objects.count()


def events() -> list[tuple[int, datetime, int]]:
    return list(
        DpuEvent.objects.order_by("timestamp", "dpu__serial").values_list("dpu__serial", "timestamp", "direction")
    )


def count_of(client, space, ts: str) -> int:
    response = client.get(f"/space/{space.id}/count", {"ts": ts})
    assert response.status_code == 200
    return response.json()["count"]


# --- accepted --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/events", "/events/"])
def test_one_event_object_is_stored_and_counted(staff_client, plan, path):
    response = staff_client.post(path, FIRST, format="json")

    assert response.status_code == 201
    assert response.json() == {"received": 1, "created": 1, "duplicates": 0}
    assert events() == [(283, datetime(2018, 2, 24, 8, 45, 21, 893_000, tzinfo=UTC), 1)]
    assert count_of(staff_client, plan.a, "2018-02-24T08:45:21.893Z") == 1


def test_a_batch_is_stored_and_counted(staff_client, plan):
    response = staff_client.post("/events", [FIRST, SECOND], format="json")

    assert response.status_code == 201
    assert response.json() == {"received": 2, "created": 2, "duplicates": 0}
    assert events() == [
        (283, datetime(2018, 2, 24, 8, 45, 21, 893_000, tzinfo=UTC), 1),
        (423, datetime(2018, 2, 24, 14, 1, 52, 470_000, tzinfo=UTC), -1),
    ]
    # One person came in through X, then left A for B.
    assert count_of(staff_client, plan.a, "2018-02-24T14:01:52.470Z") == 0
    assert count_of(staff_client, plan.b, "2018-02-24T14:01:52.470Z") == 1


def test_numeric_strings_are_read_as_numbers(staff_client, plan):
    # The sample CSV quotes some directions and every DPU id; a DPU posting them that way is understood.
    response = staff_client.post(
        "/events",
        [{**FIRST, "dpu_id": "283", "direction": "1"}, {**SECOND, "dpu_id": "423", "direction": "-1"}],
        format="json",
    )

    assert response.status_code == 201
    assert [(serial, direction) for serial, _, direction in events()] == [(283, 1), (423, -1)]


def test_timestamps_in_other_zones_are_stored_as_the_same_instant(staff_client, plan):
    response = staff_client.post("/events", {**FIRST, "timestamp": "2018-02-24T09:45:21.893+01:00"}, format="json")

    assert response.status_code == 201
    assert events() == [(283, datetime(2018, 2, 24, 8, 45, 21, 893_000, tzinfo=UTC), 1)]


def test_repeats_within_a_batch_are_stored_once(staff_client, plan):
    response = staff_client.post("/events", [FIRST, FIRST, {**FIRST, "dpu_id": "283", "direction": "1"}], format="json")

    assert response.status_code == 201
    assert response.json() == {"received": 3, "created": 1, "duplicates": 2}
    assert DpuEvent.objects.count() == 1
    assert count_of(staff_client, plan.a, "2018-02-25") == 1


def test_events_equal_to_the_millisecond_are_one_event(staff_client, plan):
    response = staff_client.post(
        "/events", [FIRST, {**FIRST, "timestamp": "2018-02-24T08:45:21.893999Z"}], format="json"
    )

    assert response.status_code == 201
    assert response.json() == {"received": 2, "created": 1, "duplicates": 1}
    assert DpuEvent.objects.count() == 1


def test_same_instant_on_another_dpu_or_direction_is_another_event(staff_client, plan):
    response = staff_client.post(
        "/events", [FIRST, {**FIRST, "direction": -1}, {**FIRST, "dpu_id": 423}], format="json"
    )

    assert response.status_code == 201
    assert response.json() == {"received": 3, "created": 3, "duplicates": 0}
    assert DpuEvent.objects.count() == 3


def test_resending_a_batch_that_arrived_answers_200_and_changes_nothing(staff_client, plan):
    staff_client.post("/events", [FIRST, SECOND], format="json")
    before = list(SpaceOccupancy.objects.order_by("id").values_list("id", "count", "status", "modified"))

    response = staff_client.post("/events", [SECOND, FIRST], format="json")

    assert response.status_code == 200
    assert response.json() == {"received": 2, "created": 0, "duplicates": 2}
    assert DpuEvent.objects.count() == 2
    assert list(SpaceOccupancy.objects.order_by("id").values_list("id", "count", "status", "modified")) == before


def test_a_batch_partly_stored_before_creates_only_the_new_events(staff_client, plan):
    staff_client.post("/events", FIRST, format="json")

    response = staff_client.post("/events", [FIRST, SECOND], format="json")

    assert response.status_code == 201
    assert response.json() == {"received": 2, "created": 1, "duplicates": 1}
    assert DpuEvent.objects.count() == 2


def test_a_batch_of_ten_thousand_is_accepted(staff_client, plan):
    # The same event 10,000 times: the largest batch allowed, cheap to store.
    response = staff_client.post("/events", [FIRST] * 10_000, format="json")

    assert response.status_code == 201
    assert response.json() == {"received": 10_000, "created": 1, "duplicates": 9_999}
    assert DpuEvent.objects.count() == 1


def test_an_event_less_than_five_minutes_ahead_is_accepted(staff_client, plan):
    soon = timezone.now() + timedelta(minutes=4)  # a DPU clock running a little fast

    response = staff_client.post("/events", {**FIRST, "timestamp": soon.isoformat()}, format="json")

    assert response.status_code == 201
    assert DpuEvent.objects.count() == 1


def test_staff_may_post_events_for_any_dpu(staff_client, plan):
    # Sam is no DPU: the token is a staff user's, and the batch mixes both sample DPUs.
    response = staff_client.post("/events", [FIRST, SECOND], format="json")

    assert response.status_code == 201
    assert {serial for serial, _, _ in events()} == {283, 423}


# --- refused: all or nothing -------------------------------------------------------------------------------------


# Objects that are not a valid event, and the field the refusal names.
BAD_OBJECTS = [
    pytest.param({**SECOND, "dpu_id": 999}, "dpu_id", id="unknown-dpu"),
    pytest.param({**SECOND, "dpu_id": "DPU-423"}, "dpu_id", id="text-dpu"),
    pytest.param({**SECOND, "dpu_id": 0}, "dpu_id", id="zero-dpu"),
    pytest.param({**SECOND, "dpu_id": None}, "dpu_id", id="null-dpu"),
    pytest.param({**SECOND, "timestamp": "2018-02-24T14:01:52.470"}, "timestamp", id="no-zone"),
    pytest.param({**SECOND, "timestamp": "yesterday"}, "timestamp", id="bad-timestamp"),
    pytest.param({**SECOND, "timestamp": 1519480912}, "timestamp", id="epoch-number"),
    pytest.param({**SECOND, "timestamp": None}, "timestamp", id="null-timestamp"),
    pytest.param({**SECOND, "direction": 0}, "direction", id="direction-0"),
    pytest.param({**SECOND, "direction": 2}, "direction", id="direction-2"),
    pytest.param({**SECOND, "direction": -2}, "direction", id="direction--2"),
    pytest.param({**SECOND, "direction": 1.5}, "direction", id="direction-1.5"),
    pytest.param({**SECOND, "direction": 1.0}, "direction", id="direction-float"),
    pytest.param({**SECOND, "direction": "up"}, "direction", id="direction-up"),
    pytest.param({**SECOND, "direction": None}, "direction", id="direction-null"),
    pytest.param({**SECOND, "direction": True}, "direction", id="direction-true"),  # JSON true is not 1
    pytest.param({"timestamp": SECOND["timestamp"], "direction": -1}, "dpu_id", id="missing-dpu"),
    pytest.param({"dpu_id": 423, "direction": -1}, "timestamp", id="missing-timestamp"),
    pytest.param({"dpu_id": 423, "timestamp": SECOND["timestamp"]}, "direction", id="missing-direction"),
    pytest.param({**SECOND, "room": "A"}, "room", id="extra-field"),
]
NOT_OBJECTS = [
    pytest.param([SECOND], "item", id="nested-array"),
    pytest.param("423,-1", "item", id="string-item"),
    pytest.param(423, "item", id="number-item"),
    pytest.param(None, "item", id="null-item"),
]


@pytest.mark.parametrize(("item", "field"), BAD_OBJECTS + NOT_OBJECTS)
def test_one_bad_item_refuses_the_whole_batch_naming_it(staff_client, plan, item, field):
    response = staff_client.post("/events", [FIRST, item, FIRST], format="json")

    assert response.status_code == 400
    body = response.json()
    assert (body["index"], body["field"]) == (1, field)
    assert body["message"]  # the reason, for a person
    assert "Item 1" in body["detail"] and field in body["detail"]
    assert stored() == (0, 0)


@pytest.mark.parametrize(("item", "field"), BAD_OBJECTS)
def test_a_bad_single_event_is_refused_as_item_zero(staff_client, plan, item, field):
    response = staff_client.post("/events", item, format="json")

    assert response.status_code == 400
    assert (response.json()["index"], response.json()["field"]) == (0, field)
    assert stored() == (0, 0)


@pytest.mark.parametrize("body", ["null", "423", '"423,-1"', "true"])
def test_a_body_that_is_no_object_is_refused_as_item_zero(staff_client, plan, body):
    response = staff_client.generic("POST", "/events", body, content_type="application/json")

    assert response.status_code == 400
    assert (response.json()["index"], response.json()["field"]) == (0, "item")
    assert stored() == (0, 0)


def test_bad_batch_after_good_ones_leaves_earlier_batches_alone(staff_client, plan):
    staff_client.post("/events", FIRST, format="json")
    before = stored()

    response = staff_client.post("/events", [SECOND, {**SECOND, "dpu_id": 999}], format="json")

    assert response.status_code == 400
    assert response.json()["index"] == 1
    assert stored() == before == (1, 1)


def test_an_event_more_than_five_minutes_ahead_is_refused(staff_client, plan):
    later = timezone.now() + timedelta(minutes=6)  # a broken clock, not a person

    response = staff_client.post("/events", [FIRST, {**SECOND, "timestamp": later.isoformat()}], format="json")

    assert response.status_code == 400
    assert (response.json()["index"], response.json()["field"]) == (1, "timestamp")
    assert stored() == (0, 0)


def test_an_empty_batch_is_refused(staff_client, plan):
    response = staff_client.post("/events", [], format="json")

    assert response.status_code == 400
    assert "empty" in response.json()["detail"]
    assert stored() == (0, 0)


def test_a_batch_over_ten_thousand_is_refused(staff_client, plan):
    response = staff_client.post("/events", [FIRST] * 10_001, format="json")

    assert response.status_code == 400
    assert "10000" in response.json()["detail"] or "10,000" in response.json()["detail"]
    assert stored() == (0, 0)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ('{"dpu_id": 283, "timestamp": ', "application/json", 400),
        ("not json at all", "application/json", 400),
        ("[" * 100_000, "application/json", 400),  # nested past Python's recursion limit
        ('{"dpu_id": NaN, "timestamp": "2018-02-24T08:45:21.893Z", "direction": 1}', "application/json", 400),
        (b"\xff\xfe\x00", "application/json", 400),
        ("dpu_id=283&timestamp=2018-02-24T08:45:21.893Z&direction=1", "application/x-www-form-urlencoded", 415),
        ("timestamp,direction,dpu_id\n2018-02-24T08:45:21.893Z,1,283\n", "text/csv", 415),
        (json.dumps(FIRST), "text/plain", 415),
    ],
    ids=["truncated", "not-json", "deeply-nested", "nan", "not-utf8", "form", "csv", "text-plain"],
)
def test_a_body_that_is_not_json_is_a_client_error(staff_client, plan, body, content_type, status):
    response = staff_client.generic("POST", "/events", body, content_type=content_type)

    assert response.status_code == status
    assert response.json()["detail"]
    assert stored() == (0, 0)


def test_an_empty_body_is_an_event_missing_its_fields(staff_client, plan):
    response = staff_client.generic("POST", "/events", "", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["index"] == 0
    assert stored() == (0, 0)


@pytest.mark.parametrize("timestamp", ["1970-01-01T00:00:00.000Z", "0001-01-01T00:00:00Z", "1999-12-31T23:59:59.999Z"])
def test_an_event_from_a_reset_clock_is_refused_and_nothing_is_stored(staff_client, plan, timestamp):
    batch = [
        {"dpu_id": 283, "timestamp": "2018-02-24T08:45:21.893Z", "direction": 1},
        {"dpu_id": 283, "timestamp": timestamp, "direction": 1},
    ]

    response = staff_client.post("/events", batch, format="json")

    assert response.status_code == 400
    assert (response.json()["index"], response.json()["field"]) == (1, "timestamp")
    assert "before 2000-01-01" in response.json()["message"]
    assert not DpuEvent.objects.exists()


def test_the_first_instant_of_2000_is_accepted(staff_client, plan):
    response = staff_client.post(
        "/events", {"dpu_id": 283, "timestamp": "2000-01-01T00:00:00.000Z", "direction": 1}, format="json"
    )

    assert response.status_code == 201
