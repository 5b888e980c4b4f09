"""HTTP contract of /space/ and /doorway/: listing the layout with counts, and adding to it (staff only)."""

import pytest

from dpu.services import event_ingest
from occupancy.tests.factories import NOW, event, floorplan
from spaces.models import Doorway, Space
from spaces.tests.factories import SpaceFactory

pytestmark = pytest.mark.django_db

# What a space has when nothing else is said: UTC, no capacity, no daily reset.
DEFAULTS = {"time_zone": "UTC", "capacity": None, "daily_reset": None}


# --- /space/ -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/space", "/space/"])
def test_space_list_answers_with_and_without_trailing_slash(reader_client, path):
    SpaceFactory(name="Hall")

    response = reader_client.get(path)

    assert response.status_code == 200  # not a 301 to the other spelling
    assert [space["name"] for space in response.json()] == ["Hall"]


def test_space_list_shows_every_space_with_its_current_count(reader_client):
    plan = floorplan()
    empty = SpaceFactory(name="C", allow_negative=True)
    # Two people come in from outside, one walks on from A into B, and one more enters A from B.
    event_ingest(
        events=[event(plan.dpu_283, 0), event(plan.dpu_283, 10), event(plan.dpu_423, 20, -1), event(plan.dpu_423, 30)],
        now=NOW,
    )

    response = reader_client.get("/space/")

    assert response.status_code == 200
    assert response.json() == [
        {"id": plan.a.id, "name": "A", "allow_negative": False, **DEFAULTS, "count": 2},
        {"id": plan.b.id, "name": "B", "allow_negative": False, **DEFAULTS, "count": 0},
        {"id": empty.id, "name": "C", "allow_negative": True, **DEFAULTS, "count": 0},
    ]


@pytest.mark.parametrize("path", ["/space", "/space/"])
def test_staff_creates_a_space_that_starts_at_zero(staff_client, path):
    response = staff_client.post(path, {"name": "Lobby"}, format="json")

    assert response.status_code == 201
    lobby = Space.objects.get()
    assert (lobby.name, lobby.allow_negative) == ("Lobby", False)
    assert response.json() == {"id": lobby.id, "name": "Lobby", "allow_negative": False, **DEFAULTS, "count": 0}


def test_staff_creates_a_space_that_may_go_negative(staff_client):
    response = staff_client.post("/space/", {"name": "Yard", "allow_negative": True}, format="json")

    assert response.status_code == 201
    assert Space.objects.get(name="Yard").allow_negative is True
    assert response.json()["allow_negative"] is True


def test_duplicate_space_name_is_a_conflict(staff_client):
    SpaceFactory(name="Lobby")

    response = staff_client.post("/space/", {"name": "Lobby"}, format="json")

    assert response.status_code == 409
    assert "name" in response.json()["errors"]
    assert Space.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "Lobby", "allow_negative": "sometimes"}, "allow_negative"),
        ({"name": "Lobby", "capacty": 10}, "capacty"),  # a misspelt or unknown field is not silently dropped
        (["Lobby"], None),  # not an object: no field to name
        ("Lobby", None),
    ],
    ids=["missing", "empty", "null", "too-long", "bad-bool", "unknown-field", "array", "string"],
)
def test_bad_space_input_is_refused_and_stores_nothing(staff_client, body, field):
    response = staff_client.post("/space/", body, format="json")

    assert response.status_code == 400
    if field is None:
        assert response.json() == {"detail": "The body must be a JSON object."}
    else:
        assert field in response.json()["errors"]
    assert Space.objects.count() == 0


# --- /doorway/ -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/doorway", "/doorway/"])
def test_doorway_list_shows_each_doorway_and_its_sides(reader_client, path):
    plan = floorplan()

    response = reader_client.get(path)

    assert response.status_code == 200
    assert response.json() == [
        {"id": plan.x.id, "name": "X", "sides": [None, plan.a.id]},
        {"id": plan.z.id, "name": "Z", "sides": [plan.b.id, plan.a.id]},
    ]


@pytest.mark.parametrize("path", ["/doorway", "/doorway/"])
def test_staff_creates_a_doorway_from_outside(staff_client, path):
    hall = SpaceFactory(name="Hall")

    response = staff_client.post(path, {"name": "Front", "sides": [None, hall.id]}, format="json")

    assert response.status_code == 201
    front = Doorway.objects.get()
    assert (front.name, front.side_a_id, front.side_b_id) == ("Front", None, hall.id)
    assert response.json() == {"id": front.id, "name": "Front", "sides": [None, hall.id]}


def test_staff_creates_a_doorway_between_two_spaces(staff_client):
    hall, office = SpaceFactory(name="Hall"), SpaceFactory(name="Office")

    response = staff_client.post("/doorway/", {"name": "Inner", "sides": [hall.id, office.id]}, format="json")

    assert response.status_code == 201
    assert Doorway.objects.get().sides == (hall.id, office.id)


UNKNOWN = 999_999


@pytest.mark.parametrize(
    "sides",
    [
        ["hall", "hall"],
        [None, None],
        [None, UNKNOWN],
        ["hall"],
        ["hall", None, None],
        [],
        None,
        "hall",
        [None, "hall-name"],
        [None, True],
        [None, 10**30],
    ],
    ids=[
        "same-space-twice",
        "both-outside",
        "unknown-space",
        "one-side",
        "three-sides",
        "no-sides",
        "null",
        "not-a-list",
        "name-not-id",
        "bool-not-id",
        "huge-id",
    ],
)
def test_bad_doorway_sides_are_refused_and_store_nothing(staff_client, sides):
    hall = SpaceFactory(name="Hall")

    def resolve(side):
        return hall.id if side == "hall" else side

    body_sides = [resolve(side) for side in sides] if isinstance(sides, list) else resolve(sides)
    response = staff_client.post("/doorway/", {"name": "Bad", "sides": body_sides}, format="json")

    assert response.status_code == 400
    assert response.json()  # says why
    assert Doorway.objects.count() == 0


def test_doorway_without_a_name_is_refused(staff_client):
    hall = SpaceFactory(name="Hall")

    response = staff_client.post("/doorway/", {"sides": [None, hall.id]}, format="json")

    assert response.status_code == 400
    assert "name" in response.json()["errors"]
    assert Doorway.objects.count() == 0
