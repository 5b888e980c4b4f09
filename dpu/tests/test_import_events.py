"""`manage.py import_events PATH`: a CSV into the existing layout, through the ingest every path uses."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from dpu.models import DpuEvent
from occupancy.models import SpaceOccupancy
from occupancy.selectors import space_list_with_counts
from occupancy.tests.factories import floorplan

pytestmark = pytest.mark.django_db

HEADER = "timestamp,direction,dpu_id\n"


def import_events(path) -> str:
    out = StringIO()
    call_command("import_events", str(path), stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {space.name: space.count for space in space_list_with_counts()}


def test_import_counts_each_event_once_and_reimporting_changes_nothing(tmp_path):
    floorplan()
    path = tmp_path / "log.csv"
    path.write_text(
        HEADER
        + "2018-02-24T08:00:00.000Z,1,283\n2018-02-24T08:00:00.000Z,1,283\n"  # a re-sent event
        + "2018-02-24T09:00:00.000Z,-1,423\n"  # someone leaves A for B
    )

    first = import_events(path)
    second = import_events(path)

    assert first.strip() == "Loaded log.csv: 3 rows, 2 new events, 1 duplicates."
    assert second.strip() == "Loaded log.csv: 3 rows, 0 new events, 3 duplicates."
    assert counts() == {"A": 0, "B": 1}
    assert DpuEvent.objects.count() == 2


def test_a_bad_row_stores_nothing_and_names_its_line(tmp_path):
    floorplan()
    path = tmp_path / "log.csv"
    path.write_text(HEADER + "2018-02-24T08:00:00.000Z,1,283\n2018-02-24T09:00:00.000Z,1,999\n")

    with pytest.raises(CommandError, match=r"log.csv, line 3: dpu_id: No DPU with serial 999"):
        import_events(path)

    assert not DpuEvent.objects.exists()
    assert not SpaceOccupancy.objects.exists()


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(CommandError, match="No CSV file at"):
        import_events(tmp_path / "absent.csv")
