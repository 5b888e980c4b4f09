"""One error shape: every 4xx body has `detail`, a sentence for a person; a validation error also has `errors`,
each field's messages."""

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from django.test import override_settings
from rest_framework.test import APIClient

from config.api import exception_handler
from dpu.services import dpu_token_rotate
from occupancy.tests.factories import floorplan
from spaces.models import Doorway

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan():
    return floorplan()


def assert_error_shape(body: dict) -> None:
    """`detail` a non-empty string; `errors`, when there, field -> a list of message strings; nothing else."""
    assert isinstance(body["detail"], str) and body["detail"]
    assert set(body) <= {"detail", "errors"}
    for messages in body.get("errors", {}).values():
        assert messages and all(isinstance(message, str) for message in messages)


def test_a_validation_error_of_one_field_says_the_field_and_its_message(staff_client):
    response = staff_client.post("/space/", {"name": ""}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "name: This field may not be blank.",
        "errors": {"name": ["This field may not be blank."]},
    }


def test_a_validation_error_of_several_fields_names_them_once_each(staff_client):
    response = staff_client.post("/space/", {"name": "", "allow_negative": "sometimes"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "detail": "2 fields are not valid: name, allow_negative.",
        "errors": {"name": ["This field may not be blank."], "allow_negative": ["Must be a valid boolean."]},
    }


def test_a_violated_database_constraint_is_explained_without_its_name(plan):
    # A doorway from a space into itself: clean() says why, and Django adds "Constraint “doorway_sides_differ” is
    # violated." for the same rule.
    with pytest.raises(DjangoValidationError) as raised:
        Doorway(name="Loop", side_a=plan.a, side_b=plan.a).full_clean()

    response = exception_handler(raised.value, {})

    assert response.status_code == 400
    assert response.data == {"detail": "A doorway must join two different sides."}


def test_a_constraint_no_clean_explains_gets_a_sentence():
    error = DjangoValidationError({"capacity": ["Constraint “space_capacity_positive” is violated."]})

    response = exception_handler(error, {})

    assert "space_capacity_positive" not in str(response.data)
    assert response.data["errors"] == {"capacity": ["A space's capacity must be 1 or more, or empty."]}


def test_an_unknown_object_is_a_404_with_detail(reader_client):
    response = reader_client.get("/space/999999")

    assert response.status_code == 404
    assert_error_shape(response.json())


def test_an_unknown_path_is_a_404_with_detail(reader_client):
    response = reader_client.get("/no/such/path")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_a_method_the_endpoint_does_not_take_is_a_405_with_detail(staff_client):
    response = staff_client.put("/space/", {"name": "Lobby"}, format="json")

    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "PUT" not allowed.'}


def test_a_dpu_token_reading_is_told_dpu_tokens_may_only_post_events(plan):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {dpu_token_rotate(dpu=plan.dpu_283)}")

    response = client.get("/space/")

    assert response.status_code == 403
    detail = response.json()["detail"]
    assert_error_shape(response.json())
    assert "DPU tokens may only post events" in detail
    assert "change" not in detail.split(";")[0]  # a read is not refused for "changing" anything


def test_a_reader_changing_something_is_told_only_staff_may(reader_client):
    response = reader_client.post("/space/", {"name": "Lobby"}, format="json")

    assert response.status_code == 403
    assert response.json() == {"detail": "Only staff users may change this."}


def test_an_unauthenticated_request_is_a_401_with_detail(plan):
    response = APIClient().get("/space/")

    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_a_malformed_json_body_is_a_400_with_detail_and_no_errors(staff_client):
    response = staff_client.post("/space/", '{"name": ', content_type="application/json")

    assert response.status_code == 400
    assert_error_shape(response.json())
    assert "errors" not in response.json()
    assert response.json()["detail"].startswith("JSON parse error")


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100)
def test_a_too_large_body_is_a_413_with_detail(staff_client):
    response = staff_client.post("/space/", {"name": "x" * 200}, format="json")

    assert response.status_code == 413
    assert_error_shape(response.json())
    assert "larger than 100 bytes" in response.json()["detail"]


def test_a_refused_event_in_a_batch_keeps_its_keys_and_adds_errors(staff_client, plan):
    good = {"dpu_id": 283, "timestamp": "2018-02-24T08:45:21.893Z", "direction": 1}
    bad = {"dpu_id": 283, "timestamp": "2018-02-24T08:46:00.000Z", "direction": 2}

    response = staff_client.post("/events", [good, bad], format="json")

    assert response.status_code == 400
    message = "must be 1 (towards the side the DPU faces) or -1 (away from it)."
    assert response.json() == {
        "detail": f"Item 1: direction: {message} Nothing in this batch was stored.",
        "index": 1,
        "field": "direction",
        "message": message,
        "errors": {"direction": [message]},
    }


def test_an_unexpected_failure_answers_json_with_detail(reader_client, monkeypatch):
    """A bug is a 500 whose body still has `detail` (Django's page would be HTML), and says nothing internal."""
    import occupancy.apis

    def broken(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(occupancy.apis, "space_count_at", broken)
    reader_client.raise_request_exception = False

    response = reader_client.get("/space/1/count")

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "The service failed to answer this request; the failure is logged."}
