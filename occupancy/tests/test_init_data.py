"""`manage.py init_data`: the sample building of FLOORPLAN.md and its events, loaded once however often it runs."""

from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from dpu.models import Dpu, DpuAssignment, DpuEvent
from occupancy.models import SpaceOccupancy
from occupancy.tests.factories import INSTALLED
from spaces.models import Doorway, Space

pytestmark = pytest.mark.django_db

KNOWN_AT = "2018-02-26T16:08:02.170Z"
HEADER = '"timestamp","direction","dpu_id"\n'
GOOD_283 = '"2018-02-24T08:45:21.893Z","1","283"\n'
GOOD_423 = '"2018-02-24T14:01:52.470Z",-1,"423"\n'


def init_data(*args: str) -> str:
    out = StringIO()
    call_command("init_data", *args, stdout=out)
    return out.getvalue()


def csv_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "events.csv"
    path.write_text(text)
    return path


def nothing_stored() -> bool:
    models = (Space, Doorway, Dpu, DpuAssignment, DpuEvent, SpaceOccupancy)
    return all(not model.objects.exists() for model in models)


def snapshot() -> dict[str, list]:
    """Every row init_data writes, with what a second run would change if it wrote anything."""
    return {
        "spaces": list(Space.objects.order_by("id").values_list("id", "name", "allow_negative", "modified")),
        "doorways": list(Doorway.objects.order_by("id").values_list("id", "name", "side_a", "side_b", "modified")),
        "dpus": list(Dpu.objects.order_by("id").values_list("id", "serial", "modified")),
        "assignments": list(
            DpuAssignment.objects.order_by("id").values_list("id", "dpu", "doorway", "enters", "valid_from", "valid_to")
        ),
        "events": list(DpuEvent.objects.order_by("id").values_list("id", "dpu", "timestamp", "direction")),
        "occupancy": list(
            SpaceOccupancy.objects.order_by("id").values_list("id", "space", "event", "count", "status", "modified")
        ),
    }


def test_init_data_builds_the_floorplan_building():
    init_data()

    a, b = Space.objects.get(name="A"), Space.objects.get(name="B")
    assert Space.objects.count() == 2
    assert {d.name: d.sides for d in Doorway.objects.all()} == {"X": (None, a.id), "Z": (b.id, a.id)}
    # Each DPU over its doorway, facing A, since before the first event.
    assert list(
        DpuAssignment.objects.order_by("dpu__serial").values_list(
            "dpu__serial", "doorway__name", "enters", "valid_from", "valid_to"
        )
    ) == [(283, "X", a.id, INSTALLED, None), (423, "Z", a.id, INSTALLED, None)]


def test_init_data_stores_each_duplicate_once():
    output = init_data()

    assert "563 rows, 530 new events, 33 duplicates" in output
    assert DpuEvent.objects.count() == 530
    assert DpuEvent.objects.filter(dpu__serial=423).count() == 38  # DPU 423 never re-sends in the sample
    assert SpaceOccupancy.objects.filter(space__name="A").count() == 530  # every event passes through A


def test_init_data_prints_each_space_id_and_final_count():
    output = init_data()

    a, b = Space.objects.get(name="A"), Space.objects.get(name="B")
    assert f"space A: id {a.id}, count 4" in output
    assert f"space B: id {b.id}, count 9" in output


def test_known_results_through_the_count_endpoint(reader_client):
    init_data()
    a = Space.objects.get(name="A")

    at_known = reader_client.get(f"/space/{a.id}/count", {"ts": KNOWN_AT})
    just_before = reader_client.get(f"/space/{a.id}/count", {"ts": "2018-02-26T16:08:02.169Z"})
    now = reader_client.get(f"/space/{a.id}/count")

    assert at_known.json() == {"space_id": a.id, "ts": KNOWN_AT, "count": 3, "settled": True}
    assert just_before.json()["count"] == 2
    assert now.json()["count"] == 4
    assert {s["name"]: s["count"] for s in reader_client.get("/space/").json()} == {"A": 4, "B": 9}


def test_running_init_data_twice_changes_nothing():
    init_data()
    first = snapshot()

    output = init_data()

    assert "563 rows, 0 new events, 563 duplicates" in output
    assert "count 4" in output
    assert snapshot() == first


def test_init_data_completes_a_building_made_partly_by_hand():
    # Someone made space A already; init_data uses it instead of failing on the duplicate name.
    a = Space.objects.create(name="A")

    init_data()

    assert Space.objects.get(name="A").id == a.id
    assert Space.objects.count() == 2
    assert SpaceOccupancy.objects.filter(space=a).order_by("-timestamp").first().count == 4


def test_init_data_loads_another_csv(tmp_path):
    path = csv_file(tmp_path, HEADER + GOOD_283 + GOOD_423)

    output = init_data("--csv", str(path))

    assert "2 rows, 2 new events, 0 duplicates" in output
    # One person came in through X, then left A for B.
    assert list(SpaceOccupancy.objects.order_by("space__name", "timestamp").values_list("space__name", "count")) == [
        ("A", 1),
        ("A", 0),
        ("B", 1),
    ]
    assert f"space A: id {Space.objects.get(name='A').id}, count 0" in output
    assert f"space B: id {Space.objects.get(name='B').id}, count 1" in output


@pytest.mark.parametrize(
    ("bad_row", "reason"),
    [
        ('"2018-02-24T14:01:52.470Z","0","423"\n', "direction"),
        ('"2018-02-24T14:01:52.470Z","up","423"\n', "direction"),
        ('"2018-02-24T14:01:52.470","1","423"\n', "timestamp"),  # no time zone
        ('"24/02/2018 14:01","1","423"\n', "timestamp"),
        ('"2018-02-24T14:01:52.470Z","1","DPU-423"\n', "dpu_id"),
        ('"2018-02-24T14:01:52.470Z","1","999"\n', "dpu_id"),  # no such DPU: refused at ingest
        ('"2018-02-24T14:01:52.470Z","1"\n', "dpu_id"),  # a short row
    ],
    ids=["direction-0", "direction-word", "no-zone", "bad-timestamp", "text-dpu", "unknown-dpu", "short-row"],
)
def test_a_bad_row_stops_the_load_naming_its_line_and_stores_nothing(tmp_path, bad_row, reason):
    path = csv_file(tmp_path, HEADER + GOOD_283 + bad_row + GOOD_423)

    with pytest.raises(CommandError) as error:
        init_data("--csv", str(path))

    assert f"line 3: {reason}" in str(error.value)
    assert nothing_stored()  # not even the building


def test_an_event_far_in_the_future_stops_the_load(tmp_path):
    ahead = (timezone.now() + timedelta(hours=1)).isoformat()
    path = csv_file(tmp_path, HEADER + GOOD_283 + GOOD_423 + f'"{ahead}","1","283"\n')

    with pytest.raises(CommandError, match="line 4: timestamp"):
        init_data("--csv", str(path))

    assert nothing_stored()


def test_the_line_named_counts_blank_lines(tmp_path):
    # Blank lines are skipped, but they are still lines of the file the person will open.
    path = csv_file(tmp_path, HEADER + GOOD_283 + "\n\n" + '"2018-02-24T14:01:52.470Z","1","999"\n' + "\n\n")

    with pytest.raises(CommandError, match=r"line 5: dpu_id: No DPU with serial 999"):
        init_data("--csv", str(path))

    assert nothing_stored()


def test_a_csv_without_the_needed_columns_is_refused(tmp_path):
    path = csv_file(tmp_path, '"timestamp","dpu_id"\n"2018-02-24T08:45:21.893Z","283"\n')

    with pytest.raises(CommandError, match="direction"):
        init_data("--csv", str(path))

    assert nothing_stored()


@pytest.mark.parametrize("where", ["missing.csv", "."], ids=["missing-file", "directory"])
def test_a_path_that_is_no_file_is_refused(tmp_path, where):
    with pytest.raises(CommandError, match="No CSV file"):
        init_data("--csv", str(tmp_path / where))

    assert nothing_stored()


def test_a_csv_that_is_not_utf8_is_refused_and_stores_nothing(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        HEADER.encode() + GOOD_283.encode() + '"2018-02-24T09:00:00.000Z","1","28\xe9"\n'.encode("latin-1")
    )

    with pytest.raises(CommandError, match="is not UTF-8 text"):
        init_data("--csv", str(path))

    assert nothing_stored()


def test_init_data_shows_each_new_dpus_token_once():
    first = init_data()
    second = init_data()

    for serial in (283, 423):
        line = next(line for line in first.splitlines() if line.startswith(f"DPU {serial} token"))
        assert Dpu.objects.get(serial=serial).token_hash == Dpu.hash_token(line.rsplit(" ", 1)[1])
    assert "token" not in second
