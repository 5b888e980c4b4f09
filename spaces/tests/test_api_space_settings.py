"""HTTP contract of a space's settings: GET and PATCH /space/<id>, the time zone, capacity and daily reset that
/space/ shows and takes, and /space/?ts=. Changing allow_negative, time_zone or daily_reset recalculates the
space's whole history before the answer; changing its name or capacity rewrites nothing."""

from datetime import time, timedelta

import pytest

from dpu.services import event_ingest
from occupancy.models import OccupancyReset, SpaceOccupancy
from occupancy.services import reset_create
from occupancy.tests.factories import NOW, at, event, floorplan, row_states
from spaces.models import Space
from spaces.tests.factories import SpaceFactory

pytestmark = pytest.mark.django_db


def database_state() -> dict:
    """What a refused request must leave as it was: every space's settings, every reset, every occupancy row."""
    return {
        "spaces": list(
            Space.objects.order_by("id").values_list(
                "id", "name", "allow_negative", "time_zone", "capacity", "daily_reset", "modified"
            )
        ),
        "resets": list(OccupancyReset.objects.order_by("id").values_list("id", "space_id", "timestamp", "count")),
        "occupancy": list(
            SpaceOccupancy.objects.order_by("id").values_list(
                "id", "space_id", "timestamp", "kind", "count", "modified"
            )
        ),
    }


def configure(space: Space, **settings) -> None:
    """Set a space's settings directly, before any of its events is stored (so that nothing needs recalculating)."""
    Space.objects.filter(pk=space.pk).update(**settings)
    space.refresh_from_db()


def count_at(client, space: Space, ts: str) -> int:
    response = client.get(f"/space/{space.id}/count", {"ts": ts})
    assert response.status_code == 200, response.json()
    return response.json()["count"]


def daily_reset_instants(space: Space) -> list[str]:
    rows = SpaceOccupancy.objects.filter(space=space, kind=SpaceOccupancy.Kind.DAILY_RESET).order_by("timestamp")
    return [row.timestamp.isoformat() for row in rows]


# --- GET /space/<id> -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/"])
def test_space_detail_shows_the_space_with_its_current_count(reader_client, suffix):
    plan = floorplan()
    configure(plan.a, time_zone="Europe/Berlin", capacity=40)
    # In, in, out through X: one person is left in A.
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_283, 10), event(plan.dpu_283, 20, -1)], now=NOW)

    response = reader_client.get(f"/space/{plan.a.id}{suffix}")

    assert response.status_code == 200
    assert response.json() == {
        "id": plan.a.id,
        "name": "A",
        "allow_negative": False,
        "time_zone": "Europe/Berlin",
        "capacity": 40,
        "daily_reset": None,
        "count": 1,
    }


@pytest.mark.parametrize("space_id", ["999999", "0"])
def test_space_detail_of_an_unknown_space_is_not_found(reader_client, space_id):
    SpaceFactory(name="Hall")

    response = reader_client.get(f"/space/{space_id}")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


# --- GET /space/ and /space/?ts= -------------------------------------------------------------------------------


def test_space_list_shows_time_zone_capacity_and_daily_reset(reader_client):
    hall = SpaceFactory(name="Hall", time_zone="America/New_York", capacity=120, daily_reset=time(4, 0))
    yard = SpaceFactory(name="Yard", allow_negative=True, daily_reset=time(23, 59, 30))

    response = reader_client.get("/space/")

    assert response.status_code == 200
    assert response.json() == [
        {
            "id": hall.id,
            "name": "Hall",
            "allow_negative": False,
            "time_zone": "America/New_York",
            "capacity": 120,
            "daily_reset": "04:00",
            "count": 0,
        },
        {
            "id": yard.id,
            "name": "Yard",
            "allow_negative": True,
            "time_zone": "UTC",
            "capacity": None,
            "daily_reset": "23:59:30",  # seconds only when set
            "count": 0,
        },
    ]


@pytest.mark.parametrize(
    ("ts", "a", "b"),
    [
        ("2018-02-24T07:59:59Z", 0, 0),  # before the first event
        ("2018-02-24T08:00:15Z", 2, 0),  # two came in from outside
        ("2018-02-24T08:00:20Z", 1, 1),  # one walked on into B, at that very instant
        ("2018-02-24T08:00:20", 1, 1),  # no zone: UTC
        ("2018-02-24T09:00:15+01:00", 2, 0),  # converted: 08:00:15Z
        ("2018-02-24T08:00:30Z", 2, 1),
    ],
)
def test_space_list_at_ts_gives_every_space_its_count_at_that_instant(reader_client, ts, a, b):
    plan = floorplan()
    event_ingest(
        events=[event(plan.dpu_283, 0), event(plan.dpu_283, 10), event(plan.dpu_423, 20, -1), event(plan.dpu_283, 30)],
        now=NOW,
    )

    response = reader_client.get("/space/", {"ts": ts})

    assert response.status_code == 200
    assert {space["name"]: space["count"] for space in response.json()} == {"A": a, "B": b}


def test_space_list_at_an_unparseable_ts_is_refused_naming_ts(reader_client):
    floorplan()
    before = database_state()

    response = reader_client.get("/space/", {"ts": "yesterday"})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["ts"]
    assert database_state() == before


# --- POST /space/ with the new settings ------------------------------------------------------------------------


def test_staff_creates_a_space_with_time_zone_capacity_and_daily_reset(staff_client):
    body = {"name": "Lobby", "time_zone": "Europe/Berlin", "capacity": 40, "daily_reset": "04:00"}

    response = staff_client.post("/space/", body, format="json")

    assert response.status_code == 201
    lobby = Space.objects.get()
    assert (lobby.time_zone, lobby.capacity, lobby.daily_reset) == ("Europe/Berlin", 40, time(4, 0))
    assert response.json() == {"id": lobby.id, **body, "allow_negative": False, "count": 0}


BAD_SETTINGS = [
    pytest.param("time_zone", "Mars/Olympus_Mons", id="time-zone-unknown"),
    pytest.param("time_zone", "europe/berlin", id="time-zone-wrong-case"),
    pytest.param("time_zone", "CEST", id="time-zone-abbreviation"),
    pytest.param("time_zone", "", id="time-zone-empty"),
    pytest.param("time_zone", None, id="time-zone-null"),
    pytest.param("capacity", 0, id="capacity-zero"),
    pytest.param("capacity", -5, id="capacity-negative"),
    pytest.param("capacity", 1.5, id="capacity-fraction"),
    pytest.param("capacity", "many", id="capacity-word"),
    pytest.param("capacity", 2**31, id="capacity-too-large"),
    pytest.param("daily_reset", "24:00", id="daily-reset-no-such-hour"),
    pytest.param("daily_reset", "04:60", id="daily-reset-no-such-minute"),
    pytest.param("daily_reset", "4am", id="daily-reset-12-hour"),
    pytest.param("daily_reset", "2018-02-24T04:00:00Z", id="daily-reset-instant"),
    pytest.param("daily_reset", 400, id="daily-reset-number"),
    pytest.param("allow_negative", "sometimes", id="allow-negative-not-a-bool"),
]


@pytest.mark.parametrize(("field", "value"), BAD_SETTINGS)
def test_a_space_with_a_bad_setting_is_refused_naming_the_field(staff_client, field, value):
    before = database_state()

    response = staff_client.post("/space/", {"name": "Lobby", field: value}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert response.json()["errors"][field]  # with the reason
    assert database_state() == before


def test_an_unknown_time_zone_is_refused_with_an_example_of_a_good_one(staff_client):
    response = staff_client.post("/space/", {"name": "Lobby", "time_zone": "Mars/Olympus_Mons"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {
        "time_zone": ["'Mars/Olympus_Mons' is not an IANA time zone name, such as Europe/Berlin or UTC."]
    }
    assert not Space.objects.exists()


# --- PATCH /space/<id>: what it changes, and what it refuses ---------------------------------------------------


@pytest.fixture
def lobby() -> Space:
    return SpaceFactory(name="Lobby", time_zone="Europe/Berlin", capacity=40, daily_reset=time(4, 0))


@pytest.mark.parametrize("suffix", ["", "/"])
def test_patch_changes_only_the_fields_given(staff_client, lobby, suffix):
    response = staff_client.patch(f"/space/{lobby.id}{suffix}", {"capacity": 50}, format="json")

    assert response.status_code == 200
    assert response.json() == {
        "id": lobby.id,
        "name": "Lobby",
        "allow_negative": False,
        "time_zone": "Europe/Berlin",
        "capacity": 50,
        "daily_reset": "04:00",
        "count": 0,
    }
    lobby.refresh_from_db()
    assert (lobby.name, lobby.time_zone, lobby.capacity, lobby.daily_reset) == ("Lobby", "Europe/Berlin", 50, time(4))


def test_patch_changes_every_setting_at_once(staff_client, lobby):
    body = {
        "name": "Foyer",
        "allow_negative": True,
        "time_zone": "America/New_York",
        "capacity": 12,
        "daily_reset": "03:30",
    }

    response = staff_client.patch(f"/space/{lobby.id}", body, format="json")

    assert response.status_code == 200
    assert response.json() == {"id": lobby.id, **body, "count": 0}
    lobby.refresh_from_db()
    assert (lobby.name, lobby.allow_negative, lobby.time_zone, lobby.capacity, lobby.daily_reset) == (
        "Foyer",
        True,
        "America/New_York",
        12,
        time(3, 30),
    )


def test_patch_with_null_clears_capacity_and_daily_reset(staff_client, lobby):
    response = staff_client.patch(f"/space/{lobby.id}", {"capacity": None, "daily_reset": None}, format="json")

    assert response.status_code == 200
    assert (response.json()["capacity"], response.json()["daily_reset"]) == (None, None)
    lobby.refresh_from_db()
    assert (lobby.capacity, lobby.daily_reset) == (None, None)


@pytest.mark.parametrize(("field", "value"), BAD_SETTINGS)
def test_patch_with_a_bad_setting_is_refused_naming_the_field(staff_client, lobby, field, value):
    before = database_state()

    response = staff_client.patch(f"/space/{lobby.id}", {field: value}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert database_state() == before


def test_patch_with_one_bad_field_changes_none_of_the_others(staff_client, lobby):
    before = database_state()

    response = staff_client.patch(
        f"/space/{lobby.id}", {"name": "Foyer", "capacity": 50, "time_zone": "Mars/Olympus_Mons"}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["time_zone"]
    assert database_state() == before


def test_patch_with_an_unknown_field_is_refused_naming_it(staff_client, lobby):
    before = database_state()

    response = staff_client.patch(f"/space/{lobby.id}", {"capacity": 50, "daily_rest": "05:00"}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["daily_rest"]
    assert database_state() == before


@pytest.mark.parametrize("field", ["id", "count"])
def test_patch_of_what_is_not_a_setting_is_refused(staff_client, lobby, field):
    before = database_state()

    response = staff_client.patch(f"/space/{lobby.id}", {field: 7}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert database_state() == before


def test_patch_to_a_name_another_space_has_is_refused(staff_client, lobby):
    SpaceFactory(name="Hall")
    before = database_state()

    response = staff_client.patch(f"/space/{lobby.id}", {"name": "Hall"}, format="json")

    assert response.status_code == 409
    assert list(response.json()["errors"]) == ["name"]
    assert database_state() == before


@pytest.mark.parametrize("body", [["capacity", 50], "capacity", 50], ids=["array", "string", "number"])
def test_patch_body_must_be_a_json_object(staff_client, lobby, body):
    before = database_state()

    response = staff_client.patch(f"/space/{lobby.id}", body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["detail"]
    assert database_state() == before


def test_patch_of_an_unknown_space_is_not_found(staff_client, lobby):
    before = database_state()

    response = staff_client.patch("/space/999999", {"capacity": 50}, format="json")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    assert database_state() == before


# --- PATCH: what it recalculates ---------------------------------------------------------------------------------


def test_patch_allowing_negative_recalculates_the_history_before_answering(staff_client):
    plan = floorplan()
    # Out of an empty A (held at 0), then one in: 1 now. Allowed below zero: -1, then 0.
    event_ingest(events=[event(plan.dpu_283, 0, -1), event(plan.dpu_283, 10)], now=NOW)
    assert count_at(staff_client, plan.a, "2018-02-24T08:00:05Z") == 0

    response = staff_client.patch(f"/space/{plan.a.id}", {"allow_negative": True}, format="json")

    assert response.status_code == 200
    assert (response.json()["allow_negative"], response.json()["count"]) == (True, 0)
    assert count_at(staff_client, plan.a, "2018-02-24T08:00:05Z") == -1
    assert count_at(staff_client, plan.a, "2018-02-24T08:00:10Z") == 0


def test_patch_forbidding_negative_recalculates_the_history_before_answering(staff_client):
    plan = floorplan(b_allow_negative=True)
    # Through Z: one enters A from an empty B (B -1), then one goes back (B 0). Held at zero: B 0, then 1.
    event_ingest(events=[event(plan.dpu_423, 0), event(plan.dpu_423, 10, -1)], now=NOW)
    assert count_at(staff_client, plan.b, "2018-02-24T08:00:05Z") == -1

    response = staff_client.patch(f"/space/{plan.b.id}", {"allow_negative": False}, format="json")

    assert response.status_code == 200
    assert (response.json()["allow_negative"], response.json()["count"]) == (False, 1)
    assert count_at(staff_client, plan.b, "2018-02-24T08:00:05Z") == 0


def test_turning_allow_negative_off_while_a_reset_below_zero_exists_is_refused(staff_client):
    plan = floorplan(b_allow_negative=True)
    event_ingest(events=[event(plan.dpu_423, 0)], now=NOW)
    reset_create(space=plan.b, timestamp=at(60), count=-2, now=NOW)
    before = database_state()

    response = staff_client.patch(f"/space/{plan.b.id}", {"allow_negative": False}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["allow_negative"]
    assert "delete them first" in response.json()["errors"]["allow_negative"][0]
    assert database_state() == before
    assert Space.objects.get(pk=plan.b.pk).allow_negative is True


def test_turning_allow_negative_off_is_allowed_when_the_resets_are_not_below_zero(staff_client):
    plan = floorplan(b_allow_negative=True)
    reset_create(space=plan.b, timestamp=at(60), count=2, now=NOW)

    response = staff_client.patch(f"/space/{plan.b.id}", {"allow_negative": False}, format="json")

    assert response.status_code == 200
    assert (response.json()["allow_negative"], response.json()["count"]) == (False, 2)


@pytest.fixture
def night_owl(staff_client):
    """Space A with a daily reset at 04:00 UTC, and one person who came in at 02:30Z on 2018-02-24 and stayed."""
    plan = floorplan()
    configure(plan.a, daily_reset=time(4, 0))
    event_ingest(events=[event(plan.dpu_283, -5.5 * 3600)], now=NOW)  # 08:00Z - 5.5 h
    assert count_at(staff_client, plan.a, "2018-02-24T03:59:59.999Z") == 1
    assert count_at(staff_client, plan.a, "2018-02-24T04:00:00Z") == 0
    return plan.a


def test_patch_of_time_zone_moves_the_daily_resets(staff_client, night_owl):
    response = staff_client.patch(f"/space/{night_owl.id}", {"time_zone": "Europe/Berlin"}, format="json")

    # 04:00 in Berlin (UTC+1 in February) is 03:00Z.
    assert response.status_code == 200
    assert (response.json()["time_zone"], response.json()["count"]) == ("Europe/Berlin", 0)
    assert count_at(staff_client, night_owl, "2018-02-24T02:59:59.999Z") == 1
    assert count_at(staff_client, night_owl, "2018-02-24T03:00:00Z") == 0
    assert count_at(staff_client, night_owl, "2018-02-24T03:30:00Z") == 0
    assert daily_reset_instants(night_owl) == ["2018-02-24T03:00:00+00:00"]


def test_patch_of_time_zone_westwards_moves_the_daily_reset_later(staff_client, night_owl):
    response = staff_client.patch(f"/space/{night_owl.id}", {"time_zone": "America/New_York"}, format="json")

    # 04:00 in New York (UTC-5 in February) is 09:00Z: the person stays five hours longer.
    assert response.status_code == 200
    assert count_at(staff_client, night_owl, "2018-02-24T04:30:00Z") == 1
    assert count_at(staff_client, night_owl, "2018-02-24T08:59:59.999Z") == 1
    assert count_at(staff_client, night_owl, "2018-02-24T09:00:00Z") == 0
    assert daily_reset_instants(night_owl) == ["2018-02-24T09:00:00+00:00"]


def test_patch_of_daily_reset_moves_the_daily_resets(staff_client, night_owl):
    response = staff_client.patch(f"/space/{night_owl.id}", {"daily_reset": "03:15"}, format="json")

    assert response.status_code == 200
    assert (response.json()["daily_reset"], response.json()["count"]) == ("03:15", 0)
    assert count_at(staff_client, night_owl, "2018-02-24T03:14:59.999Z") == 1
    assert count_at(staff_client, night_owl, "2018-02-24T03:15:00Z") == 0
    assert daily_reset_instants(night_owl) == ["2018-02-24T03:15:00+00:00"]


def test_patch_removing_the_daily_reset_brings_back_the_count_it_cleared(staff_client, night_owl):
    response = staff_client.patch(f"/space/{night_owl.id}", {"daily_reset": None}, format="json")

    assert response.status_code == 200
    assert (response.json()["daily_reset"], response.json()["count"]) == (None, 1)
    assert count_at(staff_client, night_owl, "2018-02-24T04:30:00Z") == 1
    assert daily_reset_instants(night_owl) == []


def test_patch_adding_a_daily_reset_sets_the_count_to_zero_from_its_next_instant(staff_client):
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_283, 60)], now=NOW)

    response = staff_client.patch(
        f"/space/{plan.a.id}", {"daily_reset": "09:00", "time_zone": "America/New_York"}, format="json"
    )

    # 09:00 in New York is 14:00Z; nobody has come in since, so the count now is 0.
    assert response.status_code == 200
    assert response.json()["count"] == 0
    assert count_at(staff_client, plan.a, "2018-02-24T13:59:59.999Z") == 2
    assert count_at(staff_client, plan.a, "2018-02-24T14:00:00Z") == 0


@pytest.mark.parametrize(
    "body",
    [{"capacity": 12}, {"capacity": None}, {"name": "Atrium"}, {"time_zone": "UTC", "daily_reset": "04:00"}],
    ids=["capacity", "capacity-cleared", "name", "settings-unchanged"],
)
def test_patch_that_moves_no_count_does_not_rewrite_occupancy_rows(staff_client, body):
    plan = floorplan()
    configure(plan.a, daily_reset=time(4, 0), capacity=30)
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_283, 60), event(plan.dpu_283, 90, -1)], now=NOW)
    # A wrong count that any recalculation would repair: it shows whether one ran, even one that wrote no change.
    SpaceOccupancy.objects.filter(space=plan.a, timestamp=at(60)).update(count=99)
    before = row_states(plan.a)
    assert len(before) == 4  # three events and the daily reset after them

    response = staff_client.patch(f"/space/{plan.a.id}", body, format="json")

    assert response.status_code == 200
    assert row_states(plan.a) == before  # same ids, counts, statuses and `modified`


# --- the daily reset itself -------------------------------------------------------------------------------------


def test_daily_reset_sets_the_count_to_zero_every_day_at_its_local_time(staff_client):
    plan = floorplan()
    configure(plan.a, time_zone="Europe/Berlin", daily_reset=time(3, 0))  # 02:00Z in February
    day = 24 * 3600
    # Two in on the 24th; one more on the 25th; nobody leaves.
    event_ingest(
        events=[event(plan.dpu_283, 0), event(plan.dpu_283, 60), event(plan.dpu_283, day - 3600)],
        now=NOW + timedelta(days=1),
    )

    assert count_at(staff_client, plan.a, "2018-02-25T01:59:59.999Z") == 2
    assert count_at(staff_client, plan.a, "2018-02-25T02:00:00Z") == 0
    assert count_at(staff_client, plan.a, "2018-02-25T07:00:00Z") == 1
    assert count_at(staff_client, plan.a, "2018-02-26T01:59:59.999Z") == 1
    assert count_at(staff_client, plan.a, "2018-02-26T02:00:00Z") == 0
    assert count_at(staff_client, plan.a, "2018-03-10T12:00:00Z") == 0


def test_daily_reset_follows_daylight_saving_time(staff_client):
    plan = floorplan()
    configure(plan.a, time_zone="Europe/Berlin", daily_reset=time(4, 0))
    # 2018-03-25: Berlin moves from UTC+1 to UTC+2. One person comes in before the change and one after.
    march_24_noon, march_25_noon = 28 * 24 * 3600 + 4 * 3600, 29 * 24 * 3600 + 4 * 3600
    event_ingest(
        events=[event(plan.dpu_283, march_24_noon), event(plan.dpu_283, march_25_noon)],
        now=at(march_25_noon + 7 * 24 * 3600),
    )

    assert count_at(staff_client, plan.a, "2018-03-24T12:00:00Z") == 1
    assert count_at(staff_client, plan.a, "2018-03-25T01:59:59.999Z") == 1  # 04:00 CEST that morning is 02:00Z
    assert count_at(staff_client, plan.a, "2018-03-25T02:00:00Z") == 0
    assert count_at(staff_client, plan.a, "2018-03-25T12:00:00Z") == 1
    assert count_at(staff_client, plan.a, "2018-03-26T02:00:00Z") == 0
