"""HTTP contract of counts over time: GET /space/<id>/counts and GET /counts?spaces=..., as JSON and as CSV.

Every expected bucket below is worked out by hand from the morning in `plan`: over [start, end) a bucket's `count`
is the count just before `end`, `min` and `max` the lowest and highest count at any instant of the bucket, `max_at`
the first instant `max` held, `average` the count weighted by how long it held, `entrances` and `exits` the events
in the bucket, `utilization` max / capacity (null without a capacity), `settled` whether nothing can change it.
"""

import csv
import io
from datetime import time

import pytest

from dpu.services import event_ingest
from occupancy.models import OccupancyReset, SpaceOccupancy
from occupancy.services import reset_create
from occupancy.tests.factories import NOW, at, event, floorplan
from spaces.models import Space
from spaces.services import space_update
from spaces.tests.factories import SpaceFactory

pytestmark = pytest.mark.django_db

HEADER = "space_id,start,end,count,min,max,max_at,average,entrances,exits,utilization,settled"


def database_state() -> dict:
    """What a refused request must leave as it was (a read changes nothing, refused or not)."""
    return {
        "spaces": list(Space.objects.order_by("id").values_list("id", "time_zone", "capacity", "daily_reset")),
        "resets": list(OccupancyReset.objects.order_by("id").values_list("id", "timestamp", "count")),
        "occupancy": list(
            SpaceOccupancy.objects.order_by("id").values_list(
                "id", "space_id", "timestamp", "count", "status", "modified"
            )
        ),
    }


@pytest.fixture
def plan():
    """FLOORPLAN.md's building, A holding 4 people. Through X on 2018-02-24: in at 08:05, 08:10 and 08:20, out at
    08:45 and 09:15 (UTC). A's count: 0, 1, 2, 3, 2, 1. B has no capacity and nobody in it."""
    plan = floorplan()
    Space.objects.filter(pk=plan.a.pk).update(capacity=4)
    plan.a.refresh_from_db()
    dpu = plan.dpu_283
    minutes = 60
    event_ingest(
        events=[
            event(dpu, 5 * minutes),
            event(dpu, 10 * minutes),
            event(dpu, 20 * minutes),
            event(dpu, 45 * minutes, -1),
            event(dpu, 75 * minutes, -1),
        ],
        now=NOW,
    )
    return plan


def bucket(start, end, count, low, high, high_at, average, entrances, exits, utilization, settled=True) -> dict:
    """A bucket as the API writes it; instants as HH:MM on 2018-02-24 (UTC) unless given in full."""

    def instant(value: str) -> str:
        return value if "T" in value else f"2018-02-24T{value}:00.000Z"

    return {
        "start": instant(start),
        "end": instant(end),
        "count": count,
        "min": low,
        "max": high,
        "max_at": instant(high_at),
        "average": average,
        "entrances": entrances,
        "exits": exits,
        "utilization": utilization,
        "settled": settled,
    }


MORNING = {"start": "2018-02-24T08:00:00Z", "end": "2018-02-24T10:00:00Z"}

# 08:00-09:00: 0 for 5 min, 1 for 5, 2 for 10, 3 for 25, 2 for 15: 130 person-minutes / 60.
EIGHT_TO_NINE = bucket("08:00", "09:00", 2, 0, 3, "08:20", 2.166667, 3, 1, 0.75)
# 09:00-10:00: 2 (held from before) for 15 min, then 1 for 45: 75 / 60. The max is what the hour started with.
NINE_TO_TEN = bucket("09:00", "10:00", 1, 1, 2, "09:00", 1.25, 0, 1, 0.5)


# --- GET /space/<id>/counts: the buckets -------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/"])
def test_counts_in_hourly_buckets(reader_client, plan, suffix):
    response = reader_client.get(f"/space/{plan.a.id}/counts{suffix}", {**MORNING, "interval": "1h"})

    assert response.status_code == 200
    assert response.json() == {
        "space_id": plan.a.id,
        "time_zone": "UTC",
        "start": "2018-02-24T08:00:00.000Z",
        "end": "2018-02-24T10:00:00.000Z",
        "interval": "1h",
        "buckets": [EIGHT_TO_NINE, NINE_TO_TEN],
    }


def test_counts_in_five_minute_buckets(reader_client, plan):
    """Five-minute buckets on five-minute marks are the service's five-minute blocks, read as they are."""
    response = reader_client.get(
        f"/space/{plan.a.id}/counts", {"start": "2018-02-24T08:00:00Z", "end": "2018-02-24T08:30:00Z", "interval": "5m"}
    )

    # A bucket starts with the count before it: the entrance at 08:05 is in the second bucket, which starts at 0.
    assert response.status_code == 200
    assert response.json()["buckets"] == [
        bucket("08:00", "08:05", 0, 0, 0, "08:00", 0.0, 0, 0, 0.0),
        bucket("08:05", "08:10", 1, 0, 1, "08:05", 1.0, 1, 0, 0.25),
        bucket("08:10", "08:15", 2, 1, 2, "08:10", 2.0, 1, 0, 0.5),
        bucket("08:15", "08:20", 2, 2, 2, "08:15", 2.0, 0, 0, 0.5),
        bucket("08:20", "08:25", 3, 2, 3, "08:20", 3.0, 1, 0, 0.75),
        bucket("08:25", "08:30", 3, 3, 3, "08:25", 3.0, 0, 0, 0.75),
    ]


def test_counts_without_an_interval_are_one_bucket(reader_client, plan):
    response = reader_client.get(f"/space/{plan.a.id}/counts", MORNING)

    # 0 x 5 + 1 x 5 + 2 x 10 + 3 x 25 + 2 x 30 + 1 x 45 = 205 person-minutes over 120.
    assert response.status_code == 200
    assert response.json()["interval"] is None
    assert response.json()["buckets"] == [bucket("08:00", "10:00", 1, 0, 3, "08:20", 1.708333, 3, 2, 0.75)]


def test_a_bucket_without_events_holds_the_count_it_started_with(reader_client, plan):
    response = reader_client.get(
        f"/space/{plan.a.id}/counts", {"start": "2018-02-24T08:00:00Z", "end": "2018-02-24T11:00:00Z", "interval": "1h"}
    )

    assert response.status_code == 200
    assert response.json()["buckets"] == [
        EIGHT_TO_NINE,
        NINE_TO_TEN,
        bucket("10:00", "11:00", 1, 1, 1, "10:00", 1.0, 0, 0, 0.25),
    ]


def test_counts_before_the_first_event_are_zero(reader_client, plan):
    response = reader_client.get(
        f"/space/{plan.a.id}/counts", {"start": "2018-02-24T06:00:00Z", "end": "2018-02-24T08:00:00Z", "interval": "1h"}
    )

    assert response.status_code == 200
    assert response.json()["buckets"] == [
        bucket("06:00", "07:00", 0, 0, 0, "06:00", 0.0, 0, 0, 0.0),
        bucket("07:00", "08:00", 0, 0, 0, "07:00", 0.0, 0, 0, 0.0),
    ]


def test_the_last_bucket_is_cut_at_end(reader_client, plan):
    response = reader_client.get(f"/space/{plan.a.id}/counts", {**MORNING, "interval": "90m"})

    # 08:00-09:30: 0x5 + 1x5 + 2x10 + 3x25 + 2x30 + 1x15 = 175 / 90; 09:30-10:00: 1 throughout.
    assert response.status_code == 200
    assert response.json()["interval"] == "90m"
    assert response.json()["buckets"] == [
        bucket("08:00", "09:30", 1, 0, 3, "08:20", 1.944444, 3, 2, 0.75),
        bucket("09:30", "10:00", 1, 1, 1, "09:30", 1.0, 0, 0, 0.25),
    ]


def test_max_at_is_the_first_instant_the_max_was_reached(reader_client):
    plan = floorplan()
    dpu = plan.dpu_283
    # 1 at 08:00:30, 2 at 08:01, 1 at 08:02, 2 again at 08:03.
    event_ingest(events=[event(dpu, 30), event(dpu, 60), event(dpu, 120, -1), event(dpu, 180)], now=NOW)

    response = reader_client.get(
        f"/space/{plan.a.id}/counts", {"start": "2018-02-24T08:00:00Z", "end": "2018-02-24T08:05:00Z"}
    )

    # 0 x 30 s + 1 x 30 + 2 x 60 + 1 x 60 + 2 x 120 = 450 person-seconds over 300.
    assert response.json()["buckets"] == [
        bucket("08:00", "08:05", 2, 0, 2, "2018-02-24T08:01:00.000Z", 1.5, 3, 1, None)
    ]


def test_utilization_is_null_without_a_capacity(reader_client, plan):
    event_ingest(events=[event(plan.dpu_423, 30 * 60, -1)], now=NOW)  # one walks from A into B at 08:30

    response = reader_client.get(f"/space/{plan.b.id}/counts", MORNING)

    # B: 0 for 30 min, then 1 for 90: 90 / 120. Z's -1 leaves A, so for B it is an entrance.
    assert response.json()["buckets"] == [bucket("08:00", "10:00", 1, 0, 1, "08:30", 0.75, 1, 0, None)]


def test_exits_count_every_exit_even_from_an_empty_space(reader_client):
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 60, -1), event(plan.dpu_283, 120), event(plan.dpu_283, 180, -1)], now=NOW)

    response = reader_client.get(
        f"/space/{plan.a.id}/counts", {"start": "2018-02-24T08:00:00Z", "end": "2018-02-24T08:05:00Z"}
    )

    # Held at zero: 0, 0, 1 (for 60 s), 0.
    assert response.json()["buckets"] == [bucket("08:00", "08:05", 0, 0, 1, "08:02", 0.2, 1, 2, None)]


def test_the_daily_reset_shows_in_min_and_count_but_is_no_exit(reader_client, plan):
    space_update(space=plan.a, daily_reset=time(9, 30), now=NOW)

    response = reader_client.get(f"/space/{plan.a.id}/counts", {**MORNING, "interval": "1h"})

    # 09:00-10:00: 2 for 15 min, 1 for 15, 0 from 09:30: 45 / 60.
    assert response.json()["buckets"] == [EIGHT_TO_NINE, bucket("09:00", "10:00", 0, 0, 2, "09:00", 0.75, 0, 1, 0.5)]


# --- a bucket starts from the count after everything before it; an event at its start is in it ------------------
# The issue: min and max run "from the count the bucket started with (after everything before `start`) through each
# event and reset in [start, end)". So a count that held until the very instant a bucket starts is its first value.


def test_an_exit_at_a_bucket_start_is_in_that_bucket_after_the_count_it_started_with(reader_client):
    plan = floorplan()
    dpu = plan.dpu_283
    # In at 08:30 and 08:40, out at 09:00:00 exactly: the 09:00 bucket starts at 2, and its exit takes it to 1.
    event_ingest(events=[event(dpu, 30 * 60), event(dpu, 40 * 60), event(dpu, 60 * 60, -1)], now=NOW)

    response = reader_client.get(f"/space/{plan.a.id}/counts", {**MORNING, "interval": "1h"})

    assert reader_client.get(f"/space/{plan.a.id}/count", {"ts": "2018-02-24T09:00:00Z"}).json()["count"] == 1
    assert response.json()["buckets"][1] == bucket("09:00", "10:00", 1, 1, 2, "09:00", 1.0, 0, 1, None)


def test_an_entrance_at_a_bucket_start_is_in_that_bucket_after_the_count_it_started_with(reader_client):
    plan = floorplan()
    # In at 08:00:00 exactly: the 08:00 bucket starts at 0, and its entrance takes it to 1 at once.
    event_ingest(events=[event(plan.dpu_283, 0)], now=NOW)

    response = reader_client.get(f"/space/{plan.a.id}/counts", {**MORNING, "interval": "1h"})

    assert reader_client.get(f"/space/{plan.a.id}/count", {"ts": "2018-02-24T08:00:00Z"}).json()["count"] == 1
    assert response.json()["buckets"][0] == bucket("08:00", "09:00", 1, 0, 1, "08:00", 1.0, 1, 0, None)


def test_a_daily_reset_at_a_day_bucket_start_applies_after_the_count_the_day_started_with(reader_client):
    plan = floorplan()
    Space.objects.filter(pk=plan.a.pk).update(daily_reset=time(0, 0))
    event_ingest(events=[event(plan.dpu_283, 14 * 3600)], now=NOW)  # one in at 22:00Z, set to 0 at midnight

    response = reader_client.get(
        f"/space/{plan.a.id}/counts", {"start": "2018-02-24", "end": "2018-02-26", "interval": "1d"}
    )

    # The 25th starts with the 1 left from the 24th; the reset at its first instant sets 0, which holds all day.
    assert reader_client.get(f"/space/{plan.a.id}/count", {"ts": "2018-02-25T00:00:00Z"}).json()["count"] == 0
    assert response.json()["buckets"] == [
        bucket("00:00", "2018-02-25T00:00:00.000Z", 1, 0, 1, "22:00", 0.083333, 1, 0, None),
        bucket(
            "2018-02-25T00:00:00.000Z",
            "2018-02-26T00:00:00.000Z",
            0,
            0,
            1,
            "2018-02-25T00:00:00.000Z",
            0.0,
            0,
            0,
            None,
        ),
    ]


# --- settled ----------------------------------------------------------------------------------------------------


def test_a_bucket_that_ends_in_the_future_is_not_settled(reader_client, plan):
    response = reader_client.get(
        f"/space/{plan.a.id}/counts", {"start": "2018-02-24T08:00:00Z", "end": "2100-01-01T00:00:00Z"}
    )

    assert response.status_code == 200
    assert [b["settled"] for b in response.json()["buckets"]] == [False]


def test_buckets_from_a_reset_made_just_now_are_not_settled(staff_client, plan):
    assert (
        staff_client.post(
            f"/space/{plan.a.id}/resets", {"timestamp": "2018-02-24T09:30:00Z", "count": 5}, format="json"
        ).status_code
        == 201
    )

    response = staff_client.get(
        f"/space/{plan.a.id}/counts", {"start": "2018-02-24T08:00:00Z", "end": "2018-02-24T11:00:00Z", "interval": "1h"}
    )

    # 09:00-10:00: 2 for 15 min, 1 for 15, 5 from 09:30: 195 / 60. Rows the reset just wrote may still change.
    assert response.json()["buckets"] == [
        EIGHT_TO_NINE,
        bucket("09:00", "10:00", 5, 1, 5, "09:30", 3.25, 0, 1, 1.25, settled=False),
        bucket("10:00", "11:00", 5, 5, 5, "10:00", 5.0, 0, 0, 1.25, settled=False),
    ]


@pytest.mark.parametrize(
    ("interval", "start", "end"),
    [
        ("5m", "09:25", "09:35"),  # a block a bucket
        ("15m", "09:15", "09:45"),  # blocks summed up
        ("7m", "09:23", "09:37"),  # off the five-minute marks: the rows themselves
    ],
)
@pytest.mark.parametrize("reset_at_0932", [True, False])
def test_a_bucket_whose_starting_count_just_changed_is_not_settled(
    reader_client, plan, interval, start, end, reset_at_0932
):
    """The second bucket starts at 09:30 with the count of the row before it. Its own rows (a reset at 09:32 long
    ago, or none at all) are settled; when a late exit at 09:29 lands now, the count it starts with changes, so
    the bucket may still change too. The reset bounds the recalculation: the late exit leaves its row as it was.
    Without it, an entrance at 09:50 makes the exit late."""
    if reset_at_0932:
        reset_create(space=plan.a, timestamp=at(92 * 60), count=4, now=NOW)
    else:
        event_ingest(events=[event(plan.dpu_283, 110 * 60)], now=NOW)
    query = {"start": f"2018-02-24T{start}:00Z", "end": f"2018-02-24T{end}:00Z", "interval": interval}
    path = f"/space/{plan.a.id}/counts"
    before = reader_client.get(path, query).json()["buckets"]

    event_ingest(events=[event(plan.dpu_283, 89 * 60, -1)])  # now: the rows it writes may still change

    after = reader_client.get(path, query).json()["buckets"]
    assert [b["settled"] for b in before] == [True, True]
    assert [b["settled"] for b in after] == [False, False]
    assert (before[1]["min"], after[1]["min"]) == (1, 0)  # 1 person from 09:15, none after the late exit


# --- local days -------------------------------------------------------------------------------------------------


def day_edges(response) -> list[tuple[str, str]]:
    return [(b["start"], b["end"]) for b in response.json()["buckets"]]


def test_days_are_the_spaces_local_days_and_naive_bounds_its_local_time(reader_client, plan):
    Space.objects.filter(pk=plan.a.pk).update(time_zone="America/New_York")

    response = reader_client.get(
        f"/space/{plan.a.id}/counts", {"start": "2018-02-24", "end": "2018-02-26", "interval": "1d"}
    )

    # Midnight in New York is 05:00Z. The first day: 0 until 08:05Z, ..., 1 from 09:15Z to 05:00Z the next day:
    # 300 + 1,200 + 4,500 + 3,600 + 71,100 = 80,700 person-seconds over 86,400.
    assert response.status_code == 200
    body = response.json()
    assert (body["time_zone"], body["start"], body["end"], body["interval"]) == (
        "America/New_York",
        "2018-02-24T05:00:00.000Z",
        "2018-02-26T05:00:00.000Z",
        "1d",
    )
    assert body["buckets"] == [
        bucket("05:00", "2018-02-25T05:00:00.000Z", 1, 0, 3, "08:20", 0.934028, 3, 2, 0.75),
        bucket(
            "2018-02-25T05:00:00.000Z", "2018-02-26T05:00:00.000Z", 1, 1, 1, "2018-02-25T05:00:00.000Z", 1.0, 0, 0, 0.25
        ),
    ]


@pytest.mark.parametrize(("tz", "midnight"), [("UTC", "00:00"), ("Europe/Berlin", "23:00"), ("Asia/Kolkata", "18:30")])
def test_tz_chooses_the_days_instead_of_the_spaces_time_zone(reader_client, plan, tz, midnight):
    Space.objects.filter(pk=plan.a.pk).update(time_zone="America/New_York")

    response = reader_client.get(
        f"/space/{plan.a.id}/counts", {"start": "2018-02-24", "end": "2018-02-25", "interval": "1d", "tz": tz}
    )

    day = "2018-02-23" if midnight > "12:00" else "2018-02-24"
    assert response.status_code == 200
    assert response.json()["time_zone"] == tz
    assert response.json()["start"] == f"{day}T{midnight}:00.000Z"


def test_a_local_day_across_a_daylight_saving_change_is_23_hours(reader_client, plan):
    response = reader_client.get(
        f"/space/{plan.a.id}/counts",
        {"start": "2018-03-24", "end": "2018-03-27", "interval": "1d", "tz": "Europe/Berlin"},
    )

    # Berlin moves from UTC+1 to UTC+2 on 2018-03-25.
    assert response.status_code == 200
    assert day_edges(response) == [
        ("2018-03-23T23:00:00.000Z", "2018-03-24T23:00:00.000Z"),
        ("2018-03-24T23:00:00.000Z", "2018-03-25T22:00:00.000Z"),
        ("2018-03-25T22:00:00.000Z", "2018-03-26T22:00:00.000Z"),
    ]


def test_weeks_are_seven_local_days(reader_client, plan):
    response = reader_client.get(
        f"/space/{plan.a.id}/counts",
        {"start": "2018-03-19T00:00:00", "end": "2018-04-02T00:00:00", "interval": "1w", "tz": "Europe/Berlin"},
    )

    assert day_edges(response) == [
        ("2018-03-18T23:00:00.000Z", "2018-03-25T22:00:00.000Z"),
        ("2018-03-25T22:00:00.000Z", "2018-04-01T22:00:00.000Z"),
    ]


def test_an_offset_whose_plus_arrived_as_a_space_is_read_as_plus(reader_client, plan):
    # curl -G --data "start=2018-02-24T10:00:00+02:00": the query string's + is a space.
    response = reader_client.get(
        f"/space/{plan.a.id}/counts?start=2018-02-24T10:00:00.000+02:00&end=2018-02-24T11:00:00+02:00"
    )

    assert response.status_code == 200
    assert (response.json()["start"], response.json()["end"]) == (
        "2018-02-24T08:00:00.000Z",
        "2018-02-24T09:00:00.000Z",
    )
    assert response.json()["buckets"] == [EIGHT_TO_NINE]


# --- GET /counts?spaces= ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/counts", "/counts/"])
def test_counts_of_several_spaces_in_the_order_asked(reader_client, plan, path):
    response = reader_client.get(path, {**MORNING, "interval": "1h", "spaces": f"{plan.b.id},{plan.a.id}"})

    assert response.status_code == 200
    body = response.json()
    assert [series["space_id"] for series in body] == [plan.b.id, plan.a.id]
    assert body[1]["buckets"] == [EIGHT_TO_NINE, NINE_TO_TEN]
    assert body[0]["buckets"] == [
        bucket("08:00", "09:00", 0, 0, 0, "08:00", 0.0, 0, 0, None),
        bucket("09:00", "10:00", 0, 0, 0, "09:00", 0.0, 0, 0, None),
    ]


def test_counts_of_several_spaces_each_in_its_own_time_zone(reader_client, plan):
    Space.objects.filter(pk=plan.a.pk).update(time_zone="America/New_York")

    response = reader_client.get(
        "/counts", {"spaces": f"{plan.a.id},{plan.b.id}", "start": "2018-02-24", "end": "2018-02-25", "interval": "1d"}
    )

    assert [(s["time_zone"], s["start"]) for s in response.json()] == [
        ("America/New_York", "2018-02-24T05:00:00.000Z"),
        ("UTC", "2018-02-24T00:00:00.000Z"),
    ]


def test_counts_take_up_to_100_spaces(reader_client):
    spaces = [SpaceFactory() for _ in range(100)]

    response = reader_client.get("/counts", {**MORNING, "spaces": ",".join(str(s.id) for s in reversed(spaces))})

    assert response.status_code == 200
    assert [series["space_id"] for series in response.json()] == [s.id for s in reversed(spaces)]


def test_counts_of_more_than_100_spaces_are_refused(reader_client, plan):
    before = database_state()

    response = reader_client.get("/counts", {**MORNING, "spaces": ",".join(str(n) for n in range(1, 102))})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["spaces"]
    assert "at most 100" in response.json()["errors"]["spaces"][0]
    assert database_state() == before


@pytest.mark.parametrize("spaces", ["", "a,b", "1,,2", "1;2", "-1", "0", "1.5"])
def test_counts_refuse_spaces_that_are_not_ids(reader_client, plan, spaces):
    before = database_state()

    response = reader_client.get("/counts", {**MORNING, "spaces": spaces})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["spaces"]
    assert database_state() == before


def test_counts_need_spaces(reader_client, plan):
    response = reader_client.get("/counts", MORNING)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["spaces"]


def test_counts_of_an_unknown_space_among_known_ones_are_not_found(reader_client, plan):
    before = database_state()

    response = reader_client.get("/counts", {**MORNING, "spaces": f"{plan.a.id},999999"})

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    assert database_state() == before


def test_counts_of_an_unknown_space_are_not_found(reader_client, plan):
    response = reader_client.get("/space/999999/counts", MORNING)

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


# --- refused queries, on both endpoints ---------------------------------------------------------------------------

ENDPOINTS = ["space", "counts"]


def get_counts(client, plan, endpoint: str, query: dict, **headers):
    if endpoint == "space":
        return client.get(f"/space/{plan.a.id}/counts", query, **headers)
    return client.get("/counts", {"spaces": f"{plan.a.id},{plan.b.id}", **query}, **headers)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    ("query", "missing"),
    [({"end": MORNING["end"]}, ["start"]), ({"start": MORNING["start"]}, ["end"]), ({}, ["end", "start"])],
    ids=["no-start", "no-end", "neither"],
)
def test_start_and_end_are_required(reader_client, plan, endpoint, query, missing):
    before = database_state()

    response = get_counts(reader_client, plan, endpoint, query)

    assert response.status_code == 400
    assert sorted(response.json()["errors"]) == missing
    assert database_state() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    "end",
    ["2018-02-24T08:00:00Z", "2018-02-24T07:59:59.999Z", "2018-02-24T09:00:00+01:00"],
    ids=["equal", "before", "same-instant"],
)
def test_start_must_be_before_end(reader_client, plan, endpoint, end):
    before = database_state()

    response = get_counts(reader_client, plan, endpoint, {"start": "2018-02-24T08:00:00Z", "end": end})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["end"]
    assert database_state() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("interval", ["0h", "1x", "h", "-1h", "1.5h", "1 h", "", "1H", "15", "P1D"])
def test_a_bad_interval_is_refused_naming_interval(reader_client, plan, endpoint, interval):
    before = database_state()

    response = get_counts(reader_client, plan, endpoint, {**MORNING, "interval": interval})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["interval"]
    assert database_state() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_more_than_10000_buckets_are_refused_saying_the_limit(reader_client, plan, endpoint):
    before = database_state()

    # 10,000 minutes and one second: 10,001 one-minute buckets.
    query = {"start": "2018-01-01T00:00:00Z", "end": "2018-01-07T22:40:01Z", "interval": "1m"}
    response = get_counts(reader_client, plan, endpoint, query)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["interval"]
    assert "10,000 buckets" in response.json()["errors"]["interval"][0]
    assert database_state() == before


def test_10000_buckets_are_allowed(reader_client, plan):
    query = {"start": "2018-01-01T00:00:00Z", "end": "2018-01-07T22:40:00Z", "interval": "1m"}

    response = reader_client.get(f"/space/{plan.a.id}/counts", query)

    assert response.status_code == 200
    assert len(response.json()["buckets"]) == 10_000


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "europe/berlin", "", "+02:00"])
def test_an_unknown_tz_is_refused_naming_tz(reader_client, plan, endpoint, tz):
    before = database_state()

    response = get_counts(reader_client, plan, endpoint, {**MORNING, "tz": tz})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["tz"]
    assert database_state() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("name", ["start", "end"])
def test_an_unparseable_bound_is_refused_naming_it(reader_client, plan, endpoint, name):
    before = database_state()

    response = get_counts(reader_client, plan, endpoint, {**MORNING, name: "yesterday"})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [name]
    assert database_state() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_unknown_query_parameters_are_refused_naming_them(reader_client, plan, endpoint):
    before = database_state()

    response = get_counts(reader_client, plan, endpoint, {**MORNING, "interva": "1h", "timezone": "UTC"})

    assert response.status_code == 400
    assert sorted(response.json()["errors"]) == ["interva", "timezone"]
    assert "not a query parameter" in response.json()["errors"]["interva"][0]
    assert database_state() == before


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_cache_buster_is_allowed(reader_client, plan, endpoint):
    response = get_counts(reader_client, plan, endpoint, {**MORNING, "_": "1519480912"})

    assert response.status_code == 200


def test_the_count_endpoint_names_unknown_query_parameters_too(reader_client, plan):
    response = reader_client.get(f"/space/{plan.a.id}/count", {"ts": MORNING["start"], "tz": "UTC", "_": "1"})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["tz"]


# --- CSV ----------------------------------------------------------------------------------------------------------

CSV_ROWS = [
    "{a},2018-02-24T08:00:00.000Z,2018-02-24T09:00:00.000Z,2,0,3,2018-02-24T08:20:00.000Z,2.166667,3,1,0.75,true",
    "{a},2018-02-24T09:00:00.000Z,2018-02-24T10:00:00.000Z,1,1,2,2018-02-24T09:00:00.000Z,1.25,0,1,0.5,true",
]


@pytest.mark.parametrize(
    ("query", "headers"),
    [({"format": "csv"}, {}), ({}, {"HTTP_ACCEPT": "text/csv"})],
    ids=["format-param", "accept-header"],
)
def test_counts_as_csv(reader_client, plan, query, headers):
    response = reader_client.get(f"/space/{plan.a.id}/counts", {**MORNING, "interval": "1h", **query}, **headers)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="space-{plan.a.id}-counts.csv"'
    assert response.content.decode().split("\r\n") == [HEADER, *(r.format(a=plan.a.id) for r in CSV_ROWS), ""]


def test_counts_of_several_spaces_as_csv(reader_client, plan):
    response = reader_client.get(
        "/counts", {**MORNING, "interval": "1h", "spaces": f"{plan.a.id},{plan.b.id}", "format": "csv"}
    )

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="counts.csv"'
    table = list(csv.reader(io.StringIO(response.content.decode())))
    assert table[0] == HEADER.split(",")
    assert [row[:4] for row in table[1:]] == [
        [str(plan.a.id), "2018-02-24T08:00:00.000Z", "2018-02-24T09:00:00.000Z", "2"],
        [str(plan.a.id), "2018-02-24T09:00:00.000Z", "2018-02-24T10:00:00.000Z", "1"],
        [str(plan.b.id), "2018-02-24T08:00:00.000Z", "2018-02-24T09:00:00.000Z", "0"],
        [str(plan.b.id), "2018-02-24T09:00:00.000Z", "2018-02-24T10:00:00.000Z", "0"],
    ]
    assert table[3][10] == ""  # B has no capacity: an empty cell, not "None"


def test_json_is_the_default_and_may_be_asked_for(reader_client, plan):
    default = reader_client.get(f"/space/{plan.a.id}/counts", MORNING)
    asked = reader_client.get(f"/space/{plan.a.id}/counts", {**MORNING, "format": "json"})

    assert default["Content-Type"] == asked["Content-Type"] == "application/json"
    assert "Content-Disposition" not in default
    assert default.json() == asked.json()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize(
    ("query", "headers", "status"),
    [
        ({"format": "csv", "interval": "fortnightly"}, {}, 400),
        ({"interval": "fortnightly"}, {"HTTP_ACCEPT": "text/csv"}, 400),
        ({"format": "csv", "tz": "Mars/Olympus_Mons"}, {}, 400),
        ({"format": "csv", "colour": "red"}, {}, 400),
    ],
    ids=["format-param", "accept-header", "bad-tz", "unknown-param"],
)
def test_errors_stay_json_when_csv_was_asked_for(reader_client, plan, endpoint, query, headers, status):
    before = database_state()

    response = get_counts(reader_client, plan, endpoint, {**MORNING, **query}, **headers)

    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert "Content-Disposition" not in response
    assert response.json()
    assert database_state() == before


@pytest.mark.parametrize("path", ["/counts", "/space/1/counts"])
@pytest.mark.parametrize(("query", "headers"), [({"format": "csv"}, {}), ({}, {"HTTP_ACCEPT": "text/csv"})])
def test_options_describes_the_endpoint_in_json_when_csv_was_asked_for(reader_client, plan, path, query, headers):
    """Found by Schemathesis: OPTIONS rendered the endpoint's description with the CSV renderer, a 500."""
    response = reader_client.options(f"{path}?{'&'.join(f'{k}={v}' for k, v in query.items())}", **headers)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "text/csv" in response.json()["renders"]


def test_not_found_stays_json_when_csv_was_asked_for(reader_client, plan):
    response = reader_client.get("/space/999999/counts", {**MORNING, "format": "csv"}, HTTP_ACCEPT="text/csv")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_format_xml_is_refused(reader_client, plan, endpoint):
    before = database_state()

    response = get_counts(reader_client, plan, endpoint, {**MORNING, "format": "xml"})

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert list(response.json()["errors"]) == ["format"]
    assert database_state() == before
