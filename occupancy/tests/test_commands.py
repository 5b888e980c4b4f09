"""`manage.py occupancy_rebuild` and `occupancy_settle`: the derived rows rebuilt from the raw events, and settled."""

from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F
from django.utils import timezone

from dpu.models import DpuEvent
from dpu.services import event_ingest
from occupancy.models import OccupancyBlock, SpaceOccupancy
from occupancy.tests.factories import NOW, event, floorplan
from spaces.models import Space

pytestmark = pytest.mark.django_db

LONG_AGO = datetime(2018, 3, 3, tzinfo=UTC)


def run(command: str, *args: str) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def occupancy(space: Space | None = None) -> list[tuple]:
    """Every occupancy row by what it says (ids of a rebuilt row are new, so they are left out)."""
    rows = SpaceOccupancy.objects.order_by("space_id", *SpaceOccupancy.ORDER)
    if space is not None:
        rows = rows.filter(space=space)
    return list(rows.values_list("space_id", "event_id", "dpu_id", "timestamp", "delta", "count", "status"))


@pytest.fixture
def sample() -> tuple[Space, Space]:
    """The sample building with fixtures/dpu_data.csv loaded incrementally, the way ingest stores it."""
    run("init_data")
    return Space.objects.get(name="A"), Space.objects.get(name="B")


def test_rebuild_after_wiping_restores_identical_rows(sample):
    incremental = occupancy()

    SpaceOccupancy.objects.all().delete()
    output = run("occupancy_rebuild")

    assert output.strip() == "Rebuilt the occupancy of every space."
    assert occupancy() == incremental
    assert len(incremental) == 530 + 38  # every event in A, and DPU 423's also in B


def test_rebuild_repairs_counts_that_went_wrong(sample):
    a, _ = sample
    incremental = [row[:-1] for row in occupancy()]  # a repaired row is pending again: compare what it says
    SpaceOccupancy.objects.filter(space=a).update(count=99)

    run("occupancy_rebuild")

    assert [row[:-1] for row in occupancy()] == incremental


def test_rebuild_of_one_space_leaves_the_others_alone(sample):
    a, b = sample
    incremental_a = occupancy(a)
    SpaceOccupancy.objects.all().delete()

    output = run("occupancy_rebuild", "--space", str(a.id))

    assert output.strip() == f"Rebuilt the occupancy of space {a.id}."
    assert occupancy(a) == incremental_a
    assert occupancy(b) == []


def test_rebuild_of_an_unknown_space_is_refused_and_changes_nothing():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0)], now=NOW)
    before = occupancy()

    with pytest.raises(CommandError, match="No space with id 999999"):
        run("occupancy_rebuild", "--space", "999999")

    assert occupancy() == before


def test_settle_marks_only_rows_whose_instant_and_last_change_are_old():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, s) for s in (0, 60, 120)], now=NOW)
    rows = list(SpaceOccupancy.objects.filter(space=plan.a).order_by("timestamp"))
    # All pending: the first two last changed long ago, the third a moment ago (a late event rewrote it).
    SpaceOccupancy.objects.update(status=SpaceOccupancy.Status.PENDING)
    SpaceOccupancy.objects.filter(pk__in=[rows[0].pk, rows[1].pk]).update(modified=LONG_AGO)
    SpaceOccupancy.objects.filter(pk=rows[2].pk).update(modified=timezone.now())

    output = run("occupancy_settle")

    assert output.strip() == "Settled 2 rows."
    assert list(SpaceOccupancy.objects.order_by("timestamp").values_list("status", flat=True)) == [
        "settled",
        "settled",
        "pending",
    ]
    assert SpaceOccupancy.objects.get(pk=rows[0].pk).modified == LONG_AGO  # settling is not a change of count


def test_settle_with_nothing_pending_settles_nothing():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0)], now=NOW)
    assert SpaceOccupancy.objects.get().status == SpaceOccupancy.Status.SETTLED

    assert run("occupancy_settle").strip() == "Settled 0 rows."
    assert SpaceOccupancy.objects.get().status == SpaceOccupancy.Status.SETTLED


def test_check_passes_on_what_ingest_stored(sample):
    assert run("occupancy_check").strip() == "Occupancy matches the raw events."


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(
            lambda a: SpaceOccupancy.objects.filter(space=a).order_by("timestamp")[:1].get().delete(), id="row missing"
        ),
        pytest.param(lambda a: SpaceOccupancy.objects.filter(space=a, count__gt=0).update(count=99), id="count wrong"),
        pytest.param(
            lambda a: SpaceOccupancy.objects.filter(pk=SpaceOccupancy.objects.filter(space=a).last().pk).update(
                delta=-F("delta"), kind=1 - F("kind")
            ),
            id="delta wrong",
        ),
    ],
)
def test_check_fails_on_any_difference_and_rebuild_repairs_it(sample, damage):
    a, _ = sample
    damage(a)
    err = StringIO()

    with pytest.raises(CommandError, match="differ from the raw events"):
        call_command("occupancy_check", stdout=StringIO(), stderr=err)

    assert "space A, event" in err.getvalue()
    run("occupancy_rebuild", "--space", str(a.id))
    assert run("occupancy_check").strip() == "Occupancy matches the raw events."


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(
            lambda a: OccupancyBlock.objects.filter(space=a).order_by("start")[:1].get().delete(), id="missing"
        ),
        pytest.param(lambda a: OccupancyBlock.objects.filter(space=a, high__gt=0).update(high=99), id="high wrong"),
        pytest.param(lambda a: OccupancyBlock.objects.filter(space=a).update(area=F("area") + 1), id="area wrong"),
    ],
)
def test_check_finds_a_five_minute_block_that_differs_from_the_rows_and_rebuild_repairs_it(sample, damage):
    a, _ = sample
    damage(a)
    err = StringIO()

    with pytest.raises(CommandError, match="differ from the raw events"):
        call_command("occupancy_check", stdout=StringIO(), stderr=err)

    assert "space A, block at 2018-" in err.getvalue()
    run("occupancy_rebuild", "--space", str(a.id))
    assert run("occupancy_check").strip() == "Occupancy matches the raw events."


def test_check_finds_a_row_that_should_not_exist(sample):
    _, b = sample
    event = DpuEvent.objects.filter(dpu__serial=283).first()  # doorway X: outside and A, never B
    SpaceOccupancy.objects.create(
        space=b, timestamp=event.timestamp, event=event, dpu=event.dpu, kind=0, delta=1, count=1
    )
    err = StringIO()

    with pytest.raises(CommandError, match="1 occupancy rows differ"):
        call_command("occupancy_check", stdout=StringIO(), stderr=err)

    assert f"space B, event {event.id}:" in err.getvalue() and "rebuilt None" in err.getvalue()


def test_check_of_one_space_looks_at_that_space_only(sample):
    a, b = sample
    SpaceOccupancy.objects.filter(space=b).update(count=99)

    assert run("occupancy_check", "--space", str(a.id)).strip() == "Occupancy matches the raw events."
    with pytest.raises(CommandError):
        call_command("occupancy_check", "--space", str(b.id), stdout=StringIO(), stderr=StringIO())


def test_check_of_an_unknown_space_is_refused(sample):
    with pytest.raises(CommandError, match="No space with id 999"):
        call_command("occupancy_check", "--space", "999", stdout=StringIO())
