"""Every list pages the same way: a JSON array of at most `limit` rows (default 1,000, at most 10,000), and a
`Link: <…>; rel="next"` header while more follow, whose URL carries the opaque `cursor` of the next page.

Each list's rows are made in an order unlike the list's own, so a keyset that did not match the list's order would
skip or repeat rows."""

from dataclasses import dataclass
from datetime import timedelta

import pytest

from config.paging import cursor_encode
from dpu.tests.factories import DpuAssignmentFactory, DpuFactory
from occupancy.models import OccupancyReset
from occupancy.tests.factories import T0
from spaces.tests.factories import DoorwayFactory, SpaceFactory

pytestmark = pytest.mark.django_db


@dataclass
class Listing:
    """A list endpoint with rows in it: its URL, and the rows' identities in the order it must give them."""

    url: str
    expected: list
    key: str = "id"

    def keys(self, response) -> list:
        return [row[self.key] for row in response.json()]


def spaces() -> Listing:
    made = [SpaceFactory(name=name) for name in ("C", "A", "E", "B", "D")]
    return Listing("/space", [s.id for s in sorted(made, key=lambda s: s.name)])


def doorways() -> Listing:
    # Names repeat, so a page can end between two doorways of one name: the id breaks the tie.
    made = [DoorwayFactory(name=name) for name in ("Door B", "Door A", "Door B", "Door C", "Door A")]
    return Listing("/doorway", [d.id for d in sorted(made, key=lambda d: (d.name, d.id))])


def dpus() -> Listing:
    serials = [900, 283, 10**12, 7, 512]
    for serial in serials:
        DpuFactory(serial=serial)
    return Listing("/dpu", sorted(serials), key="serial")


def assignments() -> Listing:
    dpu = DpuFactory(serial=512)
    made = [
        DpuAssignmentFactory(dpu=dpu, valid_from=T0 + timedelta(days=day), valid_to=T0 + timedelta(days=day, hours=1))
        for day in (3, 1, 4, 0, 2)
    ]
    DpuAssignmentFactory(dpu=DpuFactory(serial=513))  # another DPU's: never listed
    return Listing("/dpu/512/assignments", [a.id for a in sorted(made, key=lambda a: a.valid_from)])


def resets() -> Listing:
    space, other = SpaceFactory(), SpaceFactory()
    made = [
        OccupancyReset.objects.create(space=space, timestamp=T0 + timedelta(hours=h), count=h) for h in (3, 1, 4, 0, 2)
    ]
    OccupancyReset.objects.create(space=other, timestamp=T0, count=9)  # another space's: never listed
    return Listing(f"/space/{space.id}/resets", [r.id for r in sorted(made, key=lambda r: r.timestamp)])


LISTS = [spaces, doorways, dpus, assignments, resets]


@pytest.fixture(params=LISTS, ids=[make.__name__ for make in LISTS])
def listing(request) -> Listing:
    return request.param()


def next_url(response) -> str | None:
    """The URL in the response's `Link: <URL>; rel="next"` header, None when there is none."""
    link = response.get("Link")
    if link is None:
        return None
    assert link.startswith("<http://testserver/") and link.endswith('>; rel="next"')
    return link[1 : link.index(">")]


def test_a_list_under_the_limit_comes_whole_with_no_link(reader_client, listing):
    response = reader_client.get(listing.url)

    assert response.status_code == 200
    assert listing.keys(response) == listing.expected
    assert "Link" not in response


def test_a_list_with_limit_one_gives_one_row_and_a_link_to_the_next(reader_client, listing):
    first = reader_client.get(listing.url, {"limit": 1})
    second = reader_client.get(next_url(first))

    assert first.status_code == 200 and second.status_code == 200
    assert listing.keys(first) == listing.expected[:1]
    assert listing.keys(second) == listing.expected[1:2]
    assert "limit=1" in next_url(first)


def test_following_every_link_gives_the_whole_list_in_order_once(reader_client, listing):
    for limit in (1, 2):
        seen, pages, url = [], 0, f"{listing.url}?limit={limit}"
        while url:
            response = reader_client.get(url)
            assert response.status_code == 200
            seen += listing.keys(response)
            pages += 1
            url = next_url(response)

        assert seen == listing.expected  # no duplicates, no gaps, the list's own order
        assert pages == -(-len(listing.expected) // limit)  # a full last page has no link after it


@pytest.mark.parametrize("limit", ["0", "10001", "x"])
def test_a_bad_limit_is_a_400_naming_limit(reader_client, listing, limit):
    response = reader_client.get(listing.url, {"limit": limit})

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"detail", "errors"} and body["detail"]
    assert list(body["errors"]) == ["limit"]


@pytest.mark.parametrize("cursor", ["nonsense!", cursor_encode([1, 2, 3]), cursor_encode([True])])
def test_a_bad_cursor_is_a_400_naming_cursor(reader_client, listing, cursor):
    response = reader_client.get(listing.url, {"cursor": cursor})

    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"detail", "errors"} and body["detail"]
    assert list(body["errors"]) == ["cursor"]


def test_space_pages_keep_the_instant_of_their_counts(reader_client):
    spaces()

    first = reader_client.get("/space", {"limit": 2, "ts": "2018-02-24T08:00:00Z"})

    assert "ts=2018-02-24T08%3A00%3A00Z" in next_url(first)


def test_reset_pages_keep_their_range_and_other_parameters_are_still_refused(reader_client):
    listing = resets()
    start, end = "2018-02-24T09:00:00", "2018-02-24T12:00:00"  # local times; the space keeps UTC

    seen, url = [], f"{listing.url}?limit=1&start={start}&end={end}"
    while url:
        response = reader_client.get(url)
        assert response.status_code == 200
        seen += listing.keys(response)
        url = next_url(response)
    refused = reader_client.get(listing.url, {"limit": 1, "since": start})

    assert seen == listing.expected[1:4]
    assert refused.status_code == 400 and list(refused.json()["errors"]) == ["since"]
