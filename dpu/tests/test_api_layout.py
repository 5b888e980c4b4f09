"""HTTP contract of /dpu/ and /dpu/<serial>/assignments: registering DPUs and moving them between doorways."""

from datetime import UTC, datetime

import pytest

from dpu.models import SERIAL_MAX, Dpu, DpuAssignment
from dpu.services import event_ingest
from dpu.tests.factories import DpuAssignmentFactory, DpuFactory
from occupancy.models import SpaceOccupancy
from occupancy.tests.factories import INSTALLED, NOW, at, event, floorplan
from spaces.tests.factories import DoorwayFactory, SpaceFactory

pytestmark = pytest.mark.django_db


# --- /dpu/ ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/dpu", "/dpu/"])
def test_dpu_list_shows_every_serial(reader_client, path):
    DpuFactory(serial=423)
    DpuFactory(serial=283)

    response = reader_client.get(path)

    assert response.status_code == 200
    assert [dpu["serial"] for dpu in response.json()] == [283, 423]


@pytest.mark.parametrize("serial", [283, "283", SERIAL_MAX])
def test_staff_registers_a_dpu_by_serial(staff_client, serial):
    response = staff_client.post("/dpu/", {"serial": serial}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body.keys() == {"serial", "token"}
    assert body["serial"] == int(serial)
    dpu = Dpu.objects.get()
    assert dpu.serial == int(serial)
    # The token is shown once and kept only as its hash.
    assert body["token"].startswith("dpu_") and dpu.token_hash == Dpu.hash_token(body["token"])
    assert body["token"] not in str(Dpu.objects.values_list().get())


def test_posting_to_dpu_without_trailing_slash_registers_too(staff_client):
    response = staff_client.post("/dpu", {"serial": 283}, format="json")

    assert response.status_code == 201
    assert Dpu.objects.filter(serial=283).exists()


def test_duplicate_serial_is_a_conflict(staff_client):
    DpuFactory(serial=283)

    response = staff_client.post("/dpu/", {"serial": "283"}, format="json")

    assert response.status_code == 409  # the request is well formed; what is stored says no
    assert "serial" in response.json()["errors"]
    assert Dpu.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"serial": None},
        {"serial": 0},
        {"serial": -283},
        {"serial": 283.5},
        {"serial": "DPU-283"},
        {"serial": True},
        {"serial": SERIAL_MAX + 1},
        {"serial": 283, "doorway": 1},
        [283],
    ],
    ids=["missing", "null", "zero", "negative", "fraction", "text", "bool", "too-big", "unknown-field", "array"],
)
def test_bad_serial_is_refused_and_stores_nothing(staff_client, body):
    response = staff_client.post("/dpu/", body, format="json")

    assert response.status_code == 400
    assert response.json()
    assert Dpu.objects.count() == 0


# --- /dpu/<serial>/assignments -------------------------------------------------------------------------------


def assignments_of(dpu: Dpu) -> list[tuple]:
    return list(
        DpuAssignment.objects.filter(dpu=dpu)
        .order_by("valid_from")
        .values_list("doorway_id", "enters_id", "valid_from", "valid_to")
    )


@pytest.mark.parametrize("suffix", ["", "/"])
def test_assignment_list_renders_instants_in_utc_with_milliseconds(reader_client, suffix):
    dpu = DpuFactory(serial=283)
    first = DpuAssignmentFactory(
        dpu=dpu,
        valid_from=datetime(2018, 1, 1, tzinfo=UTC),
        valid_to=datetime(2018, 2, 24, 8, 45, 21, 893_000, tzinfo=UTC),
    )
    second = DpuAssignmentFactory(
        dpu=dpu, enters=None, valid_from=datetime(2018, 2, 24, 8, 45, 21, 893_000, tzinfo=UTC)
    )

    response = reader_client.get(f"/dpu/283/assignments{suffix}")

    assert response.status_code == 200
    assert response.json() == [
        {
            "id": first.id,
            "dpu": 283,
            "doorway": first.doorway_id,
            "enters": first.enters_id,
            "valid_from": "2018-01-01T00:00:00.000Z",
            "valid_to": "2018-02-24T08:45:21.893Z",
        },
        {
            "id": second.id,
            "dpu": 283,
            "doorway": second.doorway_id,
            "enters": None,
            "valid_from": "2018-02-24T08:45:21.893Z",
            "valid_to": None,
        },
    ]


@pytest.mark.parametrize("serial", ["999", "0", "9" * 19])
def test_assignments_of_an_unknown_dpu_are_not_found(staff_client, serial):
    DpuFactory(serial=283)

    listing = staff_client.get(f"/dpu/{serial}/assignments")
    moving = staff_client.post(
        f"/dpu/{serial}/assignments",
        {"doorway": DoorwayFactory().id, "enters": None, "valid_from": "2018-01-01T00:00:00Z"},
        format="json",
    )

    assert listing.status_code == 404
    assert listing.json() == {"detail": "Not found."}
    assert moving.status_code == 404
    assert DpuAssignment.objects.count() == 0


@pytest.mark.parametrize("suffix", ["", "/"])
def test_first_assignment_is_open_ended(staff_client, suffix):
    dpu = DpuFactory(serial=283)
    hall = SpaceFactory(name="Hall")
    front = DoorwayFactory(name="Front", side_a=None, side_b=hall)

    response = staff_client.post(
        f"/dpu/283/assignments{suffix}",
        {"doorway": front.id, "enters": hall.id, "valid_from": "2018-01-01T01:00:00+01:00"},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["valid_from"] == "2018-01-01T00:00:00.000Z"  # the offset is converted, not dropped
    assert response.json()["valid_to"] is None
    assert assignments_of(dpu) == [(front.id, hall.id, datetime(2018, 1, 1, tzinfo=UTC), None)]


def test_moving_a_dpu_ends_its_current_assignment_where_the_new_one_starts(staff_client):
    plan = floorplan()
    yard = SpaceFactory(name="Yard")
    gate = DoorwayFactory(name="Gate", side_a=None, side_b=yard)
    moved_at = datetime(2018, 2, 26, 16, 8, 2, 170_000, tzinfo=UTC)

    response = staff_client.post(
        "/dpu/283/assignments",
        {"doorway": gate.id, "enters": yard.id, "valid_from": "2018-02-26T16:08:02.170Z"},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["dpu"], body["doorway"], body["enters"]) == (283, gate.id, yard.id)
    assert (body["valid_from"], body["valid_to"]) == ("2018-02-26T16:08:02.170Z", None)
    assert assignments_of(plan.dpu_283) == [
        (plan.x.id, plan.a.id, INSTALLED, moved_at),
        (gate.id, yard.id, moved_at, None),
    ]
    listing = staff_client.get("/dpu/283/assignments/").json()
    assert [(a["valid_from"], a["valid_to"]) for a in listing] == [
        ("2000-01-01T00:00:00.000Z", "2018-02-26T16:08:02.170Z"),
        ("2018-02-26T16:08:02.170Z", None),
    ]


def test_assignment_inserted_before_a_later_one_runs_until_it(staff_client):
    dpu = DpuFactory(serial=283)
    later = DpuAssignmentFactory(dpu=dpu, valid_from=datetime(2018, 3, 1, tzinfo=UTC))
    hall = SpaceFactory(name="Hall")
    front = DoorwayFactory(name="Front", side_a=None, side_b=hall)

    response = staff_client.post(
        "/dpu/283/assignments",
        {"doorway": front.id, "enters": None, "valid_from": "2018-02-01T00:00:00Z"},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["valid_to"] == "2018-03-01T00:00:00.000Z"
    assert assignments_of(dpu) == [
        (front.id, None, datetime(2018, 2, 1, tzinfo=UTC), datetime(2018, 3, 1, tzinfo=UTC)),
        (later.doorway_id, later.enters_id, datetime(2018, 3, 1, tzinfo=UTC), None),
    ]


def test_moving_a_dpu_recounts_its_spaces_from_the_move_on_only(staff_client):
    plan = floorplan()
    # Three people come in through X; then DPU 283 is found to have been hung facing outside from second 150.
    event_ingest(events=[event(plan.dpu_283, s) for s in (100, 200, 300)], now=NOW)
    before_move = SpaceOccupancy.objects.get(space=plan.a, timestamp=at(100))

    response = staff_client.post(
        "/dpu/283/assignments",
        {"doorway": plan.x.id, "enters": None, "valid_from": at(150).isoformat()},
        format="json",
    )

    assert response.status_code == 201
    # Before the move: untouched (same count, same last change). After it: the two +1 go outside, held at 0.
    assert SpaceOccupancy.objects.get(pk=before_move.pk).modified == before_move.modified
    assert list(SpaceOccupancy.objects.filter(space=plan.a).order_by("timestamp").values_list("count", flat=True)) == [
        1,
        0,
        0,
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"enters": "b"}, "enters"),  # B is not a side of doorway X
        ({"doorway": 999_999}, "doorway"),
        ({"enters": 999_999}, "enters"),
        ({"valid_from": "2018-02-01T00:00:00"}, "valid_from"),  # no time zone: ambiguous
        ({"valid_from": "last tuesday"}, "valid_from"),
        ({"valid_from": None}, "valid_from"),
        ({"colour": "red"}, "colour"),
    ],
    ids=[
        "enters-not-a-side",
        "unknown-doorway",
        "unknown-space",
        "naive-valid-from",
        "bad-valid-from",
        "null",
        "extra",
    ],
)
def test_bad_assignment_is_refused_and_changes_nothing(staff_client, change, field):
    plan = floorplan()
    body = {"doorway": plan.x.id, "enters": plan.a.id, "valid_from": "2018-02-01T00:00:00Z", **change}
    if body["enters"] == "b":
        body["enters"] = plan.b.id
    before = assignments_of(plan.dpu_283)

    response = staff_client.post("/dpu/283/assignments", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert assignments_of(plan.dpu_283) == before


@pytest.mark.parametrize("field", ["doorway", "enters", "valid_from"])
def test_assignment_missing_a_field_is_refused(staff_client, field):
    plan = floorplan()
    body = {"doorway": plan.x.id, "enters": plan.a.id, "valid_from": "2018-02-01T00:00:00Z"}
    del body[field]

    response = staff_client.post("/dpu/283/assignments", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert DpuAssignment.objects.filter(dpu=plan.dpu_283).count() == 1


def test_assignment_starting_when_another_starts_is_refused(staff_client):
    plan = floorplan()
    yard = SpaceFactory(name="Yard")
    gate = DoorwayFactory(name="Gate", side_a=None, side_b=yard)
    before = assignments_of(plan.dpu_283)

    # INSTALLED is 2000-01-01T00:00:00Z, here written in another zone: still the same instant.
    response = staff_client.post(
        "/dpu/283/assignments",
        {"doorway": gate.id, "enters": yard.id, "valid_from": "2000-01-01T02:00:00+02:00"},
        format="json",
    )

    assert response.status_code == 409
    assert "valid_from" in response.json()["errors"]
    assert assignments_of(plan.dpu_283) == before


def test_a_serial_taken_between_validation_and_insert_is_a_400(staff_client, monkeypatch):
    # Two concurrent registrations can both pass full_clean; the unique constraint decides, as a 400, not a 500.
    DpuFactory(serial=777)
    monkeypatch.setattr("dpu.models.Dpu.full_clean", lambda self, *args, **kwargs: None)

    response = staff_client.post("/dpu/", {"serial": 777}, format="json")

    assert response.status_code == 400
    assert "already registered" in response.json()["errors"]["serial"][0]
    assert Dpu.objects.filter(serial=777).count() == 1
