"""Changing the layout: spaces and doorways, and what each change does to the counts."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from dpu.services import event_ingest
from occupancy.models import SpaceOccupancy
from occupancy.selectors import space_count_at
from occupancy.tests.factories import NOW, at, counts, event, floorplan, row_states
from spaces.models import Doorway, Space
from spaces.services import LayoutInUse, doorway_create, doorway_update, space_create, space_update
from spaces.tests.factories import SpaceFactory

pytestmark = pytest.mark.django_db

LATER = NOW + timedelta(hours=3)


def test_new_space_counts_zero():
    lobby = space_create(name="Lobby")

    assert not lobby.allow_negative
    assert space_count_at(space=lobby, at=at(0), now=NOW).count == 0


def test_space_names_are_unique():
    space_create(name="Lobby")

    with pytest.raises(ValidationError):
        space_create(name="Lobby")


def test_allowing_negative_counts_rebuilds_the_space():
    plan = floorplan()
    # Two people walk from B into A, one back: B has an uncounted entrance.
    event_ingest(events=[event(plan.dpu_423, 0), event(plan.dpu_423, 1), event(plan.dpu_423, 2, -1)], now=NOW)
    assert counts(plan.b) == [0, 0, 1]

    space_update(space=plan.b, name="B", allow_negative=True, now=LATER)

    assert counts(plan.b) == [-1, -2, -1]
    assert set(SpaceOccupancy.objects.filter(space=plan.b).values_list("status", "modified")) == {("pending", LATER)}

    space_update(space=plan.b, name="B", allow_negative=False, now=LATER)

    assert counts(plan.b) == [0, 0, 1]


def test_changing_allow_negative_leaves_other_spaces_alone():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_423, 0), event(plan.dpu_283, 1, -1)], now=NOW)
    a_before = row_states(plan.a)

    space_update(space=plan.b, name="B", allow_negative=True, now=LATER)

    assert row_states(plan.a) == a_before
    assert counts(plan.b) == [-1]


def test_renaming_a_space_does_not_recalculate():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_283, 1, -1), event(plan.dpu_283, 2, -1)], now=NOW)
    before = row_states(plan.a)

    space_update(space=plan.a, name="Atrium", allow_negative=False, now=LATER)

    plan.a.refresh_from_db()
    assert plan.a.name == "Atrium"
    assert row_states(plan.a) == before


def test_doorway_needs_a_counted_side_and_two_different_sides():
    lobby = SpaceFactory(name="Lobby")

    with pytest.raises(ValidationError):
        doorway_create(name="Nowhere", side_a=None, side_b=None)
    with pytest.raises(ValidationError):
        doorway_create(name="Loop", side_a=lobby, side_b=lobby)
    # The database holds the same rule for writes that skip validation.
    with pytest.raises(IntegrityError), transaction.atomic():
        Doorway.objects.create(name="Loop", side_a=lobby, side_b=lobby)

    assert not Doorway.objects.exists()


def test_doorway_sides_may_change_until_a_dpu_is_assigned():
    lobby, hall = SpaceFactory(name="Lobby"), SpaceFactory(name="Hall")
    door = doorway_create(name="Door", side_a=None, side_b=lobby)

    doorway_update(doorway=door, name="Door", side_a=hall, side_b=lobby)

    door.refresh_from_db()
    assert door.sides == (hall.id, lobby.id)


def test_doorway_sides_cannot_change_once_a_dpu_was_assigned():
    plan = floorplan()  # DPU 283 hangs over X (outside -> A)
    event_ingest(events=[event(plan.dpu_283, 0)], now=NOW)

    with pytest.raises(LayoutInUse):
        doorway_update(doorway=plan.x, name="X", side_a=plan.b, side_b=plan.a)

    plan.x.refresh_from_db()
    assert plan.x.sides == (None, plan.a.id)
    assert counts(plan.a) == [1]


def test_doorway_with_a_dpu_may_still_be_renamed():
    plan = floorplan()

    doorway_update(doorway=plan.x, name="Main entrance", side_a=None, side_b=plan.a)

    plan.x.refresh_from_db()
    assert (plan.x.name, plan.x.sides) == ("Main entrance", (None, plan.a.id))


def test_a_name_taken_between_validation_and_insert_is_a_validation_error(monkeypatch):
    # Two concurrent creates can both pass full_clean; the database's unique constraint decides the second.
    SpaceFactory(name="Lobby")
    monkeypatch.setattr("spaces.models.Space.full_clean", lambda self, *args, **kwargs: None)

    with pytest.raises(ValidationError, match="already exists"):
        space_create(name="Lobby")

    assert Space.objects.filter(name="Lobby").count() == 1
