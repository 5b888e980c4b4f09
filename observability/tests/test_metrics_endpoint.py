"""GET /metrics: Prometheus' text format, for staff users' tokens and the METRICS_TOKEN bearer, refused as JSON to
everyone else; requests counted by URL pattern and status; gauges read from the database at each scrape."""

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from dpu.services import dpu_token_rotate
from observability import metrics
from observability.middleware import endpoint_label
from occupancy.models import SpaceOccupancy
from occupancy.tests.factories import floorplan

pytestmark = pytest.mark.django_db

METRICS_TOKEN = "scrape-7b0c1f9d2e4a8c63"


def samples(response) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a /metrics answer, read with prometheus_client's own parser."""
    text = response.content.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_staff_token_reads_the_metrics_as_prometheus_text(staff_client):
    response = staff_client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "no-store" in response["Cache-Control"]
    families = {family.name for family in text_string_to_metric_families(response.content.decode())}
    assert {
        "http_requests",
        "http_request_duration_seconds",
        "occupancy_events",
        "occupancy_items_refused",
        "occupancy_event_lateness_seconds",
        "occupancy_rows_recalculated",
        "occupancy_pending_rows",
        "occupancy_dpus",
        "occupancy_stream_clients",
    } <= families


def test_metrics_token_reads_the_metrics_without_a_user(settings):
    settings.METRICS_TOKEN = METRICS_TOKEN

    response = bearer(METRICS_TOKEN).get("/metrics/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")


@pytest.mark.parametrize("configured", [METRICS_TOKEN, None])
def test_a_wrong_bearer_token_is_401(settings, configured):
    settings.METRICS_TOKEN = configured

    response = bearer("scrape-0000000000000000").get("/metrics")

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid metrics token: it must be the service's METRICS_TOKEN."}


def test_no_token_is_401_in_json_even_when_text_is_asked_for(settings):
    settings.METRICS_TOKEN = METRICS_TOKEN

    response = APIClient().get("/metrics", HTTP_ACCEPT="text/plain; version=0.0.4")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    assert response["WWW-Authenticate"] == "Token"


def test_a_user_who_is_not_staff_is_403(reader_client):
    response = reader_client.get("/metrics")

    assert response.status_code == 403
    assert response.json() == {"detail": "Only staff users and the metrics token (METRICS_TOKEN) may read the metrics."}


def test_a_dpu_token_is_403():
    plan = floorplan()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {dpu_token_rotate(dpu=plan.dpu_283)}")

    response = client.get("/metrics")

    assert response.status_code == 403


def test_the_metrics_token_opens_nothing_else(settings):
    settings.METRICS_TOKEN = METRICS_TOKEN

    assert bearer(METRICS_TOKEN).get("/space").status_code == 401


def test_requests_are_counted_and_timed_by_url_pattern_method_and_status(staff_client):
    plan = floorplan()
    route = ("/space/{space_id}/count", "GET", "200")
    labels = dict(zip(("endpoint", "method", "status"), route, strict=True))
    count_before = REGISTRY.get_sample_value("http_requests_total", labels) or 0
    timed_before = REGISTRY.get_sample_value("http_request_duration_seconds_count", labels) or 0

    for space in (plan.a, plan.b):
        assert staff_client.get(f"/space/{space.pk}/count", {"ts": "2018-02-26T12:00:00Z"}).status_code == 200
    scraped = samples(staff_client.get("/metrics"))

    key = tuple(sorted(labels.items()))
    assert scraped["http_requests_total", key] == count_before + 2
    assert scraped["http_request_duration_seconds_count", key] == timed_before + 2
    # The ids in the paths never become labels.
    endpoints = {dict(labels)["endpoint"] for _, labels in scraped if "endpoint" in dict(labels)}
    assert not any(str(plan.a.pk) in endpoint.split("/") for endpoint in endpoints)


def test_paths_no_pattern_matches_share_one_label(staff_client):
    labels = {"endpoint": "unmatched", "method": "GET", "status": "404"}
    before = REGISTRY.get_sample_value("http_requests_total", labels) or 0

    staff_client.get("/no/such/path/1")
    staff_client.get("/no/such/path/2")

    assert REGISTRY.get_sample_value("http_requests_total", labels) == before + 2


def test_made_up_methods_share_one_label(staff_client):
    labels = {"endpoint": "/health", "method": "other", "status": "405"}
    before = REGISTRY.get_sample_value("http_requests_total", labels) or 0

    staff_client.generic("BREW", "/health")

    assert REGISTRY.get_sample_value("http_requests_total", labels) == before + 1


@pytest.mark.parametrize(
    ("route", "label"),
    [
        (r"^space/(?P<space_id>[0-9]{1,18})/counts/?$", "/space/{space_id}/counts"),
        (
            r"^dpu/(?P<serial>[0-9]{1,19})/assignments/(?P<assignment_id>[0-9]{1,19})/?$",
            "/dpu/{serial}/assignments/{assignment_id}",
        ),
        ("dashboard/space/<int:space_id>/", "/dashboard/space/{space_id}/"),
        ("^metrics/?$", "/metrics"),
    ],
)
def test_an_endpoint_label_is_the_url_pattern_as_a_path_template(route, label):
    assert endpoint_label(route) == label


def test_posted_events_are_counted_by_outcome(staff_client):
    floorplan()
    event = {"dpu_id": 283, "timestamp": "2018-03-03T09:00:00.000Z", "direction": 1}
    before = {
        outcome: REGISTRY.get_sample_value("occupancy_events_total", {"outcome": outcome}) or 0
        for outcome in ("received", "created", "duplicate")
    }

    staff_client.post("/events", [event], format="json")
    staff_client.post("/events", [event, {**event, "direction": -1}], format="json")
    scraped = samples(staff_client.get("/metrics"))

    def total(outcome):
        return scraped["occupancy_events_total", (("outcome", outcome),)] - before[outcome]

    assert (total("received"), total("created"), total("duplicate")) == (3, 2, 1)


def test_pending_rows_are_counted_at_scrape_time(staff_client):
    floorplan()
    staff_client.post(
        "/events",
        [
            {"dpu_id": 283, "timestamp": "2018-03-03T09:00:00.000Z", "direction": 1},
            {"dpu_id": 423, "timestamp": "2018-03-03T09:05:00.000Z", "direction": 1},
        ],
        format="json",
    )
    rows = SpaceOccupancy.objects.order_by("pk")
    assert not rows.filter(status=SpaceOccupancy.Status.PENDING).exists()  # years old: settled when written

    assert samples(staff_client.get("/metrics"))["occupancy_pending_rows", ()] == 0

    rows.filter(pk=rows.first().pk).update(status=SpaceOccupancy.Status.PENDING)

    assert samples(staff_client.get("/metrics"))["occupancy_pending_rows", ()] == 1

    rows.update(status=SpaceOccupancy.Status.PENDING)

    assert samples(staff_client.get("/metrics"))["occupancy_pending_rows", ()] == rows.count() > 1


def test_pending_rows_are_counted_on_the_partial_index(django_assert_num_queries):
    from django.db import connection

    from observability.selectors import pending_row_count

    with django_assert_num_queries(1) as queries:
        pending_row_count()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")  # an empty table: the planner would read it whole
            cursor.execute("EXPLAIN " + queries.captured_queries[0]["sql"])
            plan = "\n".join(row[0] for row in cursor.fetchall())
        # Each monthly partition has its own copy of the index, named by PostgreSQL after its columns.
        indexes = [line for line in plan.splitlines() if "Index" in line]
        assert "Seq Scan" not in plan
        assert indexes and all("occupancy_pending" in line or "_space_id_modified_idx" in line for line in indexes)


def test_dpus_are_counted_by_status_at_scrape_time(staff_client):
    floorplan()  # DPUs 283 and 423, hanging, never heard from

    scraped = samples(staff_client.get("/metrics"))
    by_status = {dict(labels)["status"]: value for (name, labels), value in scraped.items() if name == "occupancy_dpus"}

    assert by_status == {"ok": 0, "silent": 0, "unassigned": 0, "never_seen": 2}


def test_stream_clients_are_the_ones_connected_now(staff_client):
    before = samples(staff_client.get("/metrics"))["occupancy_stream_clients", ()]

    metrics.stream_client_connected()
    metrics.stream_client_connected()
    metrics.stream_client_disconnected()
    try:
        assert samples(staff_client.get("/metrics"))["occupancy_stream_clients", ()] == before + 1
    finally:
        metrics.stream_client_disconnected()


def test_a_database_outage_leaves_out_its_gauges_and_serves_the_rest(settings, monkeypatch, caplog):
    from django.db import OperationalError

    def unreachable():
        raise OperationalError("connection refused")

    monkeypatch.setattr("observability.collectors.pending_row_count", unreachable)
    settings.METRICS_TOKEN = METRICS_TOKEN

    response = bearer(METRICS_TOKEN).get("/metrics")

    assert response.status_code == 200
    names = {name for name, _ in samples(response)}
    assert "occupancy_pending_rows" not in names
    assert "http_requests_total" in names
    assert "the database gauges could not be read: connection refused" in caplog.text
