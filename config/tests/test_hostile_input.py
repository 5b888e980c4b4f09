"""Hostile and broken input, endpoint by endpoint: each is refused with a 4xx that says what to fix, never a 5xx,
and leaves the database exactly as it was.

The catalogue is one table (CATALOGUE) run by one test; what does not fit a table row (names that are valid text
however hostile, query parameters that are ignored, bodies whose Content-Length lies) has its own test below.
"""

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from config.parsers import JSONParser, RequestBodyTooLarge
from dpu.models import SERIAL_MAX, Dpu, DpuAssignment, DpuEvent
from dpu.services import event_ingest
from occupancy.models import SpaceOccupancy
from occupancy.selectors import space_list_with_counts
from occupancy.tests.factories import NOW, event, floorplan
from spaces.models import Doorway, Space

pytestmark = pytest.mark.django_db

LIMIT = 5 * 1024 * 1024  # DATA_UPLOAD_MAX_MEMORY_SIZE in config/settings/base.py
SQL = "1'; DROP TABLE dpu_dpuevent; --"
SQL_OR = "1 OR 1=1"
HTML = "<script>alert(1)</script>"


@pytest.fixture
def plan():
    """FLOORPLAN.md's building with people in it (A and B hold one each), so that a stray write shows in the counts."""
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_283, 10), event(plan.dpu_423, 20, -1)], now=NOW)
    assert latest_counts() == {"A": 1, "B": 1}
    return plan


def latest_counts() -> dict[str, int]:
    return {space.name: space.count for space in space_list_with_counts()}


def database_state() -> dict:
    """What a refused request must leave as it was: the rows of every table, each space's count, the assignments."""
    models = (Space, Doorway, Dpu, DpuAssignment, DpuEvent, SpaceOccupancy)
    return {
        "rows": {model.__name__: model.objects.count() for model in models},
        "latest counts": latest_counts(),
        "assignments": list(
            DpuAssignment.objects.order_by("id").values_list("id", "doorway_id", "enters_id", "valid_from", "valid_to")
        ),
    }


def said(body) -> str:
    """Every key and message of a JSON error body, as one text."""
    if isinstance(body, dict):
        return " ".join(f"{key} {said(value)}" for key, value in body.items())
    if isinstance(body, list):
        return " ".join(said(value) for value in body)
    return str(body)


# --- the catalogue ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """The id of one of the plan's spaces or doorways ("a", "b", "x", "z"), filled in when the case is sent."""

    name: str


A, X = Ref("a"), Ref("x")


@dataclass(frozen=True)
class Raw:
    """A body sent byte for byte, for what json.dumps cannot write (broken JSON, 1e400, bad UTF-8)."""

    data: bytes | str


EMPTY = Raw(b"")


@dataclass(frozen=True)
class Case:
    path: str  # "{a}" is space A's id
    body: object = None  # JSON-encoded here (lone surrogates and NULs escaped), unless Raw
    says: tuple[str, ...] = ()  # what the answer must mention (case-insensitive): the field, the reason, the fix
    status: int = 400
    content_type: str = "application/json"
    method: str = "POST"
    query: dict | None = None


def resolve(value, plan):
    if isinstance(value, Ref):
        return getattr(plan, value.name).id
    if isinstance(value, dict):
        return {key: resolve(item, plan) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, plan) for item in value]
    return value


def send(client, case: Case, plan):
    path = case.path.format(a=plan.a.id)
    if case.method == "GET":
        return client.get(path, resolve(case.query, plan))
    body = case.body.data if isinstance(case.body, Raw) else json.dumps(resolve(case.body, plan))
    return client.generic("POST", path, body, content_type=case.content_type)


def good(n: int) -> dict:
    """A valid event not stored yet, n seconds after 09:00 on the first day: storing it would change A's count."""
    return {"dpu_id": 283, "timestamp": f"2018-02-24T09:{n // 60:02d}:{n % 60:02d}.000Z", "direction": 1}


def events(*items, says, status=400) -> Case:
    return Case("/events", list(items), says=says, status=status)


def last_item_with(field: str, value, *, says: str | tuple[str, ...]) -> Case:
    """Two valid new events, then one whose `field` is `value`: the batch is refused as a whole, naming item 2."""
    says = (says,) if isinstance(says, str) else says
    return events(good(0), good(1), {**good(2), field: value}, says=("Item 2", field, *says))


def space(body, *, says, **kwargs) -> Case:
    return Case("/space/", body, says=says, **kwargs)


def doorway(body, *, says, **kwargs) -> Case:
    return Case("/doorway/", body, says=says, **kwargs)


def dpu(body, *, says, **kwargs) -> Case:
    return Case("/dpu/", body, says=says, **kwargs)


def move(change: dict, *, says, **kwargs) -> Case:
    """Move DPU 283 to doorway X facing A from 2018-03-01, with `change` applied to that body."""
    body = {"doorway": X, "enters": A, "valid_from": "2018-03-01T00:00:00Z", **change}
    return Case("/dpu/283/assignments", body, says=says, **kwargs)


def count_at(ts: str, *, says) -> Case:
    return Case("/space/{a}/count", method="GET", query={"ts": ts}, says=("ts", *says))


JSON_ERROR = ("JSON parse error",)
NOT_ISO = ("is not an ISO-8601 timestamp, such as 2018-02-24T08:45:21.893Z",)
OUT_OF_RANGE = ("outside the range of representable times",)
MUST_BE_DIRECTION = "must be 1 (towards the side the DPU faces) or -1 (away from it)"
TOO_LARGE = ("5,242,880 bytes", "Split the batch")
# A valid one-event batch, padded with whitespace to one byte past the limit: refused for its size alone.
OVERSIZED_BATCH = "[" + json.dumps(good(0)) + " " * LIMIT + "]"

CATALOGUE = [
    # Not JSON: each a 400 saying the body is not JSON, before any field is looked at.
    pytest.param(space(Raw('{"name": "Lobby"'), says=JSON_ERROR), id="space-truncated-json"),
    pytest.param(doorway(Raw('{"name": "D", "sides": [null, 1],}'), says=JSON_ERROR), id="doorway-trailing-comma"),
    pytest.param(dpu(Raw("{'serial': 283}"), says=JSON_ERROR), id="dpu-single-quoted-json"),
    pytest.param(Case("/dpu/283/assignments", Raw('{"doorway": 1 /* X */}'), says=JSON_ERROR),
                 id="assignment-json-with-comment"),
    pytest.param(space(Raw('{"name": "Lobby", "allow_negative": Infinity}'), says=JSON_ERROR), id="space-infinity"),
    pytest.param(space(Raw(b'{"name": "\xc3\x28"}'), says=JSON_ERROR), id="space-invalid-utf8"),
    pytest.param(space(Raw(b'\xef\xbb\xbf{"name": "Lobby"}'), says=(*JSON_ERROR, "BOM")), id="space-utf8-bom"),
    pytest.param(Case("/events", Raw(json.dumps(good(0)) * 2), says=(*JSON_ERROR, "Extra data")),
                 id="events-two-documents"),
    pytest.param(Case("/events", Raw("  \n "), says=JSON_ERROR), id="events-whitespace-only"),
    # Not JSON at all: 415, naming the media type that was sent.
    pytest.param(space(Raw("<space><name>Lobby</name></space>"), content_type="text/xml", status=415,
                       says=("Unsupported media type", "text/xml")), id="space-xml"),
    pytest.param(doorway(Raw("--b\r\n"), content_type="multipart/form-data; boundary=b", status=415,
                         says=("Unsupported media type", "multipart/form-data")), id="doorway-multipart"),
    pytest.param(dpu(Raw('{"serial": 512}'), content_type="", status=415, says=("Unsupported media type",)),
                 id="dpu-no-content-type"),
    pytest.param(Case("/dpu/283/assignments", Raw("doorway=1&enters=1"),
                      content_type="application/x-www-form-urlencoded", status=415, says=("Unsupported media type",)),
                 id="assignment-form"),
    pytest.param(Case("/events", Raw(json.dumps(good(0))), content_type="application/xml", status=415,
                      says=("Unsupported media type", "application/xml")), id="events-declared-xml"),
    # Empty bodies: every required field named.
    pytest.param(space(EMPTY, says=("name", "This field is required")), id="space-empty-body"),
    pytest.param(doorway(EMPTY, says=("name", "sides", "This field is required")), id="doorway-empty-body"),
    pytest.param(dpu(EMPTY, says=("serial", "This field is required")), id="dpu-empty-body"),
    pytest.param(Case("/dpu/283/assignments", EMPTY, says=("doorway", "enters", "valid_from", "required")),
                 id="assignment-empty-body"),
    # An array where an object is expected, and the reverse.
    pytest.param(space([{"name": "Lobby"}], says=("The body must be a JSON object",)), id="space-array-body"),
    pytest.param(doorway([{"name": "D", "sides": [None, A]}], says=("must be a JSON object",)),
                 id="doorway-array-body"),
    pytest.param(Case("/dpu/283/assignments", [{"doorway": X}], says=("must be a JSON object",)),
                 id="assignment-array-body"),
    pytest.param(doorway({"name": "D", "sides": {"from": None, "to": A}}, says=("sides", "Expected a list")),
                 id="doorway-sides-object"),
    pytest.param(Case("/events", {"events": [good(0)]}, says=("Item 0", "events", "is not a field")),
                 id="events-wrapped-in-object"),
    # Missing and extra fields.
    pytest.param(events(good(0), {"dpu_id": 283}, says=("Item 1", "timestamp", "required")),
                 id="events-item-missing-fields"),
    pytest.param(events({**good(0), "dpu": 283}, says=("Item 0", "dpu", "is not a field")), id="events-misspelt-field"),
    pytest.param(space({"name": "Lobby", "id": 99}, says=("id", "is not a field")), id="space-extra-id"),
    pytest.param(doorway({"name": "D", "sides": [None, A], "side_a": None}, says=("side_a", "is not a field")),
                 id="doorway-extra-field"),
    pytest.param(dpu({"serial": 512, "token": "dpu_chosen"}, says=("token", "is not a field")), id="dpu-own-token"),
    pytest.param(move({"valid_to": "2018-04-01T00:00:00Z"}, says=("valid_to", "is not a field")),
                 id="assignment-extra-valid-to"),
    # Wrong types.
    pytest.param(space({"name": ["Lobby"]}, says=("name", "Not a valid string")), id="space-name-array"),
    pytest.param(space({"name": {"en": "Lobby"}}, says=("name", "Not a valid string")), id="space-name-object"),
    pytest.param(space({"name": "Lobby", "allow_negative": [True]}, says=("allow_negative", "valid boolean")),
                 id="space-allow-negative-array"),
    pytest.param(doorway({"name": "D", "sides": "outside,A"}, says=("sides", "Expected a list")),
                 id="doorway-sides-text"),
    pytest.param(doorway({"name": "D", "sides": [None, 1.5]}, says=("sides", "must be the id of a space")),
                 id="doorway-side-fraction"),
    pytest.param(move({"doorway": 1.5}, says=("doorway", "must be the id of a doorway: a whole number")),
                 id="assignment-doorway-fraction"),
    pytest.param(move({"enters": {"id": 1}}, says=("enters", "must be the id of a space")),
                 id="assignment-enters-object"),
    pytest.param(move({"valid_from": 1519862400}, says=("valid_from", "ISO-8601 timestamp string")),
                 id="assignment-valid-from-epoch"),
    pytest.param(dpu({"serial": {"value": 283}}, says=("serial", "whole number")), id="dpu-serial-object"),
    pytest.param(dpu({"serial": "283.0"}, says=("serial", "whole number")), id="dpu-serial-decimal-text"),
    pytest.param(events({**good(0), "timestamp": ["2018-02-24T09:00:00Z"]}, says=("Item 0", "timestamp", "string")),
                 id="events-timestamp-array"),
    pytest.param(events({**good(0), "dpu_id": True}, says=("Item 0", "dpu_id", "whole number")), id="events-dpu-true"),
    # Directions: never anything but 1 or -1, refused for the whole batch.
    pytest.param(last_item_with("direction", 0, says=MUST_BE_DIRECTION), id="direction-0"),
    pytest.param(last_item_with("direction", 2, says=MUST_BE_DIRECTION), id="direction-2"),
    pytest.param(last_item_with("direction", 1.5, says=MUST_BE_DIRECTION), id="direction-1.5"),
    pytest.param(last_item_with("direction", "up", says=MUST_BE_DIRECTION), id="direction-up"),
    pytest.param(last_item_with("direction", None, says="may not be null"), id="direction-null"),
    pytest.param(last_item_with("direction", "\uff11", says=MUST_BE_DIRECTION), id="direction-fullwidth-1"),
    # Timestamps.
    pytest.param(last_item_with("timestamp", "2018-02-24T09:00:03", says="has no time zone"), id="timestamp-naive"),
    pytest.param(last_item_with("timestamp", "2100-01-01T00:00:00Z", says="in the future"), id="timestamp-2100"),
    pytest.param(last_item_with("timestamp", "9999-12-31T23:59:59.999Z", says="in the future"), id="timestamp-9999"),
    pytest.param(last_item_with("timestamp", "9999-12-31T23:59:59-01:00", says=OUT_OF_RANGE),
                 id="timestamp-9999-past-utc"),
    pytest.param(last_item_with("timestamp", "0001-01-01T00:00:00+01:00", says=OUT_OF_RANGE),
                 id="timestamp-0001-before-utc"),
    pytest.param(last_item_with("timestamp", "0000-01-01T00:00:00Z", says=NOT_ISO), id="timestamp-year-0"),
    pytest.param(last_item_with("timestamp", "2018-13-01T00:00:00Z", says=NOT_ISO), id="timestamp-month-13"),
    pytest.param(last_item_with("timestamp", "2018-02-24x09:00:03Z", says=NOT_ISO), id="timestamp-odd-separator"),
    pytest.param(last_item_with("timestamp", "1" * 40 + "Z", says=NOT_ISO), id="timestamp-digit-run"),
    pytest.param(last_item_with("timestamp", "\u202e2018-02-24T09:00:03Z", says=NOT_ISO), id="timestamp-rtl-override"),
    pytest.param(last_item_with("timestamp", "2018-02-24T09:00:03Z\x00" + SQL, says=NOT_ISO),
                 id="timestamp-nul-then-sql"),
    pytest.param(last_item_with("timestamp", "2018-02-24T09:00:03." + "1" * 100_000 + "Z", says=NOT_ISO),
                 id="timestamp-overlong-fraction"),
    pytest.param(move({"valid_from": "0001-01-01T00:00:00+01:00"}, says=("valid_from", *OUT_OF_RANGE)),
                 id="assignment-valid-from-0001-before-utc"),
    pytest.param(move({"valid_from": "2018-03-01T00:00:00Z\x00"}, says=("valid_from", *NOT_ISO)),
                 id="assignment-valid-from-nul"),
    # Overlong strings.
    pytest.param(space({"name": "L" * 100_000}, says=("name", "no more than 200 characters")), id="space-name-100k"),
    pytest.param(doorway({"name": "\u00e9" * 201, "sides": [None, A]}, says=("name", "no more than 200")),
                 id="doorway-name-201-accented"),
    pytest.param(space({"name": "Lobby", "x" * 10_000: 1}, says=("x" * 60, "is not a field")), id="space-overlong-key"),
    pytest.param(dpu({"serial": "9" * 10_000}, says=("serial", "whole number")), id="dpu-serial-10k-digits"),
    pytest.param(events({**good(0), "dpu_id": "9" * 25}, says=("dpu_id", "whole number")), id="events-dpu-25-digits"),
    # NUL bytes.
    pytest.param(space({"name": "Lobby\x00"}, says=("name", "Null characters are not allowed")), id="space-name-nul"),
    pytest.param(doorway({"name": "\x00", "sides": [None, A]}, says=("name", "Null characters")),
                 id="doorway-name-nul"),
    pytest.param(dpu({"serial": "283\x00"}, says=("serial", "whole number")), id="dpu-serial-nul"),
    pytest.param(last_item_with("direction", "1\x00", says=MUST_BE_DIRECTION), id="direction-nul"),
    pytest.param(space({"name": "Lobby", "name\x00": "x"}, says=("is not a field",)), id="space-key-nul"),
    # Unicode that is not text: lone surrogates (valid JSON escapes, not encodable), digits of other scripts.
    pytest.param(space({"name": "Lobby \ud800"}, says=("name", "Surrogate characters are not allowed")),
                 id="space-name-lone-surrogate"),
    pytest.param(space({"name": "Lobby", "\ud800": 1}, says=("is not a field",)), id="space-key-lone-surrogate"),
    pytest.param(events({**good(0), "\udfff": 1}, says=("Item 0", "is not a field")), id="events-key-lone-surrogate"),
    pytest.param(doorway({"name": "D", "sides": [None, "\ud800"]}, says=("sides", "must be the id of a space")),
                 id="doorway-side-lone-surrogate"),
    pytest.param(dpu({"serial": "\u0662\u0668\u0663"}, says=("serial", "whole number")), id="dpu-serial-arabic-digits"),
    # Numbers beyond 64 bits.
    pytest.param(dpu({"serial": 2**64}, says=("serial", f"from 1 to {SERIAL_MAX}")), id="dpu-serial-2**64"),
    pytest.param(events({**good(0), "dpu_id": 2**63}, says=("dpu_id", f"from 1 to {SERIAL_MAX}")),
                 id="events-dpu-2**63"),
    pytest.param(last_item_with("direction", 2**64 + 1, says=MUST_BE_DIRECTION), id="direction-2**64+1"),
    pytest.param(move({"doorway": 2**64}, says=("doorway", "must be the id of a doorway")),
                 id="assignment-doorway-2**64"),
    pytest.param(doorway(Raw('{"name": "D", "sides": [null, 1e400]}'), says=("sides", "must be the id of a space")),
                 id="doorway-side-1e400"),
    pytest.param(Case("/dpu/283/assignments", Raw('{"doorway": 1, "enters": 1e400, "valid_from": "2018-03-01"}'),
                      says=("enters", "must be the id of a space")), id="assignment-enters-1e400"),
    pytest.param(Case("/events", Raw('{"dpu_id": 283, "timestamp": "2018-02-24T09:00:00Z", "direction": 1e400}'),
                      says=(MUST_BE_DIRECTION,)), id="events-direction-1e400"),
    pytest.param(dpu(Raw('{"serial": ' + "9" * 5_000 + "}"), says=(*JSON_ERROR, "digits")), id="dpu-5000-digit-number"),
    # Batches: too many items, too many bytes, valid items mixed with an invalid one, unknown DPUs.
    pytest.param(Case("/events", [0] * 10_001, says=("at most 10000 events", "10001")), id="events-10001-items"),
    pytest.param(Case("/events", Raw(OVERSIZED_BATCH), status=413, says=TOO_LARGE), id="events-over-size-limit"),
    pytest.param(space({"name": "L" * LIMIT}, status=413, says=TOO_LARGE), id="space-over-size-limit"),
    pytest.param(events(*[good(n) for n in range(500)], {**good(500), "dpu_id": 999},
                        says=("Item 500", "dpu_id", "No DPU with serial 999 is registered", "Nothing")),
                 id="events-500-valid-then-unknown-dpu"),
    pytest.param(events(good(0), {**good(1), "dpu_id": SERIAL_MAX},
                        says=("Item 1", f"No DPU with serial {SERIAL_MAX} is registered")),
                 id="events-unknown-max-serial"),
    pytest.param(events(good(0), good(0), {**good(1), "direction": -2}, good(2), says=("Item 2", "direction")),
                 id="events-repeat-then-invalid"),
    # SQL and HTML in every field that is not free text (names are: see test_sql_and_html_in_names_...).
    pytest.param(last_item_with("dpu_id", SQL, says="whole number"), id="events-dpu-sql"),
    pytest.param(last_item_with("timestamp", HTML, says=NOT_ISO), id="events-timestamp-html"),
    pytest.param(last_item_with("direction", SQL_OR, says=MUST_BE_DIRECTION), id="events-direction-sql"),
    pytest.param(events({**good(0), HTML: 1}, says=("Item 0", HTML, "is not a field")), id="events-key-html"),
    pytest.param(space({"name": "Lobby", "allow_negative": SQL}, says=("allow_negative", "valid boolean")),
                 id="space-allow-negative-sql"),
    pytest.param(doorway({"name": "D", "sides": [SQL, HTML]}, says=("sides", "must be the id of a space")),
                 id="doorway-sides-sql-html"),
    pytest.param(dpu({"serial": SQL_OR}, says=("serial", "whole number")), id="dpu-serial-sql"),
    pytest.param(move({"doorway": SQL, "enters": HTML, "valid_from": SQL_OR}, says=("doorway", "enters", "valid_from")),
                 id="assignment-sql-html"),
    pytest.param(Case(f"/dpu/{SERIAL_MAX}/assignments", {"doorway": SQL, "enters": None, "valid_from": HTML},
                      status=404, says=("Not found",)), id="assignment-unknown-dpu"),
    # Query parameters of GET /space/<id>/count.
    pytest.param(count_at(SQL, says=NOT_ISO), id="count-ts-sql"),
    pytest.param(count_at(HTML, says=NOT_ISO), id="count-ts-html"),
    pytest.param(count_at("now", says=NOT_ISO), id="count-ts-now"),
    pytest.param(count_at("2018-02-24T09:00:00Z\x00" + HTML, says=NOT_ISO), id="count-ts-nul-then-html"),
    pytest.param(count_at("1" * 100, says=NOT_ISO), id="count-ts-digit-run"),
    pytest.param(count_at("9" * 100_000, says=NOT_ISO), id="count-ts-100k"),
    pytest.param(count_at("0001-01-01T00:00:00+01:00", says=OUT_OF_RANGE), id="count-ts-0001-before-utc"),
    pytest.param(Case("/space/{a}/count?ts=2018-02-24T%ED%A0%8009:00", method="GET", says=("ts", *NOT_ISO)),
                 id="count-ts-encoded-surrogate"),
    pytest.param(Case("/space/{a}/count?ts=2018-02-25&ts=junk", method="GET", says=("ts", "'junk'")),
                 id="count-ts-twice-last-is-junk"),
    pytest.param(Case("/space/{a}/count?tss=2018-02-24", method="GET", says=("tss", "not a query parameter")),
                 id="count-misspelt-parameter"),
    pytest.param(Case("/space/{a}/counts?start=2018-02-24&end=2018-02-25&intervall=1h", method="GET",
                      says=("intervall", "not a query parameter")), id="counts-misspelt-parameter"),
    pytest.param(Case("/space/{a}/counts?start=2018-02-24&end=2018-02-25&interval=0h", method="GET",
                      says=("interval", "'0h'")), id="counts-interval-zero"),
    pytest.param(Case("/space/{a}/counts?start=2018-02-24&end=2018-02-25&tz=Mars/Olympus", method="GET",
                      says=("tz", "IANA")), id="counts-unknown-zone"),
    pytest.param(Case("/space/{a}/counts?start=2018-02-25&end=2018-02-24", method="GET",
                      says=("end", "after start")), id="counts-range-backwards"),
    pytest.param(Case("/space/{a}/counts?start=2000-01-01&end=2018-02-24&interval=1m", method="GET",
                      says=("interval", "10,000 buckets")), id="counts-too-many-buckets"),
    pytest.param(Case("/counts?spaces=1,x&start=2018-02-24&end=2018-02-25", method="GET",
                      says=("spaces", "space ids")), id="counts-spaces-not-ids"),
]  # fmt: skip


@pytest.mark.parametrize("case", CATALOGUE)
def test_hostile_input_is_refused_with_a_reason_and_changes_nothing(staff_client, plan, case):
    before = database_state()

    response = send(staff_client, case, plan)

    assert response.status_code == case.status, response.content[:500]
    assert response["Content-Type"] == "application/json"
    text = said(response.json())
    for words in case.says:
        assert words.lower() in text.lower(), text[:500]
    assert database_state() == before


def test_the_catalogue_covers_at_least_forty_kinds_of_bad_input():
    assert len(CATALOGUE) >= 40
    assert len({param.id for param in CATALOGUE}) == len(CATALOGUE)


# --- free text, query parameters and paths ----------------------------------------------------------------------


@pytest.mark.parametrize("name", [SQL, HTML, "Robert'); DROP TABLE spaces_space;--", '"><img src=x onerror=alert(1)>'])
def test_sql_and_html_in_names_are_stored_as_plain_text(staff_client, plan, name):
    # A name is free text: it is stored and shown back exactly as sent, and runs as nothing.
    before = database_state()["rows"]

    created = staff_client.post("/space/", {"name": name}, format="json")
    door = staff_client.post("/doorway/", {"name": name, "sides": [None, created.json()["id"]]}, format="json")

    assert (created.status_code, door.status_code) == (201, 201)
    assert created["Content-Type"] == door["Content-Type"] == "application/json"
    assert Space.objects.get(pk=created.json()["id"]).name == name
    assert Doorway.objects.get(pk=door.json()["id"]).name == name
    assert name in [space["name"] for space in staff_client.get("/space/").json()]
    assert name in [doorway["name"] for doorway in staff_client.get("/doorway/").json()]
    after = database_state()["rows"]
    assert after == {**before, "Space": before["Space"] + 1, "Doorway": before["Doorway"] + 1}
    assert latest_counts() == {"A": 1, "B": 1, name: 0}


LIST_PATHS = ["/space/", "/doorway/", "/dpu/", "/dpu/283/assignments"]
# `limit` and `cursor` are the lists' paging parameters, not unknown ones: hostile values of them are refused below.
HOSTILE_QUERY = {"id": SQL, HTML: SQL_OR, "ordering": "-id; DELETE FROM spaces_space", "q": "\x00"}


@pytest.mark.parametrize("path", LIST_PATHS)
def test_hostile_query_parameters_on_list_endpoints_are_ignored(reader_client, plan, path):
    before = database_state()
    plain = reader_client.get(path)

    response = reader_client.get(path, HOSTILE_QUERY)

    assert response.status_code == plain.status_code == 200
    assert response.json() == plain.json()
    assert database_state() == before


@pytest.mark.parametrize("path", LIST_PATHS)
@pytest.mark.parametrize("param, value", [("limit", str(2**64)), ("limit", SQL), ("cursor", SQL), ("cursor", "\x00")])
def test_hostile_paging_parameters_on_list_endpoints_are_a_400_naming_them(reader_client, plan, path, param, value):
    before = database_state()

    response = reader_client.get(path, {param: value})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [param]
    assert database_state() == before


def test_a_format_query_parameter_is_ignored_like_any_other_on_lists(reader_client, plan):
    response = reader_client.get("/space/", {"format": HTML})

    assert response.status_code == 200


def test_a_format_query_parameter_on_the_count_endpoint_is_refused(reader_client, plan):
    response = reader_client.get(f"/space/{plan.a.id}/count", {"format": HTML})

    assert response.status_code == 400
    assert "format" in response.json()["errors"]


@pytest.mark.parametrize(
    "path",
    ["/space/abc/count", "/space/-1/count", "/space/1%00/count", "/space/9999999999999999999/count",
     "/dpu/%3Cscript%3E/assignments", "/dpu/99999999999999999999/assignments", f"/dpu/{SERIAL_MAX + 1}/assignments"],
)  # fmt: skip
def test_hostile_path_segments_are_not_found(staff_client, plan, path):
    before = database_state()

    response = staff_client.get(path)

    assert response.status_code == 404
    assert database_state() == before


# --- the size limit and Content-Length ------------------------------------------------------------------------


def post_stream(client, body: bytes, *, content_length: str):
    """POST /events as a real server hands it over: a stream that simply ends, and whatever Content-Length the
    client claimed (the test client's own stream would refuse to read past the body)."""
    return client.generic(
        "POST",
        "/events",
        body,
        content_type="application/json",
        **{"CONTENT_LENGTH": content_length, "wsgi.input": io.BytesIO(body)},
    )


def test_a_body_of_exactly_the_limit_is_read(staff_client, plan):
    one = json.dumps([good(0)])
    body = one[:-1] + " " * (LIMIT - len(one)) + "]"
    assert len(body.encode()) == LIMIT

    response = staff_client.generic("POST", "/events", body, content_type="application/json")

    assert response.status_code == 201
    assert DpuEvent.objects.filter(timestamp=datetime(2018, 2, 24, 9, tzinfo=UTC)).count() == 1


def test_the_413_names_the_configured_limit(staff_client, plan, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    before = database_state()

    response = staff_client.post("/events", [good(n) for n in range(20)], format="json")

    assert response.status_code == 413
    assert "1,000 bytes" in response.json()["detail"]
    assert database_state() == before


def test_a_content_length_over_the_limit_is_refused_unread(staff_client, plan):
    # The client claims 6 MiB but sends one small event: refused on the claim, before the body is waited for.
    before = database_state()

    response = post_stream(staff_client, json.dumps(good(0)).encode(), content_length=str(LIMIT + 1))

    assert response.status_code == 413
    assert "Split the batch" in response.json()["detail"]
    assert database_state() == before


def test_a_content_length_shorter_than_the_body_reads_only_what_it_claims(staff_client, plan):
    # The bytes past the claimed length are never read: here that cuts the JSON short, a 400.
    before = database_state()
    body = json.dumps([good(0), good(1)]).encode()

    response = post_stream(staff_client, body, content_length=str(len(body) // 2))

    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")
    assert database_state() == before


def test_a_content_length_longer_than_the_body_reads_what_arrived(staff_client, plan):
    body = json.dumps(good(0)).encode()

    response = post_stream(staff_client, body, content_length=str(len(body) + 100))

    assert response.status_code == 201
    assert response.json() == {"received": 1, "created": 1, "duplicates": 0}


@pytest.mark.parametrize("content_length", ["abc", "-5", "1e3"])
def test_a_content_length_that_is_no_length_is_a_client_error(staff_client, plan, content_length):
    before = database_state()

    response = post_stream(staff_client, json.dumps(good(0)).encode(), content_length=content_length)

    assert response.status_code == 400
    assert response.json()["detail"]
    assert database_state() == before


class Request:
    def __init__(self, **meta):
        self.META = meta


class Unreadable(io.RawIOBase):
    def read(self, size=-1):
        raise AssertionError("the parser read a body it had already refused")


def test_the_parser_refuses_a_declared_length_over_the_limit_without_reading():
    with pytest.raises(RequestBodyTooLarge) as refused:
        JSONParser().parse(Unreadable(), parser_context={"request": Request(CONTENT_LENGTH=str(LIMIT + 1))})

    assert refused.value.status_code == 413


class Chunked(io.RawIOBase):
    """A chunked body of twice the limit in whitespace: no Content-Length, 64 kB at a time. Counts what was read."""

    def __init__(self):
        self.served = 0

    def read(self, size=-1):
        size = 65_536 if size is None or size < 0 else size
        chunk = b" " * min(size, 65_536, 2 * LIMIT - self.served)
        self.served += len(chunk)
        return chunk


def test_the_parser_stops_a_stream_without_length_one_byte_past_the_limit():
    # With DRF 3.18 the parser is handed request.body, already limited by Django; a stream with no length (DRF
    # handing over the raw request, or any other caller) is cut off by the parser itself.
    stream = Chunked()

    with pytest.raises(RequestBodyTooLarge):
        JSONParser().parse(stream, parser_context={"request": Request()})

    assert stream.served == LIMIT + 1


def test_the_parser_reads_a_stream_without_length_up_to_the_limit():
    body = json.dumps([good(0)]).encode()

    parsed = JSONParser().parse(io.BytesIO(body), parser_context={"request": Request()})

    assert parsed == [good(0)]


# --- what the stricter timestamp reader still takes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "rendered"),
    [
        ("2018-02-24t09:00:00z", "2018-02-24T09:00:00.000Z"),  # RFC 3339 allows lower case
        ("2018-02-24 09:00:00Z", "2018-02-24T09:00:00.000Z"),  # and a space
        ("2018-02-24T09:00:00,5Z", "2018-02-24T09:00:00.500Z"),  # ISO-8601 allows a decimal comma
        ("2018-02-24T09:00:00.123456789Z", "2018-02-24T09:00:00.123Z"),  # nanoseconds, truncated
        ("2018-02-24T10:00+0100", "2018-02-24T09:00:00.000Z"),
        ("2018-02-24T10+01", "2018-02-24T09:00:00.000Z"),
        (" 2018-02-24T09:00:00Z\n", "2018-02-24T09:00:00.000Z"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z"),  # year 1 is rendered with four digits
        ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999Z"),
    ],
)
def test_every_iso_8601_form_clients_send_is_still_read(reader_client, plan, ts, rendered):
    response = reader_client.get(f"/space/{plan.a.id}/count", {"ts": ts})

    assert response.status_code == 200, response.json()
    assert response.json()["ts"] == rendered
