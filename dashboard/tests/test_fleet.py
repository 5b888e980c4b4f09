"""The fleet page (/dashboard/fleet/), through Django's test client: every DPU, its status in words, worst first."""

import re
from datetime import timedelta
from unittest import mock

import pytest

from dpu.services import dpu_clock_refusal_record, event_ingest
from dpu.tests.factories import DpuFactory
from occupancy.tests.factories import INSTALLED, NOW, event, floorplan

pytestmark = pytest.mark.django_db


@pytest.fixture
def vera(django_user_model):
    """Vera signs in to look: not staff."""
    return django_user_model.objects.create_user(username="vera", password="look-but-dont-touch-2026")


def fleet_page(client, user, now):
    client.force_login(user)
    with mock.patch("django.utils.timezone.now", return_value=now):
        response = client.get("/dashboard/fleet/")
    assert response.status_code == 200
    return response.content.decode()


def rows(html: str) -> list[tuple[str, str]]:
    """(serial, status) of each row, in the page's order."""
    return re.findall(r'<tr data-serial="(\d+)" data-status="(\w+)">', html)


def test_the_fleet_page_needs_a_signed_in_user(client):
    response = client.get("/dashboard/fleet/")

    assert response.status_code == 302
    assert response.headers["Location"] == "/accounts/login/?next=/dashboard/fleet/"


def test_every_dpu_is_listed_worst_first_with_its_status_in_words(client, vera, settings):
    settings.DPU_SILENT_AFTER = timedelta(hours=24)
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0)], now=NOW)
    event_ingest(events=[event(plan.dpu_423, 0)], now=NOW + timedelta(hours=30))
    DpuFactory(serial=512)

    html = fleet_page(client, vera, NOW + timedelta(hours=30))

    assert rows(html) == [("283", "silent"), ("512", "never_seen"), ("423", "ok")]
    assert '<span class="status silent">silent</span>' in html
    assert '<span class="status never_seen">never seen</span>' in html
    assert "<caption>Every DPU, worst first" in html
    row_283 = re.search(r'<tr data-serial="283".*?</tr>', html, re.S)[0]
    assert ">X<" in row_283  # its doorway
    assert "25 Feb 2018, 08:00" in row_283  # its last report
    assert "at most" not in row_283  # nothing stored in the last 24 hours: no lateness


def test_a_dpu_with_a_broken_clock_shows_its_refusals(client, vera):
    floorplan()
    dpu_clock_refusal_record(serial=283, reason="clock_before_2000", timestamp=INSTALLED - timedelta(days=1), now=NOW)

    html = fleet_page(client, vera, NOW)

    row_283 = re.search(r'<tr data-serial="283".*?</tr>', html, re.S)[0]
    assert "1 before 2000, 0 ahead" in row_283
    assert "before 2000: 1999-12-31 00:00:00" in row_283


def test_the_header_links_to_the_fleet(client, vera):
    html = fleet_page(client, vera, NOW)

    assert '<a href="/dashboard/fleet/">DPUs</a>' in html


def test_an_empty_fleet_says_so(client, vera):
    assert "No DPUs yet." in fleet_page(client, vera, NOW)


def test_the_overview_shows_each_dpus_latest_event_from_its_stored_field(client, vera):
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_283, 90)], now=NOW)
    client.force_login(vera)

    html = client.get("/dashboard/").content.decode()

    assert "DPU 283: last event" in html and "24 Feb 2018, 08:01" in html
    assert "DPU 423: no event yet" in html
