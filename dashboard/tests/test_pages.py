"""The dashboard's pages, through Django's test client: who may see them, what they show, and the one form."""

import csv
import gzip
import io
import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from dpu.services import EventIn, event_ingest
from occupancy.models import OccupancyReset
from occupancy.tests.factories import event, floorplan

pytestmark = pytest.mark.django_db

SAMPLE_DAY = "2018-02-24"  # at(0) is 2018-02-24 08:00Z


@pytest.fixture
def vera(django_user_model):
    """Vera signs in to look: not staff."""
    return django_user_model.objects.create_user(username="vera", password="look-but-dont-touch-2026")


@pytest.fixture
def sam(django_user_model):
    """Sam is staff: he may also set a space's count."""
    return django_user_model.objects.create_user(username="sam", password="staff-member-2026", is_staff=True)


def signed_in(client, user):
    client.force_login(user)
    return client


def card_count(html: str, space_id: int) -> int:
    """The count a space's card (or the space page) shows."""
    found = re.search(rf'data-space-id="{space_id}".*?data-count>(-?\d+)<', html, re.S)
    assert found, f"no count for space {space_id}"
    return int(found[1])


def page_buckets(html: str) -> list[dict]:
    found = re.search(r'<script id="day-buckets" type="application/json">(.*?)</script>', html, re.S)
    assert found, "the page holds no buckets"
    return json.loads(found[1])


def test_root_sends_a_signed_out_browser_to_sign_in_and_a_signed_in_one_to_the_overview(client, vera):
    assert client.get("/").headers["Location"] == "/accounts/login/?next=/"

    signed_in(client, vera)

    assert client.get("/").headers["Location"] == "/dashboard/"


@pytest.mark.parametrize("path", ["/dashboard/", "/dashboard/space/1/", f"/dashboard/space/1/?day={SAMPLE_DAY}"])
def test_every_page_needs_a_signed_in_user(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/accounts/login/?next=/dashboard/")


def test_sign_in_takes_the_right_password_only_and_says_why_not(client, vera):
    wrong = client.post("/accounts/login/", {"username": "vera", "password": "guess", "next": "/"})
    right = client.post("/accounts/login/", {"username": "vera", "password": "look-but-dont-touch-2026", "next": "/"})

    assert wrong.status_code == 200
    assert "do not match an account" in wrong.content.decode()
    assert right.status_code == 302 and right.headers["Location"] == "/"
    assert client.get("/dashboard/").status_code == 200


def test_the_overview_shows_every_space_with_its_count_now(client, vera):
    plan = floorplan()
    # Three people come in from outside into A; one of them walks on from A into B.
    event_ingest(events=[event(plan.dpu_283, s) for s in (0, 10, 20)] + [event(plan.dpu_423, 30, -1)])

    html = signed_in(client, vera).get("/dashboard/").content.decode()

    assert card_count(html, plan.a.pk) == 2
    assert card_count(html, plan.b.pk) == 1
    assert html.index(">A</a>") < html.index(">B</a>")  # by name


def test_a_space_with_a_capacity_shows_how_full_it_is(client, vera):
    plan = floorplan()
    plan.a.capacity = 4
    plan.a.save()
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_283, 1)])

    html = signed_in(client, vera).get("/dashboard/").content.decode()

    assert "of 4 people now" in html
    assert 'aria-label="50% of capacity" style="--fill: 50%"' in html


def test_the_overview_says_when_each_dpu_last_sent_an_event(client, vera):
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_283, 3600, -1)])  # 08:00Z and 09:00Z

    html = signed_in(client, vera).get("/dashboard/").content.decode()

    assert 'DPU 283: last event <time datetime="2018-02-24T09:00:00+00:00">24 Feb 2018, 09:00</time>' in html
    assert "DPU 423: no event yet" in html


def test_the_overview_shows_times_in_each_spaces_own_zone(client, vera):
    plan = floorplan()
    plan.a.time_zone = "Asia/Tokyo"
    plan.a.save()
    event_ingest(events=[event(plan.dpu_283, 0)])  # 08:00Z is 17:00 in Tokyo

    html = signed_in(client, vera).get("/dashboard/").content.decode()

    card = html[html.index(f'data-space-id="{plan.a.pk}"') : html.index(f'data-space-id="{plan.b.pk}"')]
    assert "24 Feb 2018, 17:00" in card
    assert "Asia/Tokyo" in card


def test_the_space_page_holds_the_days_buckets_as_the_api_gives_them(client, vera, staff_client):
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_283, 400), event(plan.dpu_283, 7200, -1)])

    html = signed_in(client, vera).get(f"/dashboard/space/{plan.a.pk}/?day={SAMPLE_DAY}").content.decode()
    api = staff_client.get(
        f"/space/{plan.a.pk}/counts",
        {"start": f"{SAMPLE_DAY}T00:00:00", "end": "2018-02-25T00:00:00", "interval": "5m"},
    ).json()

    buckets = page_buckets(html)
    assert buckets == api["buckets"]
    assert len(buckets) == 24 * 12
    # The day by hand: two came in at 08:00 and 08:06:40, one left at 10:00; so the peak was 2 from 08:06:40.
    assert re.search(r"<dt>Peak</dt><dd>2 <span class=\"muted\">at <time[^>]*>08:06</time>", html)
    assert "<dt>Entrances</dt><dd>2</dd>" in html
    assert "<dt>Exits</dt><dd>1</dd>" in html


def test_the_space_page_shows_a_local_day_of_the_spaces_zone(client, vera):
    """New York's 2018-03-11 lost an hour: 23 hours, 276 five-minute buckets, from 05:00Z."""
    plan = floorplan()
    plan.a.time_zone = "America/New_York"
    plan.a.save()
    zone = ZoneInfo("America/New_York")
    start = datetime(2018, 3, 11, tzinfo=zone).astimezone(UTC)
    hours = (datetime(2018, 3, 12, tzinfo=zone).astimezone(UTC) - start) / timedelta(hours=1)

    buckets = page_buckets(
        signed_in(client, vera).get(f"/dashboard/space/{plan.a.pk}/?day=2018-03-11").content.decode()
    )

    assert hours == 23
    assert len(buckets) == 23 * 12
    assert buckets[0]["start"] == "2018-03-11T05:00:00.000Z"


def test_the_previous_and_next_day_links_go_one_local_day_either_way(client, vera):
    plan = floorplan()

    html = signed_in(client, vera).get(f"/dashboard/space/{plan.a.pk}/?day=2018-03-01").content.decode()

    assert '<a rel="prev" href="?day=2018-02-28">' in html
    assert '<a rel="next" href="?day=2018-03-02">' in html


def test_the_csv_link_downloads_the_apis_csv_of_the_day(client, vera):
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_283, 400)])
    html = signed_in(client, vera).get(f"/dashboard/space/{plan.a.pk}/?day={SAMPLE_DAY}").content.decode()
    href = re.search(r'<a data-csv href="([^"]+)"', html)[1].replace("&amp;", "&")

    response = client.get(href)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [int(row["count"]) for row in rows] == [bucket["count"] for bucket in page_buckets(html)]


def test_a_day_that_is_not_a_date_is_a_400_that_says_so(client, vera):
    plan = floorplan()

    response = signed_in(client, vera).get(f"/dashboard/space/{plan.a.pk}/?day=26/02/2018")

    assert response.status_code == 400
    assert "Enter a valid date." in response.content.decode()


def test_an_unknown_space_is_a_404_page_for_a_person(client, vera):
    response = signed_in(client, vera).get("/dashboard/space/999/")

    assert response.status_code == 404
    assert "There is no such space." in response.content.decode()


def test_a_viewer_sees_no_set_count_form_and_may_not_post_one(client, vera):
    plan = floorplan()
    signed_in(client, vera)

    page = client.get(f"/dashboard/space/{plan.a.pk}/").content.decode()
    response = client.post(f"/dashboard/space/{plan.a.pk}/count", {"timestamp": "2018-02-24T10:00", "count": 3})

    assert 'class="set-count"' not in page
    assert response.status_code == 403
    assert not OccupancyReset.objects.exists()


def test_staff_sets_the_count_at_a_local_time_through_the_reset_service(client, sam):
    plan = floorplan()
    plan.a.time_zone = "Europe/Berlin"
    plan.a.save()
    event_ingest(events=[event(plan.dpu_283, 0)])  # one person in A from 08:00Z

    response = signed_in(client, sam).post(
        f"/dashboard/space/{plan.a.pk}/count", {"timestamp": "2018-02-24T10:00:00", "count": 7}
    )

    reset = OccupancyReset.objects.get()
    assert (reset.space, reset.timestamp, reset.count, reset.created_by) == (
        plan.a,
        datetime(2018, 2, 24, 9, 0, tzinfo=UTC),  # 10:00 in Berlin, UTC+1 in February
        7,
        sam,
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/dashboard/space/{plan.a.pk}/?day={SAMPLE_DAY}#count"
    page = client.get(response.headers["Location"]).content.decode()
    assert card_count(page, plan.a.pk) == 7
    assert page_buckets(page)[10 * 12]["count"] == 7  # the 10:00-10:05 bucket, local
    assert "<td>7</td><td>sam</td>" in page


def test_a_count_the_reset_service_refuses_is_shown_on_the_form_and_nothing_is_stored(client, sam):
    plan = floorplan()
    future = (timezone.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")

    response = signed_in(client, sam).post(f"/dashboard/space/{plan.a.pk}/count", {"timestamp": future, "count": 1})

    assert response.status_code == 400
    assert "is more than 5 minutes in the future" in response.content.decode()
    assert not OccupancyReset.objects.exists()


def test_a_day_with_recent_events_is_marked_as_not_yet_settled(client, vera):
    plan = floorplan()
    now = timezone.now()
    event_ingest(events=[EventIn(serial=283, timestamp=now - timedelta(minutes=10), direction=1)])
    today = now.date().isoformat()  # the spaces are in UTC

    recent = signed_in(client, vera).get(f"/dashboard/space/{plan.a.pk}/?day={today}").content.decode()
    old = client.get(f"/dashboard/space/{plan.a.pk}/?day={SAMPLE_DAY}").content.decode()

    assert '<dt>Numbers</dt><dd><span class="pending">may still change</span>' in recent
    assert '<dt>Numbers</dt><dd><span class="settled">settled</span>' in old


def test_the_pages_are_compressed_for_a_browser_that_takes_gzip(client, vera):
    plan = floorplan()
    signed_in(client, vera)

    for path in ("/dashboard/", f"/dashboard/space/{plan.a.pk}/?day={SAMPLE_DAY}"):
        response = client.get(path, HTTP_ACCEPT_ENCODING="gzip, deflate")

        assert response.headers["Content-Encoding"] == "gzip"
        assert "data-count>" in gzip.decompress(response.content).decode()
