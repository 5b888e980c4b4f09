"""Who may call the API: every endpoint needs a signed-in user (DRF token or session); only staff may write."""

import json
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from dpu.models import Dpu, DpuAssignment, DpuEvent
from dpu.services import dpu_token_rotate
from occupancy.models import OccupancyReset, SpaceOccupancy
from occupancy.services import reset_create
from occupancy.tests.factories import Floorplan, floorplan
from spaces.models import Doorway, Space

pytestmark = pytest.mark.django_db

READS = {
    "space-list": lambda plan: "/space/",
    "doorway-list": lambda plan: "/doorway/",
    "dpu-list": lambda plan: "/dpu/",
    "assignment-list": lambda plan: "/dpu/283/assignments",
    "space-count": lambda plan: f"/space/{plan.a.id}/count",
    "space-detail": lambda plan: f"/space/{plan.a.id}",
    "space-list-at": lambda plan: "/space/?ts=2018-02-25T00:00:00Z",
    "space-resets": lambda plan: f"/space/{plan.a.id}/resets",
    "space-counts": lambda plan: f"/space/{plan.a.id}/counts?start=2018-02-24&end=2018-02-25&interval=1h",
    "counts": lambda plan: f"/counts?spaces={plan.a.id},{plan.b.id}&start=2018-02-24&end=2018-02-25",
    "counts-csv": lambda plan: f"/counts?spaces={plan.a.id}&start=2018-02-24&end=2018-02-25&format=csv",
}
# Each body is valid, so that a refusal below is about who asks, never about what they sent.
WRITES = {
    "space-create": lambda plan: ("/space/", {"name": "Lobby"}),
    "doorway-create": lambda plan: ("/doorway/", {"name": "Back", "sides": [None, plan.b.id]}),
    "dpu-create": lambda plan: ("/dpu/", {"serial": 999}),
    "dpu-move": lambda plan: (
        "/dpu/283/assignments",
        {"doorway": plan.x.id, "enters": None, "valid_from": "2018-02-25T00:00:00Z"},
    ),
    "events": lambda plan: ("/events", [{"dpu_id": 283, "timestamp": "2018-02-24T08:45:21.893Z", "direction": 1}]),
    "reset-create": lambda plan: (f"/space/{plan.a.id}/resets", {"timestamp": "2018-02-24T09:00:00Z", "count": 3}),
}


@pytest.fixture
def plan() -> Floorplan:
    return floorplan()


def state() -> dict[str, int]:
    """How many rows of each kind exist: a refused write leaves every one as it was."""
    models = (Space, Doorway, Dpu, DpuAssignment, DpuEvent, SpaceOccupancy)
    return {model.__name__: model.objects.count() for model in models} | {
        "open assignments": DpuAssignment.objects.filter(valid_to__isnull=True).count()
    }


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Password sign-in is what these tests are about, not the strength of the hash: keep them quick.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def sam(django_user_model):
    return django_user_model.objects.create_user(username="sam.session", password="a long pass phrase", is_staff=True)


@pytest.fixture
def rita(django_user_model):
    return django_user_model.objects.create_user(username="rita.session", password="another pass phrase")


# --- nobody signed in ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", READS)
def test_anonymous_reads_are_unauthorised(plan, endpoint):
    response = APIClient().get(READS[endpoint](plan))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"  # tells the client how to sign in


@pytest.mark.parametrize("endpoint", WRITES)
def test_anonymous_writes_are_unauthorised_and_change_nothing(plan, endpoint):
    path, body = WRITES[endpoint](plan)
    before = state()

    response = APIClient().post(path, body, format="json")

    assert response.status_code == 401
    assert state() == before


@pytest.mark.parametrize("endpoint", WRITES)
def test_a_wrong_token_is_unauthorised(plan, endpoint):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    path, body = WRITES[endpoint](plan)
    before = state()

    response = client.post(path, body, format="json")

    assert response.status_code == 401
    assert state() == before


def test_the_token_of_a_deactivated_staff_user_is_unauthorised(plan, sam):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=sam).key}")
    sam.is_active = False
    sam.save()
    before = state()

    response = client.post(*WRITES["events"](plan), format="json")

    assert response.status_code == 401
    assert state() == before


# --- a reader (signed in, not staff) --------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", READS)
def test_readers_may_read_every_endpoint(reader_client, plan, endpoint):
    response = reader_client.get(READS[endpoint](plan))

    assert response.status_code == 200


@pytest.mark.parametrize("endpoint", WRITES)
def test_readers_may_not_write_and_change_nothing(reader_client, plan, endpoint):
    path, body = WRITES[endpoint](plan)
    before = state()

    response = reader_client.post(path, body, format="json")

    assert response.status_code == 403
    assert response.json()["detail"]
    assert state() == before


def test_readers_are_refused_before_their_body_is_read(reader_client, plan):
    # A refused writer learns nothing about the validity of what it sent.
    response = reader_client.generic("POST", "/events", "not json", content_type="application/json")

    assert response.status_code == 403
    assert state()["DpuEvent"] == 0


# --- staff --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", WRITES)
def test_staff_may_write_every_endpoint(staff_client, plan, endpoint):
    path, body = WRITES[endpoint](plan)
    before = state()

    response = staff_client.post(path, body, format="json")

    assert response.status_code == 201
    assert state() != before


# --- sessions -----------------------------------------------------------------------------------------------------


def test_a_session_signed_in_with_a_password_may_read(plan, rita):
    client = APIClient()
    assert client.login(username="rita.session", password="another pass phrase")

    response = client.get(f"/space/{plan.a.id}/count", {"ts": "2018-02-25T00:00:00Z"})

    assert response.status_code == 200
    assert response.json()["count"] == 0


@pytest.mark.parametrize("endpoint", READS)
def test_a_reader_session_may_read(plan, rita, endpoint):
    client = APIClient()
    client.force_login(rita)

    assert client.get(READS[endpoint](plan)).status_code == 200


@pytest.mark.parametrize("endpoint", WRITES)
def test_a_reader_session_may_not_write(plan, rita, endpoint):
    client = APIClient()
    client.force_login(rita)
    path, body = WRITES[endpoint](plan)
    before = state()

    response = client.post(path, body, format="json")

    assert response.status_code == 403
    assert state() == before


@pytest.mark.parametrize("endpoint", WRITES)
def test_a_staff_session_may_write(plan, sam, endpoint):
    client = APIClient()
    client.force_login(sam)
    path, body = WRITES[endpoint](plan)
    before = state()

    response = client.post(path, body, format="json")

    assert response.status_code == 201
    assert state() != before


def test_a_staff_session_signed_in_with_a_password_may_post_events(plan, sam):
    client = APIClient()
    assert client.login(username="sam.session", password="a long pass phrase")

    response = client.post(*WRITES["events"](plan), format="json")

    assert response.status_code == 201
    assert DpuEvent.objects.filter(dpu__serial=283).count() == 1


def test_signing_out_ends_the_session(plan, rita):
    client = APIClient()
    client.force_login(rita)
    client.logout()

    assert client.get("/space/").status_code == 401


# --- DPUs, each with its own token ------------------------------------------------------------------------------------


def dpu_client(dpu) -> APIClient:
    """A client holding `dpu`'s own token, as the device would after provisioning."""
    token = dpu_token_rotate(dpu=dpu)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_a_dpu_token_posts_that_dpus_events(plan):
    response = dpu_client(plan.dpu_283).post(*WRITES["events"](plan), format="json")

    assert response.status_code == 201
    assert list(DpuEvent.objects.values_list("dpu__serial", flat=True)) == [283]


def test_a_dpu_token_may_not_post_another_dpus_events_and_nothing_is_stored(plan):
    batch = [
        {"dpu_id": 283, "timestamp": "2018-02-24T08:45:21.893Z", "direction": 1},
        {"dpu_id": 423, "timestamp": "2018-02-24T08:46:00.000Z", "direction": 1},
    ]
    before = state()

    response = dpu_client(plan.dpu_283).post("/events", batch, format="json")

    assert response.status_code == 403
    assert "Item 1" in response.json()["detail"] and "DPU 283" in response.json()["detail"]
    assert state() == before


@pytest.mark.parametrize("endpoint", READS)
def test_a_dpu_token_reads_nothing(plan, endpoint):
    response = dpu_client(plan.dpu_283).get(READS[endpoint](plan))

    assert response.status_code == 403


@pytest.mark.parametrize("endpoint", sorted(set(WRITES) - {"events"}))
def test_a_dpu_token_changes_no_layout(plan, endpoint):
    path, body = WRITES[endpoint](plan)
    before = state()

    response = dpu_client(plan.dpu_283).post(path, body, format="json")

    assert response.status_code == 403
    assert state() == before


def test_a_rotated_dpu_token_stops_working_at_once(plan):
    old = dpu_client(plan.dpu_283)
    new = dpu_client(plan.dpu_283)  # rotates again
    before = state()

    refused = old.post(*WRITES["events"](plan), format="json")

    assert refused.status_code == 401
    assert "rotated" in refused.json()["detail"]
    assert state() == before
    assert new.post(*WRITES["events"](plan), format="json").status_code == 201


def test_an_unknown_dpu_token_is_unauthorised(plan):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token dpu_not-a-token-anyone-was-given")

    assert client.post(*WRITES["events"](plan), format="json").status_code == 401
    assert state()["DpuEvent"] == 0


# --- dashboards: read-only tokens from `manage.py dashboard_token` ---------------------------------------------------


def dashboard_client(name: str = "lobby-screen") -> APIClient:
    out = StringIO()
    call_command("dashboard_token", name, stdout=out)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {out.getvalue().strip()}")
    return client


@pytest.mark.parametrize("endpoint", READS)
def test_a_dashboard_token_reads_every_endpoint(plan, endpoint):
    assert dashboard_client().get(READS[endpoint](plan)).status_code == 200


@pytest.mark.parametrize("endpoint", WRITES)
def test_a_dashboard_token_writes_nothing(plan, endpoint):
    path, body = WRITES[endpoint](plan)
    before = state()

    response = dashboard_client().post(path, body, format="json")

    assert response.status_code == 403
    assert state() == before


def test_a_new_dashboard_token_replaces_the_old_one(plan, django_user_model):
    old = dashboard_client()
    new = dashboard_client()

    assert old.get("/space/").status_code == 401
    assert new.get("/space/").status_code == 200
    screen = django_user_model.objects.get(username="lobby-screen")
    assert not screen.is_staff and not screen.has_usable_password()


def test_a_dashboard_token_is_never_given_to_staff(sam):
    with pytest.raises(CommandError, match="staff"):
        call_command("dashboard_token", sam.username, stdout=StringIO())

    assert not Token.objects.filter(user=sam).exists()


# --- changing and removing: PATCH /space/<id>, DELETE /space/<id>/resets/<id> ---------------------------------------

# Each valid, so that a refusal is about who asks. The reset to delete is made by the `reset` fixture.
CHANGES = {
    "space-patch": lambda plan, reset: ("PATCH", f"/space/{plan.a.id}", {"capacity": 12, "allow_negative": True}),
    "reset-delete": lambda plan, reset: ("DELETE", f"/space/{plan.a.id}/resets/{reset.id}", None),
}


@pytest.fixture
def reset(plan) -> OccupancyReset:
    """A reset of A to 2 people at 2018-02-24T09:00Z."""
    return reset_create(space=plan.a, timestamp=datetime(2018, 2, 24, 9, tzinfo=UTC), count=2)


def settings_state() -> dict:
    """state(), plus what a PATCH or a DELETE changes without adding rows: settings, resets, occupancy rows."""
    return state() | {
        "spaces": list(Space.objects.order_by("id").values_list("id", "allow_negative", "capacity")),
        "resets": list(OccupancyReset.objects.order_by("id").values_list("id", "timestamp", "count")),
        "occupancy": list(SpaceOccupancy.objects.order_by("id").values_list("id", "count", "modified")),
    }


def send_change(client, endpoint: str, plan, reset):
    method, path, body = CHANGES[endpoint](plan, reset)
    return client.generic(method, path, json.dumps(body) if body is not None else "", content_type="application/json")


@pytest.mark.parametrize("endpoint", CHANGES)
def test_anonymous_changes_are_unauthorised_and_change_nothing(plan, reset, endpoint):
    before = settings_state()

    response = send_change(APIClient(), endpoint, plan, reset)

    assert response.status_code == 401
    assert settings_state() == before


@pytest.mark.parametrize("endpoint", CHANGES)
def test_readers_may_not_change_and_change_nothing(reader_client, plan, reset, endpoint):
    before = settings_state()

    response = send_change(reader_client, endpoint, plan, reset)

    assert response.status_code == 403
    assert response.json()["detail"]
    assert settings_state() == before


@pytest.mark.parametrize("endpoint", CHANGES)
def test_a_dashboard_token_changes_nothing(plan, reset, endpoint):
    before = settings_state()

    response = send_change(dashboard_client(), endpoint, plan, reset)

    assert response.status_code == 403
    assert settings_state() == before


@pytest.mark.parametrize("endpoint", CHANGES)
def test_a_dpu_token_changes_nothing(plan, reset, endpoint):
    before = settings_state()

    response = send_change(dpu_client(plan.dpu_283), endpoint, plan, reset)

    assert response.status_code == 403
    assert settings_state() == before


@pytest.mark.parametrize("endpoint", CHANGES)
def test_staff_may_change(staff_client, plan, reset, endpoint):
    before = settings_state()

    response = send_change(staff_client, endpoint, plan, reset)

    assert response.status_code in (200, 204)
    assert settings_state() != before


def test_readers_may_not_post_a_reset_to_an_unknown_space_either(reader_client, plan):
    # Refused for who asks before anything about the space is looked up: a reader learns nothing from a 404.
    response = reader_client.post(
        "/space/999999/resets", {"timestamp": "2018-02-24T09:00:00Z", "count": 3}, format="json"
    )

    assert response.status_code == 403
    assert not OccupancyReset.objects.exists()


def test_a_dashboard_token_posts_no_reset(plan):
    before = settings_state()

    response = dashboard_client().post(*WRITES["reset-create"](plan), format="json")

    assert response.status_code == 403
    assert settings_state() == before
