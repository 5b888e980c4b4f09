"""HTTP contract of one DPU: reading and removing it, rotating its token, correcting its assignments, and reading
its raw event log a page at a time."""

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from config.paging import cursor_encode
from dpu.models import Dpu, DpuAssignment, DpuEvent
from dpu.services import dpu_create, event_ingest
from dpu.tests.factories import DpuAssignmentFactory, DpuEventFactory, DpuFactory
from occupancy.tests.factories import INSTALLED, NOW, T0, at, counts, event, floorplan
from spaces.tests.factories import DoorwayFactory

pytestmark = pytest.mark.django_db


def dpu_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def named(response) -> set[str]:
    """The fields and parameters an error body names, at its top level or under `errors`."""
    body = response.json()
    return (set(body) | set(body.get("errors", {}))) - {"detail", "errors"}


def post_event(client: APIClient, serial: int, seconds: float):
    body = {"dpu_id": serial, "timestamp": at(seconds).isoformat(), "direction": 1}
    return client.post("/events", body, format="json")


# --- GET /dpu/<serial> -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/dpu/283", "/dpu/283/"])
def test_get_dpu_shows_its_serial_and_where_it_hangs_now(reader_client, path):
    plan = floorplan()
    hanging = plan.dpu_283.assignments.get()

    response = reader_client.get(path)

    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in ("serial", "assignment")} == {
        "serial": 283,
        "assignment": {
            "id": hanging.id,
            "dpu": 283,
            "doorway": plan.x.id,
            "enters": plan.a.id,
            "valid_from": "2000-01-01T00:00:00.000Z",
            "valid_to": None,
        },
    }


def test_get_dpu_that_hangs_nowhere_now_shows_a_null_assignment(reader_client):
    dpu = DpuFactory(serial=512)
    DpuAssignmentFactory(dpu=dpu, valid_from=INSTALLED, valid_to=T0)  # ended in 2018

    response = reader_client.get("/dpu/512")

    assert response.status_code == 200
    assert response.json()["assignment"] is None
    assert response.json()["assigned"] is False


@pytest.mark.parametrize("serial", ["999", "99999999999999999999"[:19]])
def test_get_unknown_dpu_is_404(reader_client, serial):
    assert reader_client.get(f"/dpu/{serial}").status_code == 404


# --- DELETE /dpu/<serial> --------------------------------------------------------------------------------------


def test_deleting_a_dpu_without_events_removes_it_and_its_assignments(staff_client):
    dpu = DpuFactory(serial=512)
    DpuAssignmentFactory(dpu=dpu)
    DpuFactory(serial=513)

    response = staff_client.delete("/dpu/512")

    assert response.status_code == 204
    assert list(Dpu.objects.values_list("serial", flat=True)) == [513]
    assert not DpuAssignment.objects.exists()


def test_deleting_a_dpu_with_events_is_a_conflict_and_removes_nothing(staff_client):
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0)], now=NOW)

    response = staff_client.delete("/dpu/283")

    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "has sent events" in detail and "valid_to" in detail and "rotate its token" in detail
    assert Dpu.objects.filter(serial=283).exists()
    assert plan.dpu_283.assignments.count() == 1
    assert DpuEvent.objects.filter(dpu=plan.dpu_283).count() == 1
    assert counts(plan.a) == [1]


def test_deleting_an_unknown_dpu_is_404(staff_client):
    assert staff_client.delete("/dpu/512").status_code == 404


def test_a_reader_may_get_a_dpu_but_not_delete_it(reader_client):
    DpuFactory(serial=512)

    assert reader_client.get("/dpu/512").status_code == 200
    assert reader_client.delete("/dpu/512").status_code == 403
    assert Dpu.objects.filter(serial=512).exists()


def test_a_dpu_token_may_not_read_its_dpu_or_its_events_or_delete_it():
    dpu, token = dpu_create(serial=512)
    client = dpu_client(token)

    assert client.get("/dpu/512").status_code == 403
    assert client.get("/dpu/512/events").status_code == 403
    assert client.get("/dpu/512/assignments").status_code == 403
    assert client.delete("/dpu/512").status_code == 403
    assert client.post("/dpu/512/token").status_code == 403
    assert Dpu.objects.get(serial=512).token_hash == dpu.token_hash


# --- POST /dpu/<serial>/token ----------------------------------------------------------------------------------


def test_rotating_the_token_refuses_the_old_one_at_once_and_the_new_one_posts_events(staff_client):
    plan = floorplan()
    _, old = dpu_create(serial=512)
    DpuAssignmentFactory(dpu=Dpu.objects.get(serial=512), doorway=plan.x, enters=plan.a, valid_from=INSTALLED)
    assert post_event(dpu_client(old), 512, 0).status_code == 201

    response = staff_client.post("/dpu/512/token")

    assert response.status_code == 201
    body = response.json()
    assert body.keys() == {"serial", "token"} and body["serial"] == 512
    new = body["token"]
    assert new.startswith("dpu_") and new != old
    assert Dpu.objects.get(serial=512).token_hash == Dpu.hash_token(new)  # only its hash is kept
    assert post_event(dpu_client(old), 512, 10).status_code == 401
    assert post_event(dpu_client(new), 512, 20).status_code == 201
    assert list(DpuEvent.objects.filter(dpu__serial=512).values_list("timestamp", flat=True)) == [at(0), at(20)]


def test_a_reader_may_not_rotate_a_token(reader_client):
    dpu, token = dpu_create(serial=512)

    assert reader_client.post("/dpu/512/token").status_code == 403
    assert Dpu.objects.get(serial=512).token_hash == Dpu.hash_token(token)


def test_rotating_the_token_of_an_unknown_dpu_is_404(staff_client):
    assert staff_client.post("/dpu/512/token").status_code == 404


# --- PATCH and DELETE /dpu/<serial>/assignments/<id> -----------------------------------------------------------


def test_patching_an_assignment_recalculates_the_spaces_it_touches(staff_client):
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_283, 10), event(plan.dpu_283, 20)], now=NOW)
    assert counts(plan.a) == [1, 2, 3]
    hanging = plan.dpu_283.assignments.get()

    # It was taken down at 15s: the event at 20s was someone else's doing, not a person entering A.
    response = staff_client.patch(f"/dpu/283/assignments/{hanging.id}", {"valid_to": at(15).isoformat()}, format="json")

    assert response.status_code == 200
    assert response.json() == {
        "id": hanging.id,
        "dpu": 283,
        "doorway": plan.x.id,
        "enters": plan.a.id,
        "valid_from": "2000-01-01T00:00:00.000Z",
        "valid_to": "2018-02-24T08:00:15.000Z",
    }
    assert counts(plan.a) == [1, 2]
    assert DpuEvent.objects.filter(dpu=plan.dpu_283).count() == 3  # the raw log keeps the event


def test_patching_an_assignment_to_another_doorway_moves_its_events(staff_client):
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_283, 10)], now=NOW)
    hanging = plan.dpu_283.assignments.get()

    response = staff_client.patch(
        f"/dpu/283/assignments/{hanging.id}", {"doorway": plan.z.id, "enters": plan.b.id}, format="json"
    )

    assert response.status_code == 200
    assert (response.json()["doorway"], response.json()["enters"]) == (plan.z.id, plan.b.id)
    assert counts(plan.b) == [1, 2]
    assert counts(plan.a) == [0, 0]  # they left A, which was empty and does not go below 0


@pytest.mark.parametrize(
    "body, field",
    [
        ({"valid_to": "2000-01-01T00:00:00Z"}, "valid_to"),  # not after its start
        ({"enters": 999}, "enters"),
        ({"doorway": "Z"}, "doorway"),
        ({"valid_from": "yesterday"}, "valid_from"),
        ({"dpu": 423}, "dpu"),
    ],
    ids=["ends-before-start", "unknown-space", "doorway-not-an-id", "bad-instant", "unknown-field"],
)
def test_an_invalid_assignment_patch_is_a_400_and_changes_nothing(staff_client, body, field):
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0)], now=NOW)
    hanging = plan.dpu_283.assignments.get()

    response = staff_client.patch(f"/dpu/283/assignments/{hanging.id}", body, format="json")

    assert response.status_code == 400
    assert field in named(response)
    assert DpuAssignment.objects.get(pk=hanging.pk).valid_to is None
    assert counts(plan.a) == [1]


def test_an_assignment_patch_into_a_side_its_doorway_lacks_is_a_400_with_a_sentence(staff_client):
    plan = floorplan()
    hanging = plan.dpu_283.assignments.get()

    response = staff_client.patch(f"/dpu/283/assignments/{hanging.id}", {"enters": plan.b.id}, format="json")

    assert response.status_code == 400
    assert named(response) == {"enters"}
    assert "Doorway X does not lead into that side." in str(response.json())
    assert DpuAssignment.objects.get(pk=hanging.pk).enters == plan.a


def test_an_assignment_patch_overlapping_another_is_a_409(staff_client):
    plan = floorplan()
    w = DoorwayFactory(name="W", side_a=None, side_b=plan.b)
    plan.dpu_283.assignments.update(valid_to=at(10))
    later = DpuAssignmentFactory(dpu=plan.dpu_283, doorway=w, enters=plan.b, valid_from=at(10))

    response = staff_client.patch(f"/dpu/283/assignments/{later.id}", {"valid_from": at(5).isoformat()}, format="json")

    assert response.status_code == 409
    assert "already has an assignment during that time" in response.json()["detail"]
    assert DpuAssignment.objects.get(pk=later.pk).valid_from == at(10)


def test_deleting_an_assignment_uncounts_its_events_and_keeps_them(staff_client):
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_423, 5, -1)], now=NOW)
    assert counts(plan.a) == [1, 0]
    hanging = plan.dpu_283.assignments.get()

    response = staff_client.delete(f"/dpu/283/assignments/{hanging.id}")

    assert response.status_code == 204
    assert not DpuAssignment.objects.filter(pk=hanging.pk).exists()
    assert counts(plan.a) == [0]  # only 423's exit is left, and A does not go below 0
    assert DpuEvent.objects.filter(dpu=plan.dpu_283).count() == 1


def test_an_assignment_of_another_dpu_or_unknown_is_404(staff_client):
    plan = floorplan()
    of_423 = plan.dpu_423.assignments.get()

    assert staff_client.patch(f"/dpu/283/assignments/{of_423.id}", {}, format="json").status_code == 404
    assert staff_client.delete(f"/dpu/283/assignments/{of_423.id}").status_code == 404
    assert staff_client.delete("/dpu/283/assignments/9999999999999999999").status_code == 404
    assert DpuAssignment.objects.filter(pk=of_423.pk).exists()


def test_a_reader_may_not_correct_or_delete_an_assignment(reader_client):
    plan = floorplan()
    hanging = plan.dpu_283.assignments.get()

    patched = reader_client.patch(f"/dpu/283/assignments/{hanging.id}", {"valid_to": at(15).isoformat()}, format="json")
    deleted = reader_client.delete(f"/dpu/283/assignments/{hanging.id}")

    assert (patched.status_code, deleted.status_code) == (403, 403)
    assert DpuAssignment.objects.get(pk=hanging.pk).valid_to is None


# --- GET /dpu/<serial>/events ----------------------------------------------------------------------------------


def logged(dpu: Dpu, seconds: float, direction: int = 1, received: float = 3600) -> DpuEvent:
    return DpuEventFactory(dpu=dpu, timestamp=at(seconds), direction=direction, received_at=at(received))


def test_the_event_log_is_the_raw_events_in_timestamp_order(reader_client):
    dpu, other = DpuFactory(serial=512), DpuFactory(serial=513)
    late = logged(dpu, 20, -1, received=7200)
    early = logged(dpu, 10)
    logged(other, 15)

    response = reader_client.get("/dpu/512/events")

    assert response.status_code == 200
    assert "Link" not in response
    assert response.json() == [
        {
            "id": early.id,
            "dpu_id": 512,
            "timestamp": "2018-02-24T08:00:10.000Z",
            "direction": 1,
            "received_at": "2018-02-24T09:00:00.000Z",
        },
        {
            "id": late.id,
            "dpu_id": 512,
            "timestamp": "2018-02-24T08:00:20.000Z",
            "direction": -1,
            "received_at": "2018-02-24T10:00:00.000Z",
        },
    ]


def test_the_event_log_keeps_start_inclusive_and_end_exclusive(reader_client):
    dpu = DpuFactory(serial=512)
    for seconds in (0, 10, 20, 30):
        logged(dpu, seconds)

    response = reader_client.get("/dpu/512/events", {"start": at(10).isoformat(), "end": "2018-02-24T08:00:30Z"})

    assert response.status_code == 200
    assert [e["timestamp"] for e in response.json()] == ["2018-02-24T08:00:10.000Z", "2018-02-24T08:00:20.000Z"]


def follow(client, url: str) -> tuple[list[int], int]:
    """Every event id from `url` on, following Link headers; and how many pages that took."""
    ids, pages = [], 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        ids += [e["id"] for e in response.json()]
        pages += 1
        link = response.get("Link")
        url = link[1 : link.index(">")] if link else None
        if link:
            assert link.startswith("<http://testserver/dpu/512/events?") and link.endswith('>; rel="next"')
    return ids, pages


def test_event_log_pages_follow_the_link_header_with_no_duplicates_and_no_gaps(reader_client):
    dpu = DpuFactory(serial=512)
    # Two events share each instant (one in, one out), so a page often ends between them: the id breaks the tie.
    made = [logged(dpu, seconds, direction) for seconds in range(7) for direction in (1, -1)]
    expected = [e.id for e in sorted(made, key=lambda e: (e.timestamp, e.id))]

    first = reader_client.get("/dpu/512/events", {"limit": 3})
    ids, pages = follow(reader_client, "/dpu/512/events?limit=3")

    assert [e["id"] for e in first.json()] == expected[:3]
    assert first["Link"].startswith("<http://testserver/dpu/512/events?") and "limit=3" in first["Link"]
    assert ids == expected
    assert pages == 5  # 3 + 3 + 3 + 3 + 2


def test_event_log_pages_keep_the_range_and_a_page_that_ends_the_log_has_no_link(reader_client):
    dpu = DpuFactory(serial=512)
    made = [logged(dpu, seconds) for seconds in range(10)]

    ids, pages = follow(reader_client, f"/dpu/512/events?limit=2&start={at(2).isoformat()}&end=2018-02-24T08:00:08Z")
    exact = reader_client.get("/dpu/512/events", {"limit": 10})

    assert ids == [e.id for e in made[2:8]]
    assert pages == 3
    assert len(exact.json()) == 10 and "Link" not in exact


def test_event_log_pages_are_stable_when_events_arrive_between_them(reader_client):
    dpu = DpuFactory(serial=512)
    made = [logged(dpu, seconds) for seconds in (10, 20, 30)]

    first = reader_client.get("/dpu/512/events", {"limit": 2})
    logged(dpu, 5)  # a late event, before the page already read
    link = first["Link"]
    rest = reader_client.get(link[1 : link.index(">")])

    assert [e["id"] for e in rest.json()] == [made[2].id]


def test_event_log_limit_defaults_to_one_thousand(reader_client):
    dpu = DpuFactory(serial=512)
    DpuEvent.objects.bulk_create(
        DpuEvent(dpu=dpu, timestamp=T0 + timedelta(seconds=n), direction=1, received_at=T0) for n in range(1001)
    )

    response = reader_client.get("/dpu/512/events")

    assert len(response.json()) == 1000
    assert "Link" in response


@pytest.mark.parametrize("limit", ["0", "-1", "10001", "ten", "1.5", "", "١٢"])
def test_a_bad_limit_is_a_400_naming_limit(reader_client, limit):
    DpuFactory(serial=512)

    response = reader_client.get("/dpu/512/events", {"limit": limit})

    assert response.status_code == 400
    assert named(response) == {"limit"}


def test_a_limit_of_ten_thousand_is_accepted(reader_client):
    DpuFactory(serial=512)

    assert reader_client.get("/dpu/512/events", {"limit": 10000}).status_code == 200


@pytest.mark.parametrize(
    "cursor",
    [
        "nonsense!",
        "",
        cursor_encode(["2018-02-24T08:00:00", 1]),
        cursor_encode([1, 1]),
        cursor_encode([T0, "1"]),
        cursor_encode([T0]),
        "W10",
        "e30",
    ],
    ids=["not-base64", "empty", "naive", "number-for-time", "text-for-id", "short", "empty-list", "object"],
)
def test_a_bad_cursor_is_a_400_naming_cursor(reader_client, cursor):
    DpuFactory(serial=512)

    response = reader_client.get("/dpu/512/events", {"cursor": cursor})

    assert response.status_code == 400
    assert named(response) == {"cursor"}


@pytest.mark.parametrize(
    "params, field",
    [
        ({"since": "2018-02-24"}, "since"),
        ({"start": "yesterday"}, "start"),
        ({"start": "2018-02-25", "end": "2018-02-24"}, "end"),
    ],
)
def test_bad_event_log_parameters_are_a_400_naming_them(reader_client, params, field):
    DpuFactory(serial=512)

    response = reader_client.get("/dpu/512/events", params)

    assert response.status_code == 400
    assert named(response) == {field}


def test_the_event_log_of_an_unknown_dpu_is_404(reader_client):
    assert reader_client.get("/dpu/512/events").status_code == 404
