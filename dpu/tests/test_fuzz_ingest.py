"""POST /events under fuzzing: whatever arrives, the answer is 201/200 or a 4xx, never a 5xx; a 2xx stores exactly
what it says it created, and a 4xx leaves the database as it was."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import event as outcome
from hypothesis import strategies as st

from dpu.models import SERIAL_MAX, Dpu, DpuAssignment, DpuEvent
from dpu.services import event_ingest
from occupancy.models import SpaceOccupancy
from occupancy.selectors import space_list_with_counts
from occupancy.tests.factories import NOW, event, floorplan
from spaces.models import Doorway, Space

pytestmark = pytest.mark.django_db

HOSTILE_TEXT = ["", " ", "\x00", "\ud800", "\u202e", "1'; DROP TABLE dpu_dpuevent; --", "<script>alert(1)</script>"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # NaN and infinities become NaN/Infinity tokens, which strict JSON refuses
    st.text(max_size=20),
    st.sampled_from(HOSTILE_TEXT),
)
keys = st.one_of(st.text(max_size=8), st.sampled_from(HOSTILE_TEXT))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=12,
)

# Field values near the valid ones, so that examples get past the first check as often as they stop there.
instants = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2020, 12, 31),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]),
)
timestamps = st.one_of(
    instants.map(lambda instant: instant.isoformat()),
    instants.map(lambda instant: instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"),
    instants.map(lambda instant: instant.replace(tzinfo=None).isoformat()),  # naive: refused
    st.sampled_from(["2018-02-24T08:00:00.000Z", "2018-02-24T08:00:10Z", "0001-01-01T00:00:00+01:00", "2100-01-01Z"]),
    scalars,
)
serials = st.one_of(st.sampled_from([283, 423, "283", " 423 ", 999, 0, -283, SERIAL_MAX, SERIAL_MAX + 1]), scalars)
directions = st.one_of(st.sampled_from([1, -1, "1", "-1", "+1", 0, 2, 1.5, "up", True]), scalars)

valid_events = st.fixed_dictionaries(
    {"dpu_id": st.sampled_from([283, 423, "283"]), "timestamp": timestamps, "direction": st.sampled_from([1, -1, "-1"])}
)
# The plan's three events, as a DPU re-sending them would: a batch of only these is answered 200.
stored_events = st.sampled_from(
    [
        {"dpu_id": 283, "timestamp": "2018-02-24T08:00:00.000Z", "direction": 1},
        {"dpu_id": "283", "timestamp": "2018-02-24T09:00:10+01:00", "direction": "1"},
        {"dpu_id": 423, "timestamp": "2018-02-24T08:00:20Z", "direction": -1},
    ]
)
event_like = st.builds(
    lambda extra, fields: {**extra, **fields},
    st.just({}) | st.dictionaries(st.sampled_from(["room", "dpu", *HOSTILE_TEXT]), scalars, max_size=2),
    st.fixed_dictionaries({}, optional={"dpu_id": serials, "timestamp": timestamps, "direction": directions}),
)
# Mostly valid items with now and then a bad one, so that whole-batch refusal is tried late in a batch too.
items = st.one_of(valid_events, stored_events, valid_events, stored_events, event_like, json_values)
json_bodies = st.one_of(valid_events, stored_events, event_like, event_like, st.lists(items, max_size=8), json_values)
bodies = st.one_of(json_bodies.map(json.dumps), json_bodies.map(json.dumps), st.binary(max_size=40))  # binary: not text


@pytest.fixture
def plan():
    """The sample building with three events stored, so that refused bodies have counts to leave alone."""
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_283, 10), event(plan.dpu_423, 20, -1)], now=NOW)
    return plan


def database_state() -> dict:
    models = (Space, Doorway, Dpu, DpuAssignment, DpuEvent, SpaceOccupancy)
    return {
        "rows": {model.__name__: model.objects.count() for model in models},
        "latest counts": {space.name: space.count for space in space_list_with_counts()},
    }


# The fixtures run once for all examples; each example runs in a transaction it rolls back, so every one starts
# from the same building.
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies)
# Bodies that once gave a 500: a lone surrogate in a field name the refusal echoes, alone and late in a batch.
@example(body='{"dpu_id": 283, "timestamp": "2018-02-24T09:00:00Z", "direction": 1, "\\ud800": 0}')
@example(body='[{"dpu_id": 423, "timestamp": "2018-02-24T09:00:00Z", "direction": -1}, {"\\udfff": null}]')
def test_any_body_is_stored_whole_or_refused_with_nothing_changed(staff_client, plan, body):
    with transaction.atomic():
        before = database_state()

        response = staff_client.generic("POST", "/events", body, content_type="application/json")

        assert response.status_code in (200, 201) or 400 <= response.status_code < 500, response.content[:300]
        answer = response.json()
        outcome(f"{response.status_code} {answer.get('field', '')}")  # --hypothesis-show-statistics: what was tried
        if response.status_code < 300:
            sent = json.loads(body)
            assert answer["received"] == (len(sent) if isinstance(sent, list) else 1)
            assert DpuEvent.objects.count() == before["rows"]["DpuEvent"] + answer["created"]
            assert response.status_code == (201 if answer["created"] else 200)
        else:
            assert answer["detail"]  # a reason for a person
            assert database_state() == before
        transaction.set_rollback(True)
