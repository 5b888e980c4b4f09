"""HTTP contract of GET /space/<id>/count, and the sample building set up and fed entirely through the API."""

import csv
import random
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from config.api import parse_instant
from dpu.models import DpuEvent
from dpu.services import event_ingest
from occupancy.models import SpaceOccupancy
from occupancy.tests.factories import NOW, SAMPLE_CSV, event, floorplan

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan():
    """FLOORPLAN.md's building; through X, at T0 (2018-02-24T08:00Z) +0 s, +60 s and +120 s: in, in, out."""
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_283, 60), event(plan.dpu_283, 120, -1)], now=NOW)
    return plan


@pytest.mark.parametrize("suffix", ["", "/"])
def test_count_answers_with_and_without_trailing_slash(reader_client, plan, suffix):
    response = reader_client.get(f"/space/{plan.a.id}/count{suffix}", {"ts": "2018-02-24T08:01:00.000Z"})

    assert response.status_code == 200
    assert response.json() == {"space_id": plan.a.id, "ts": "2018-02-24T08:01:00.000Z", "count": 2, "settled": True}


@pytest.mark.parametrize(
    ("ts", "rendered", "count"),
    [
        ("2018-02-24T08:01:00Z", "2018-02-24T08:01:00.000Z", 2),
        ("2018-02-24T08:01:00.000+00:00", "2018-02-24T08:01:00.000Z", 2),
        ("2018-02-24T08:00:59.999Z", "2018-02-24T08:00:59.999Z", 1),  # the event at 08:01 is not in yet
        ("2018-02-24T08:02:00Z", "2018-02-24T08:02:00.000Z", 1),  # the event at that very instant counts
        ("2018-02-24T08:01:00", "2018-02-24T08:01:00.000Z", 2),  # no zone: UTC
        ("2018-02-24T09:01:00+01:00", "2018-02-24T08:01:00.000Z", 2),  # converted, not read as 09:01 UTC
        ("2018-02-24T03:01:30-05:00", "2018-02-24T08:01:30.000Z", 2),
        ("2018-02-24T08:01:00.000999Z", "2018-02-24T08:01:00.000Z", 2),  # rendered to the millisecond
        ("2018-02-24", "2018-02-24T00:00:00.000Z", 0),  # a bare date is midnight UTC, before the first event
        ("2018-02-25", "2018-02-25T00:00:00.000Z", 1),
        ("2017-01-01T00:00:00Z", "2017-01-01T00:00:00.000Z", 0),
    ],
)
def test_count_at_an_instant(reader_client, plan, ts, rendered, count):
    response = reader_client.get(f"/space/{plan.a.id}/count", {"ts": ts})

    assert response.status_code == 200
    assert response.json() == {"space_id": plan.a.id, "ts": rendered, "count": count, "settled": True}


def test_count_without_ts_is_now_and_not_yet_settled(reader_client, plan):
    before = timezone.now()

    response = reader_client.get(f"/space/{plan.a.id}/count")

    after = timezone.now()
    body = response.json()
    assert response.status_code == 200
    assert body["ts"].endswith("Z") and len(body["ts"]) == len("2018-02-24T08:01:00.000Z")
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= parse_instant(
        body["ts"], naive_is_utc=False
    )
    assert parse_instant(body["ts"], naive_is_utc=False) <= after
    assert (body["count"], body["settled"]) == (1, False)  # a late event could still change the present


def test_count_is_not_settled_where_a_late_event_just_rewrote_history(reader_client, plan):
    event_ingest(events=[event(plan.dpu_283, 30)], now=timezone.now())  # arrives now, belongs at 08:00:30

    rewritten = reader_client.get(f"/space/{plan.a.id}/count", {"ts": "2018-02-24T08:01:00Z"}).json()
    untouched = reader_client.get(f"/space/{plan.a.id}/count", {"ts": "2018-02-24T08:00:10Z"}).json()

    assert (rewritten["count"], rewritten["settled"]) == (3, False)
    assert (untouched["count"], untouched["settled"]) == (1, True)


def test_a_cache_buster_is_allowed(reader_client, plan):
    response = reader_client.get(f"/space/{plan.a.id}/count", {"ts": "2018-02-24T08:01:00Z", "_": "1519480912"})

    assert response.status_code == 200
    assert response.json()["count"] == 2


def test_an_unknown_query_parameter_is_refused_naming_it(reader_client, plan):
    response = reader_client.get(f"/space/{plan.a.id}/count", {"at": "2018-02-24T08:01:00Z"})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["at"]
    assert "not a query parameter" in response.json()["errors"]["at"][0]


def test_an_offset_whose_plus_arrived_as_a_space_is_read_as_plus(reader_client, plan):
    # curl -G --data "ts=2018-02-24T09:01:00+01:00": the query string's + is a space.
    response = reader_client.get(f"/space/{plan.a.id}/count?ts=2018-02-24T09:01:00+01:00")

    assert response.status_code == 200
    assert response.json()["ts"] == "2018-02-24T08:01:00.000Z"
    assert response.json()["count"] == 2


@pytest.mark.parametrize(
    "ts",
    [
        "",
        "yesterday",
        "1519480912",
        "2018-02-30",
        "2018-02-24T25:00:00Z",
        "24/02/2018 08:01",
        "9999-12-31T23:59:59-01:00",  # valid text, but past the last representable instant in UTC
    ],
    ids=["empty", "word", "epoch", "no-such-day", "no-such-hour", "local-format", "out-of-range"],
)
def test_unparseable_ts_is_refused_naming_ts(reader_client, plan, ts):
    response = reader_client.get(f"/space/{plan.a.id}/count", {"ts": ts})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["ts"]
    assert response.json()["errors"]["ts"]  # with the reason


@pytest.mark.parametrize("space_id", ["999999", "0", "9" * 18])
def test_count_of_an_unknown_space_is_not_found(reader_client, plan, space_id):
    response = reader_client.get(f"/space/{space_id}/count", {"ts": "2018-02-24T08:01:00Z"})

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_count_of_a_space_without_events_is_zero(reader_client, plan):
    response = reader_client.get(f"/space/{plan.b.id}/count", {"ts": "2018-02-25T00:00:00Z"})

    assert response.status_code == 200
    assert response.json()["count"] == 0


@pytest.mark.parametrize("space", ["a", "b", "missing"])
def test_count_is_one_query_besides_the_token(reader_client, plan, space, django_assert_num_queries):
    space_id = {"a": plan.a.id, "b": plan.b.id, "missing": 999999}[space]

    with django_assert_num_queries(2):  # the token's user, then the count (or the 404) in one statement
        response = reader_client.get(f"/space/{space_id}/count", {"ts": "2018-02-24T08:01:00Z"})

    assert response.status_code == (404 if space == "missing" else 200)


def test_unparseable_ts_is_refused_with_the_reason(reader_client, plan):
    response = reader_client.get(f"/space/{plan.a.id}/count", {"ts": "yesterday"})

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "ts": ["'yesterday' is not an ISO-8601 timestamp, such as 2018-02-24T08:45:21.893Z."]
    }


# --- the sample building, end to end through the API ----------------------------------------------------------

KNOWN_AT = "2018-02-26T16:08:02.170Z"
AFTER_ALL = "2018-03-03T00:00:00Z"


def sample_rows() -> list[dict]:
    """fixtures/dpu_data.csv as posted JSON items, exactly as written (strings, duplicates and all)."""
    with SAMPLE_CSV.open(newline="") as handle:
        return list(csv.DictReader(handle))


def expected_count(items: list[dict], *, space: str, until: datetime, faces) -> int:
    """A reference count written straight from FLOORPLAN.md, independent of the service: each distinct event
    once, in time order (increments first), held at zero. `faces(serial, instant)` says which named side a +1
    enters and which it leaves (None: outside)."""
    distinct = {
        (parse_instant(i["timestamp"], naive_is_utc=False), int(i["dpu_id"]), int(i["direction"])) for i in items
    }
    changes = []
    for instant, serial, direction in distinct:
        enters, leaves = faces(serial, instant)
        delta = direction if enters == space else -direction if leaves == space else 0
        if delta and instant <= until:
            changes.append((instant, -delta, serial, delta))
    count = 0
    for *_, delta in sorted(changes):
        count = max(0, count + delta)
    return count


def build_floorplan_through_the_api(client) -> dict[str, int]:
    """FLOORPLAN.md's building made by POSTs only; returns the ids by name."""

    def created(path: str, body: dict) -> dict:
        response = client.post(path, body, format="json")
        assert response.status_code == 201, response.json()
        return response.json()

    ids = {"A": created("/space/", {"name": "A"})["id"], "B": created("/space/", {"name": "B"})["id"]}
    ids["X"] = created("/doorway/", {"name": "X", "sides": [None, ids["A"]]})["id"]
    ids["Z"] = created("/doorway/", {"name": "Z", "sides": [ids["B"], ids["A"]]})["id"]
    for serial, doorway in ((283, "X"), (423, "Z")):
        created("/dpu/", {"serial": serial})
        # Both DPUs face A: a +1 enters A.
        created(
            f"/dpu/{serial}/assignments",
            {"doorway": ids[doorway], "enters": ids["A"], "valid_from": "2000-01-01T00:00:00Z"},
        )
    return ids


def post_shuffled(client, items: list[dict], *, seed: int) -> tuple[int, int]:
    """Post `items` in a random order, in batches of random size; return (received, created) in total."""
    rng = random.Random(seed)
    items = items[:]
    rng.shuffle(items)
    received = created = 0
    while items:
        size = rng.randint(1, 150)
        batch, items = items[:size], items[size:]
        response = client.post("/events", batch, format="json")
        assert response.status_code in (200, 201), response.json()
        received += response.json()["received"]
        created += response.json()["created"]
    return received, created


def count(client, space_id: int, ts: str) -> int:
    response = client.get(f"/space/{space_id}/count", {"ts": ts})
    assert response.status_code == 200
    return response.json()["count"]


def as_built(serial: int, instant: datetime) -> tuple[str | None, str | None]:
    return ("A", None) if serial == 283 else ("A", "B")


@pytest.mark.parametrize("seed", [1, 2])
def test_sample_data_posted_shuffled_in_batches_gives_the_known_counts(staff_client, seed):
    ids = build_floorplan_through_the_api(staff_client)
    items = sample_rows()

    received, created = post_shuffled(staff_client, items, seed=seed)

    # 563 rows, 33 of them re-sends: counted once whichever batch they arrive in.
    assert (received, created) == (563, 530)
    assert DpuEvent.objects.count() == 530
    assert count(staff_client, ids["A"], KNOWN_AT) == 3
    assert count(staff_client, ids["A"], "2018-02-26T16:08:02.169Z") == 2  # just before the event at KNOWN_AT
    assert count(staff_client, ids["A"], AFTER_ALL) == 4
    assert {s["name"]: s["count"] for s in staff_client.get("/space/").json()} == {
        "A": 4,
        "B": expected_count(items, space="B", until=datetime.max.replace(tzinfo=UTC), faces=as_built),
    }
    # The reference agrees with FLOORPLAN.md's known results, so it can judge the move below.
    assert expected_count(items, space="A", until=parse_instant(KNOWN_AT, naive_is_utc=False), faces=as_built) == 3


def test_moving_a_dpu_through_the_api_recounts_from_the_move_only(staff_client):
    ids = build_floorplan_through_the_api(staff_client)
    items = sample_rows()
    post_shuffled(staff_client, items, seed=3)
    moved_at = datetime(2018, 2, 28, tzinfo=UTC)
    before_move = set(
        SpaceOccupancy.objects.filter(timestamp__lt=moved_at).values_list("id", "event_id", "count", "modified")
    )

    # DPU 283 turns out to have hung facing outside from 2018-02-28: from then on, its +1 leaves A.
    response = staff_client.post(
        "/dpu/283/assignments",
        {"doorway": ids["X"], "enters": None, "valid_from": "2018-02-28T00:00:00Z"},
        format="json",
    )

    assert response.status_code == 201
    assert [(a["enters"], a["valid_from"], a["valid_to"]) for a in staff_client.get("/dpu/283/assignments").json()] == [
        (ids["A"], "2000-01-01T00:00:00.000Z", "2018-02-28T00:00:00.000Z"),
        (None, "2018-02-28T00:00:00.000Z", None),
    ]

    def turned(serial: int, instant: datetime) -> tuple[str | None, str | None]:
        if serial == 283 and instant >= moved_at:
            return (None, "A")
        return as_built(serial, instant)

    end = datetime(2018, 3, 3, tzinfo=UTC)
    expected = expected_count(items, space="A", until=end, faces=turned)
    assert expected != 4  # the move matters for the test to mean anything
    assert count(staff_client, ids["A"], AFTER_ALL) == expected
    assert count(staff_client, ids["A"], KNOWN_AT) == 3
    assert count(staff_client, ids["B"], AFTER_ALL) == expected_count(items, space="B", until=end, faces=turned)
    # Rows before the move were neither rewritten nor removed.
    after_move = set(
        SpaceOccupancy.objects.filter(timestamp__lt=moved_at).values_list("id", "event_id", "count", "modified")
    )
    assert after_move == before_move


def test_an_event_just_now_counts_at_once(staff_client):
    ids = build_floorplan_through_the_api(staff_client)
    just_now = timezone.now() - timedelta(seconds=1)

    response = staff_client.post(
        "/events", {"dpu_id": 283, "timestamp": just_now.isoformat(), "direction": 1}, format="json"
    )

    assert response.status_code == 201
    assert staff_client.get(f"/space/{ids['A']}/count").json()["count"] == 1
    assert count(staff_client, ids["A"], (just_now - timedelta(seconds=1)).isoformat()) == 0


@pytest.mark.parametrize(
    "path", ["/space/abc/count", "/space/1234567890123456789/count", "/dpu/123456789012345678901/assignments", "/nope"]
)
def test_a_path_that_matches_nothing_answers_json_not_found(reader_client, path):
    response = reader_client.get(path)

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
