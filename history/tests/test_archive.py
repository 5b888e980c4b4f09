"""history_archive: whole months of events to a file, their partitions dropped, their counts still answered."""

import csv
import gzip
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from dpu.models import DpuEvent
from dpu.services import EventIn, event_ingest
from history.models import HistoryArchive
from history.partitions import Month, partitions_ensure, partitions_list
from history.services import ArchiveRefused, history_archive
from occupancy.calendar import Interval
from occupancy.models import OccupancyBlock, SpaceOccupancy
from occupancy.selectors import space_count_at, space_series
from occupancy.services import occupancy_check
from occupancy.tests.factories import floorplan

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, tzinfo=UTC)
JAN10 = datetime(2026, 1, 10, tzinfo=UTC)
# A (behind doorway X, DPU 283, +1 enters A): 1 and 2 people in January, 3 in February, 4 in March.
SENT = [
    (JAN10 + timedelta(hours=9), 1),
    (JAN10 + timedelta(hours=9, minutes=2, seconds=30), 1),
    (JAN10 + timedelta(hours=9, minutes=7), -1),
    (datetime(2026, 2, 5, 10, tzinfo=UTC), 1),
    (datetime(2026, 2, 5, 10, 1, tzinfo=UTC), 1),
    (datetime(2026, 3, 3, 8, tzinfo=UTC), 1),
]
postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="archiving drops monthly partitions")


def events(sent, serial: int = 283) -> list[EventIn]:
    return [EventIn(serial=serial, timestamp=instant, direction=direction) for instant, direction in sent]


@pytest.fixture
def building():
    plan = floorplan()
    partitions_ensure(months=[Month.parse("2026-01"), Month.parse("2026-02"), Month.parse("2026-03")], now=NOW)
    event_ingest(events=events(SENT), now=NOW)
    return plan


def count(space, at) -> int:
    return space_count_at(space=space, at=at, now=NOW).count


def day(space, interval: str, start=JAN10, end=JAN10 + timedelta(days=1)) -> list[dict]:
    (series,) = space_series(space_ids=[space.pk], start=start, end=end, interval=Interval.parse(interval), now=NOW)
    return series.buckets()


@postgresql
def test_archive_exports_the_months_events_and_drops_their_partitions(building, tmp_path):
    target = tmp_path / "events-2026-01-02.csv.gz"

    archive = history_archive(before=Month.parse("2026-03"), to=target, now=NOW)

    with gzip.open(target, "rt", newline="") as handle:
        exported = list(csv.DictReader(handle))
    assert [(row["timestamp"], row["direction"], row["dpu_id"]) for row in exported] == [
        ("2026-01-10T09:00:00.000Z", "1", "283"),
        ("2026-01-10T09:02:30.000Z", "1", "283"),
        ("2026-01-10T09:07:00.000Z", "-1", "283"),
        ("2026-02-05T10:00:00.000Z", "1", "283"),
        ("2026-02-05T10:01:00.000Z", "1", "283"),
    ]
    assert all(row["received_at"] == "2026-06-15T00:00:00.000Z" for row in exported)
    assert (archive.events, archive.before, archive.file) == (5, datetime(2026, 3, 1, tzinfo=UTC), str(target))
    assert list(DpuEvent.objects.values_list("timestamp", flat=True)) == [datetime(2026, 3, 3, 8, tzinfo=UTC)]
    assert not SpaceOccupancy.objects.filter(timestamp__lt=datetime(2026, 3, 1, tzinfo=UTC)).exists()
    with connection.cursor() as cursor:
        for table in (DpuEvent._meta.db_table, SpaceOccupancy._meta.db_table):
            months = {str(month) for month in partitions_list(cursor, table)}
            assert "2026-01" not in months and "2026-02" not in months and "2026-03" in months
    assert not list(tmp_path.glob("*.partial"))


@postgresql
def test_counts_and_counts_over_time_of_archived_months_are_still_answered(building, tmp_path):
    on_marks = [JAN10 + timedelta(hours=9, minutes=5), JAN10 + timedelta(hours=10), datetime(2026, 2, 20, tzinfo=UTC)]
    counts_before = [count(building.a, at) for at in on_marks]
    five_minutes, hours, february = (
        day(building.a, "5m"),
        day(building.a, "1h"),
        day(building.a, "1d", start=datetime(2026, 2, 1, tzinfo=UTC), end=datetime(2026, 3, 1, tzinfo=UTC)),
    )
    assert counts_before == [2, 1, 3]

    history_archive(before=Month.parse("2026-03"), to=tmp_path / "archive.csv.gz", now=NOW)

    assert [count(building.a, at) for at in on_marks] == counts_before
    # Inside five minutes that saw events, the count is the one they began with (the rows are in the file).
    assert count(building.a, JAN10 + timedelta(hours=9, minutes=3)) == 0
    assert day(building.a, "5m") == five_minutes
    assert day(building.a, "1h") == hours
    assert (
        day(building.a, "1d", start=datetime(2026, 2, 1, tzinfo=UTC), end=datetime(2026, 3, 1, tzinfo=UTC)) == february
    )
    assert OccupancyBlock.objects.filter(space=building.a, start__lt=datetime(2026, 3, 1, tzinfo=UTC)).count() == 2 + 1


@postgresql
def test_history_after_the_archive_counts_on_from_its_last_block(building, tmp_path):
    history_archive(before=Month.parse("2026-03"), to=tmp_path / "archive.csv.gz", now=NOW)

    # A late event at the start of March: the count before it is February's end (3), read from a block.
    event_ingest(events=events([(datetime(2026, 3, 1, 0, 30, tzinfo=UTC), 1)]), now=NOW)

    assert count(building.a, datetime(2026, 3, 1, 1, tzinfo=UTC)) == 4
    assert count(building.a, datetime(2026, 3, 3, 9, tzinfo=UTC)) == 5
    assert occupancy_check() == []  # the rebuild starts at the archive, from the same block


@postgresql
def test_events_into_an_archived_month_are_refused_with_409_and_nothing_is_stored(building, tmp_path, staff_client):
    history_archive(before=Month.parse("2026-03"), to=tmp_path / "archive.csv.gz", now=NOW)
    stored = DpuEvent.objects.count()
    batch = [
        {"dpu_id": 283, "timestamp": "2026-06-01T00:00:00Z", "direction": 1},
        {"dpu_id": 283, "timestamp": "2026-02-05T10:00:00Z", "direction": 1},  # a re-send of an archived event
    ]

    answer = staff_client.post("/events", batch, format="json")

    assert answer.status_code == 409
    assert answer.json()["detail"].startswith("Item 1: timestamp: falls in archived history")
    assert "2026-03" in answer.json()["detail"]
    assert DpuEvent.objects.count() == stored


@postgresql
def test_a_reset_into_an_archived_month_is_refused_with_409(building, tmp_path, staff_client):
    history_archive(before=Month.parse("2026-03"), to=tmp_path / "archive.csv.gz", now=NOW)

    answer = staff_client.post(
        f"/space/{building.a.pk}/resets", {"timestamp": "2026-02-10T12:00:00Z", "count": 0}, format="json"
    )

    assert answer.status_code == 409
    assert "archived history" in answer.json()["detail"]
    assert not building.a.resets.exists()


@postgresql
def test_counts_over_time_off_five_minute_marks_into_an_archived_month_are_refused_with_409(
    building, tmp_path, staff_client
):
    history_archive(before=Month.parse("2026-03"), to=tmp_path / "archive.csv.gz", now=NOW)

    off = staff_client.get(f"/space/{building.a.pk}/counts?start=2026-01-10T09:02:00Z&end=2026-01-10T10:00:00Z")
    on = staff_client.get(f"/space/{building.a.pk}/counts?start=2026-01-10T09:00:00Z&end=2026-01-10T10:00:00Z")
    after = staff_client.get(f"/space/{building.a.pk}/counts?start=2026-03-03T07:58:00Z&end=2026-03-03T08:03:00Z")

    assert off.status_code == 409 and "five-minute marks" in off.json()["detail"]
    assert on.status_code == 200 and on.json()["buckets"][0]["max"] == 2
    assert after.status_code == 200 and after.json()["buckets"][0]["count"] == 4


@postgresql
def test_an_archive_is_refused_for_a_month_not_begun_an_archived_one_or_an_existing_file(building, tmp_path):
    with pytest.raises(ArchiveRefused, match="has not begun"):
        history_archive(before=Month.parse("2026-07"), to=tmp_path / "a.csv.gz", now=NOW)
    (tmp_path / "taken.csv.gz").write_bytes(b"")
    with pytest.raises(ArchiveRefused, match="exists"):
        history_archive(before=Month.parse("2026-02"), to=tmp_path / "taken.csv.gz", now=NOW)
    history_archive(before=Month.parse("2026-02"), to=tmp_path / "a.csv.gz", now=NOW)
    with pytest.raises(ArchiveRefused, match="archived already"):
        history_archive(before=Month.parse("2026-02"), to=tmp_path / "b.csv.gz", now=NOW)
    assert HistoryArchive.objects.count() == 1
    assert DpuEvent.objects.filter(timestamp__lt=datetime(2026, 2, 1, tzinfo=UTC)).count() == 0
    assert DpuEvent.objects.count() == 3  # February's and March's


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL archives")
def test_sqlite_refuses_to_archive_and_changes_nothing(building, tmp_path):
    with pytest.raises(CommandError, match="PostgreSQL"):
        call_command("history_archive", "--before", "2026-03", "--to", str(tmp_path / "a.csv.gz"))
    assert DpuEvent.objects.count() == len(SENT)
    assert not (tmp_path / "a.csv.gz").exists()


def test_the_command_says_what_a_month_is(tmp_path):
    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("history_archive", "--before", "March", "--to", str(tmp_path / "a.csv.gz"))
