"""DPU health: what ingest keeps up to date, the statuses and their transitions, and refused items' counters.

Every instant is fixed: ingest and the selectors take `now`; the API's clock is patched where it matters."""

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from dpu.models import Dpu, DpuClockRefusal, DpuEvent, DpuHourStat, lateness_bin, lateness_bin_upper
from dpu.selectors import STATUSES, dpu_health, dpu_health_fleet, dpu_status_counts
from dpu.services import EventIn, dpu_create, event_ingest
from dpu.tests.factories import DpuAssignmentFactory, DpuFactory
from occupancy.tests.factories import INSTALLED, NOW, at, event, floorplan

pytestmark = pytest.mark.django_db

# A clock for the API: the service's `now` while a request runs.
API_NOW = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)


def health_of(dpu: Dpu, now: datetime):
    return dpu_health(dpus=[Dpu.objects.get(pk=dpu.pk)], now=now)[0]


def late(dpu: Dpu, received: datetime, seconds: float, direction: int = 1) -> EventIn:
    """An event of `dpu` that is `seconds` late when received at `received`."""
    return EventIn(serial=dpu.serial, timestamp=received - timedelta(seconds=seconds), direction=direction)


# --- what ingest keeps -----------------------------------------------------------------------------------------


def test_ingest_keeps_the_latest_event_and_receipt_and_a_late_batch_moves_neither_back():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_283, 60)], now=NOW)

    dpu = Dpu.objects.get(serial=283)
    assert (dpu.last_event_at, dpu.last_received_at) == (at(60), NOW)

    # A batch of older events, stored later; then one that waited for the lock with an earlier `now`.
    event_ingest(events=[event(plan.dpu_283, 30)], now=NOW + timedelta(hours=1))
    event_ingest(events=[event(plan.dpu_283, 10)], now=NOW + timedelta(minutes=30))

    dpu.refresh_from_db()
    assert (dpu.last_event_at, dpu.last_received_at) == (at(60), NOW + timedelta(hours=1))
    assert Dpu.objects.get(serial=423).last_received_at is None  # not in any batch


def test_the_stored_last_event_and_receipt_equal_the_event_log():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 5), event(plan.dpu_423, 7, -1)], now=NOW)
    event_ingest(events=[event(plan.dpu_283, 3), event(plan.dpu_283, 9)], now=NOW + timedelta(minutes=3))

    for dpu in Dpu.objects.all():
        events = DpuEvent.objects.filter(dpu=dpu)
        assert dpu.last_event_at == max(e.timestamp for e in events)
        assert dpu.last_received_at == max(e.received_at for e in events)


def test_repeats_change_neither_the_last_receipt_nor_the_counts():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0)], now=NOW)

    result = event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_283, 0)], now=NOW + timedelta(hours=2))

    assert result.created == 0 and result.lateness_seconds == ()
    assert Dpu.objects.get(serial=283).last_received_at == NOW
    assert health_of(plan.dpu_283, NOW + timedelta(hours=2)).events_24h == 1


def test_ingest_returns_the_lateness_of_the_new_events_only():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0)], now=NOW)

    result = event_ingest(events=[event(plan.dpu_283, 0), late(plan.dpu_283, NOW, 2.5)], now=NOW)

    assert result.lateness_seconds == (2.5,)


def test_events_24h_counts_the_current_hour_and_the_24_before_it():
    plan = floorplan()
    first_hour = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    event_ingest(
        events=[late(plan.dpu_283, first_hour + timedelta(minutes=59), 1)], now=first_hour + timedelta(minutes=59)
    )
    event_ingest(events=[late(plan.dpu_283, first_hour + timedelta(hours=3), 1)], now=first_hour + timedelta(hours=3))

    # 10:00 is the 24th hour before 10:xx the next day: still counted; from 11:00 on it is not.
    assert health_of(plan.dpu_283, first_hour + timedelta(hours=24, minutes=59)).events_24h == 2
    assert health_of(plan.dpu_283, first_hour + timedelta(hours=25)).events_24h == 1
    assert health_of(plan.dpu_283, first_hour + timedelta(hours=28)).events_24h == 0
    assert health_of(plan.dpu_283, first_hour + timedelta(hours=28)).lateness_p95_s is None


def test_hours_no_read_looks_at_are_pruned_when_the_dpu_sends_again():
    plan = floorplan()
    start = datetime(2026, 12, 1, 10, 15, tzinfo=UTC)
    event_ingest(events=[late(plan.dpu_283, start, 1), late(plan.dpu_423, start, 1)], now=start)

    event_ingest(events=[late(plan.dpu_283, start + timedelta(hours=25), 1)], now=start + timedelta(hours=25))

    hours = sorted(DpuHourStat.objects.values_list("dpu__serial", "hour"))
    # 283's 10:00 row is gone (11:00 the next day reads from 11:00); 423 has not sent since, so its row waits.
    assert hours == [(283, datetime(2026, 12, 2, 11, 0, tzinfo=UTC)), (423, datetime(2026, 12, 1, 10, 0, tzinfo=UTC))]


@pytest.mark.parametrize(
    ("seconds", "bin_"), [(-120, 0), (0, 0), (0.999, 0), (1, 1), (1.5, 1), (2, 2), (3.9, 2), (4, 3), (10**9, 26)]
)
def test_lateness_bins_double(seconds, bin_):
    assert lateness_bin(seconds) == bin_
    if 0 < seconds < 2**25:
        assert seconds < lateness_bin_upper(bin_) <= 2 * max(seconds, 1)


def test_lateness_p95_is_the_upper_edge_of_the_bin_the_95th_percent_falls_in():
    plan = floorplan()
    received = datetime(2026, 12, 1, 10, 15, tzinfo=UTC)
    on_time = [late(plan.dpu_283, received, 3 + i / 1000) for i in range(95)]  # 3 s: bin [2, 4)
    backlog = [late(plan.dpu_283, received, 1000 + i) for i in range(5)]  # bin [512, 1024)
    event_ingest(events=on_time + backlog, now=received)

    assert health_of(plan.dpu_283, received).lateness_p95_s == 4

    event_ingest(events=[late(plan.dpu_283, received, 2000)], now=received)  # now 6 of 101 are late

    health = health_of(plan.dpu_283, received)
    assert (health.events_24h, health.lateness_p95_s) == (101, 1024)


def test_health_reads_neither_the_event_log_nor_more_queries_for_more_dpus():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_423, 0)], now=NOW)
    dpus = list(Dpu.objects.all())

    with CaptureQueriesContext(connection) as queries:
        dpu_health(dpus=dpus, now=NOW)

    assert len(queries) == 3
    assert not any(DpuEvent._meta.db_table in query["sql"] for query in queries)


# --- statuses --------------------------------------------------------------------------------------------------


def test_a_dpu_goes_from_never_seen_to_ok_to_silent_and_back(settings):
    settings.DPU_SILENT_AFTER = timedelta(hours=24)
    plan = floorplan()
    assert health_of(plan.dpu_283, NOW).status == "never_seen"

    event_ingest(events=[event(plan.dpu_283, 0)], now=NOW)

    assert health_of(plan.dpu_283, NOW).status == "ok"
    assert health_of(plan.dpu_283, NOW + timedelta(hours=24)).status == "ok"  # silent only after longer
    assert health_of(plan.dpu_283, NOW + timedelta(hours=24, milliseconds=1)).status == "silent"

    event_ingest(events=[event(plan.dpu_283, 1)], now=NOW + timedelta(hours=30))

    assert health_of(plan.dpu_283, NOW + timedelta(hours=30)).status == "ok"


def test_silence_is_measured_by_the_setting(settings):
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0)], now=NOW)
    settings.DPU_SILENT_AFTER = timedelta(minutes=10)

    assert health_of(plan.dpu_283, NOW + timedelta(minutes=10)).status == "ok"
    assert health_of(plan.dpu_283, NOW + timedelta(minutes=11)).status == "silent"


def test_a_dpu_no_assignment_covers_is_unassigned_even_when_silent():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0)], now=NOW)
    hanging = plan.dpu_283.assignments.get()
    hanging.valid_to = NOW + timedelta(hours=1)
    hanging.save()

    assert health_of(plan.dpu_283, NOW).status == "ok"
    assert health_of(plan.dpu_283, NOW + timedelta(hours=1)).status == "unassigned"  # valid_to is exclusive
    assert health_of(plan.dpu_283, NOW + timedelta(days=30)).status == "unassigned"  # retired: no alarm
    assert health_of(plan.dpu_283, NOW).assignment == hanging


def test_a_dpu_that_never_sent_is_never_seen_whether_or_not_it_hangs_anywhere():
    unassigned = DpuFactory(serial=512)
    assigned = DpuAssignmentFactory(dpu__serial=513, valid_from=INSTALLED).dpu

    assert health_of(unassigned, NOW).status == "never_seen"
    assert health_of(assigned, NOW).status == "never_seen"


def test_status_counts_have_every_status_and_agree_with_the_health_of_each_dpu():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0)], now=NOW - timedelta(days=3))  # silent by NOW
    DpuFactory(serial=512)  # never seen

    counts = dpu_status_counts(now=NOW)

    assert counts == {"silent": 1, "never_seen": 2, "unassigned": 0, "ok": 0}
    assert list(counts) == list(STATUSES)
    fleet = dpu_health_fleet(now=NOW)
    assert {status: sum(h.status == status for h in fleet) for status in STATUSES} == counts


def test_the_fleet_is_worst_first_then_the_longest_silent_first():
    plan = floorplan()
    DpuAssignmentFactory(dpu__serial=600, valid_from=INSTALLED)
    DpuAssignmentFactory(dpu__serial=700, valid_from=INSTALLED)
    event_ingest(events=[event(plan.dpu_283, 0)], now=NOW - timedelta(days=2))
    event_ingest(events=[event(plan.dpu_423, 0)], now=NOW - timedelta(days=3))
    event_ingest(events=[EventIn(serial=600, timestamp=at(0), direction=1)], now=NOW)
    DpuFactory(serial=512)

    fleet = dpu_health_fleet(now=NOW)

    assert [(h.serial, h.status) for h in fleet] == [
        (423, "silent"),
        (283, "silent"),
        (512, "never_seen"),
        (700, "never_seen"),
        (600, "ok"),
    ]


# --- refused items ---------------------------------------------------------------------------------------------


def post(client, *items):
    with mock.patch("django.utils.timezone.now", return_value=API_NOW):
        return client.post("/events", list(items), format="json")


def item(serial: int, timestamp: str) -> dict:
    return {"dpu_id": serial, "timestamp": timestamp, "direction": 1}


def refusals() -> list[tuple]:
    return list(
        DpuClockRefusal.objects.order_by("dpu__serial", "reason").values_list(
            "dpu__serial", "reason", "count", "last_timestamp", "last_refused_at"
        )
    )


def test_an_item_before_2000_is_refused_stores_nothing_and_is_counted_against_its_dpu(staff_client):
    floorplan()

    first = post(staff_client, item(283, "2018-02-24T08:00:00Z"), item(283, "1970-01-01T00:03:12Z"))
    second = post(staff_client, item(283, "1999-12-31T23:59:59Z"))

    assert first.status_code == second.status_code == 400
    assert DpuEvent.objects.count() == 0
    assert refusals() == [(283, "clock_before_2000", 2, datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), API_NOW)]


def test_an_item_too_far_ahead_is_counted_apart_and_the_dpu_shows_the_latest_refusal(staff_client):
    floorplan()
    post(staff_client, item(423, "1970-01-01T00:00:00Z"))
    ahead = (API_NOW + timedelta(minutes=6)).isoformat()

    with mock.patch("django.utils.timezone.now", return_value=API_NOW + timedelta(seconds=5)):
        response = staff_client.post("/events", item(423, ahead), format="json")

    assert response.status_code == 400
    assert [(serial, reason, count) for serial, reason, count, *_ in refusals()] == [
        (423, "clock_ahead", 1),
        (423, "clock_before_2000", 1),
    ]
    with mock.patch("django.utils.timezone.now", return_value=API_NOW + timedelta(seconds=10)):
        shown = staff_client.get("/dpu/423").json()
    assert {key: value for key, value in shown.items() if "refused" in key} == {
        "refused_clock_ahead": 1,
        "refused_clock_before_2000": 1,
        "last_refused_at": "2026-12-01T10:30:05.000Z",
        "last_refused_timestamp": "2026-12-01T10:36:00.000Z",
        "last_refused_reason": "clock_ahead",
    }
    assert shown["status"] == "never_seen"  # nothing of it was ever stored


def test_clock_refusals_of_unregistered_dpus_and_other_refusals_are_not_stored(staff_client):
    floorplan()

    unknown = post(staff_client, item(999, "1970-01-01T00:00:00Z"))
    direction = post(staff_client, {**item(283, "1970-01-01T00:00:00Z"), "direction": 2})

    assert unknown.status_code == direction.status_code == 400
    assert refusals() == []


def test_a_dpu_token_cannot_make_another_dpus_clock_look_broken(client):
    floorplan()
    _, token = dpu_create(serial=512)
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {token}"

    with mock.patch("django.utils.timezone.now", return_value=API_NOW):
        other = client.post("/events", [item(283, "1970-01-01T00:00:00Z")], content_type="application/json")
        own = client.post("/events", [item(512, "1970-01-01T00:00:00Z")], content_type="application/json")

    assert other.status_code == own.status_code == 400
    assert [(serial, reason, count) for serial, reason, count, *_ in refusals()] == [(512, "clock_before_2000", 1)]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (item(283, "1970-01-01T00:00:00Z"), "clock_before_2000"),
        (item(283, "2027-01-01T00:00:00Z"), "clock_ahead"),
        (item(999, "2018-02-24T08:00:00Z"), "unknown_dpu"),
        ({**item(283, "2018-02-24T08:00:00Z"), "direction": 0}, "invalid"),
    ],
)
def test_every_refused_item_is_recorded_in_the_metrics_by_reason(staff_client, body, reason):
    floorplan()

    with mock.patch("observability.metrics.item_refused") as refused:
        response = post(staff_client, body)

    assert response.status_code == 400
    refused.assert_called_once_with(reason=reason)


def test_a_stored_batch_is_recorded_in_the_metrics_with_the_lateness_of_its_new_events(staff_client):
    floorplan()
    post(staff_client, item(283, "2026-12-01T10:29:00Z"))

    with mock.patch("observability.metrics.events_ingested") as ingested:
        response = post(staff_client, item(283, "2026-12-01T10:29:00Z"), item(283, "2026-12-01T10:29:30Z"))

    assert response.status_code == 201
    ingested.assert_called_once_with(received=2, created=1, duplicates=1, lateness_seconds=(30.0,))


# --- the API ---------------------------------------------------------------------------------------------------


def test_the_dpu_list_and_detail_show_each_dpus_health(reader_client):
    plan = floorplan()
    received = API_NOW - timedelta(minutes=10)
    event_ingest(events=[late(plan.dpu_283, received, 3), late(plan.dpu_283, received, 1.5)], now=received)
    DpuFactory(serial=512)

    with mock.patch("django.utils.timezone.now", return_value=API_NOW):
        listed = reader_client.get("/dpu/").json()
        detail = reader_client.get("/dpu/283").json()

    assert listed[0] == {
        "serial": 283,
        "status": "ok",
        "assigned": True,
        "last_event_at": "2026-12-01T10:19:58.500Z",
        "last_received_at": "2026-12-01T10:20:00.000Z",
        "events_24h": 2,
        "lateness_p95_s": 4,
        "refused_clock_ahead": 0,
        "refused_clock_before_2000": 0,
        "last_refused_at": None,
        "last_refused_timestamp": None,
        "last_refused_reason": None,
    }
    assert [(dpu["serial"], dpu["status"], dpu["assigned"]) for dpu in listed] == [
        (283, "ok", True),
        (423, "never_seen", True),
        (512, "never_seen", False),
    ]
    assert detail == {**listed[0], "assignment": detail["assignment"]}
    assert detail["assignment"]["doorway"] == plan.x.id
