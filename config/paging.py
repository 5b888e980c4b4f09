"""Keyset paging for long lists: `limit` and an opaque `cursor` in, a JSON array and a `Link: <…>; rel="next"`
header out.

A page starts after the key (the ordering fields' values) of the last row of the page before, so pages stay
stable while rows are added elsewhere and cost one index range scan however deep the client reads; OFFSET would
re-read every skipped row. Every list of the API pages this way; a list's selector names its ordering fields (one
unique field such as `serial`, or a few ending with `id`, such as (`timestamp`, `id`)) and their types, its key's
shape.
"""

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

DEFAULT_LIMIT = 1_000
MAX_LIMIT = 10_000
PARAMS = ("limit", "cursor")

# The types a key may hold, as written in a cursor: datetimes as ISO-8601 (to the microsecond), the rest as JSON.
KeyType = type[datetime] | type[int] | type[str]


@dataclass(frozen=True)
class PageRequest:
    """What the client asked for: at most `limit` rows, after the row whose key is `after` (None: from the start)."""

    limit: int
    after: tuple | None


@dataclass(frozen=True)
class Page:
    """One page of rows, and the key to continue after (None: this was the last page)."""

    rows: list
    next_key: tuple | None


def cursor_encode(key: Sequence) -> str:
    """An opaque, URL-safe cursor for a key."""
    values = [value.isoformat() if isinstance(value, datetime) else value for value in key]
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def cursor_decode(raw: str, *, shape: Sequence[KeyType]) -> tuple:
    """The key in a cursor made by cursor_encode for a key of these types; a 400 naming `cursor` otherwise."""
    try:
        values = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if not isinstance(values, list) or len(values) != len(shape):
            raise ValueError
        key = []
        for value, kind in zip(values, shape, strict=True):
            if kind is datetime:
                value = datetime.fromisoformat(value)
                if value.tzinfo is None:
                    raise ValueError
            elif type(value) is not kind:  # JSON true is not 1
                raise ValueError
            key.append(value)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise ValidationError(
            {"cursor": ["is not a cursor this list gave; follow the Link header's URL, or leave cursor out to start."]}
        ) from None
    return tuple(key)


def page_request(params, *, shape: Sequence[KeyType], default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT):
    """`limit` and `cursor` from the query parameters (their last values); a 400 naming the bad one."""
    limit = default
    raw = params.get("limit")
    if raw is not None:
        text = raw.strip()
        if not (text.isascii() and text.isdigit() and 1 <= int(text) <= maximum):
            raise ValidationError({"limit": [f"must be a whole number from 1 to {maximum}; default {default}."]})
        limit = int(text)
    raw = params.get("cursor")
    return PageRequest(limit=limit, after=None if raw is None else cursor_decode(raw, shape=shape))


def keyset_after(fields: Sequence[str], key: Sequence) -> Q:
    """Rows ordered after `key` by `fields` (all ascending). The leading `first >= v` is implied by the rest but
    lets the database use an index on the first field as a range."""
    after = Q(**{f"{fields[-1]}__gt": key[-1]})
    if len(fields) == 1:
        return after
    for field, value in zip(reversed(fields[:-1]), reversed(key[:-1]), strict=True):
        after = Q(**{f"{field}__gt": value}) | (Q(**{field: value}) & after)
    return Q(**{f"{fields[0]}__gte": key[0]}) & after


def keyset_page(queryset: QuerySet, *, fields: Sequence[str], page: PageRequest) -> Page:
    """One page of `queryset` ordered by `fields`, unique together (one unique field, or ending with the id)."""
    if page.after is not None:
        queryset = queryset.filter(keyset_after(fields, page.after))
    # One row more than asked tells whether another page follows without a count.
    rows = list(queryset.order_by(*fields)[: page.limit + 1])
    if len(rows) <= page.limit:
        return Page(rows=rows, next_key=None)
    rows = rows[: page.limit]
    return Page(rows=rows, next_key=tuple(getattr(rows[-1], field) for field in fields))


def paged_response(request, data: list, *, page: Page) -> Response:
    """The rows as a JSON array; with a Link header to the next page when there is one."""
    response = Response(data)
    if page.next_key is not None:
        params = request.query_params.copy()
        params["cursor"] = cursor_encode(page.next_key)
        url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
        response["Link"] = f'<{url}>; rel="next"'
    return response


PAGING_PARAMETERS = [
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        description=f"Rows per page, 1 to {MAX_LIMIT}; default {DEFAULT_LIMIT}.",
        default=DEFAULT_LIMIT,
    ),
    OpenApiParameter(
        "cursor",
        str,
        description="Where the page starts: opaque, taken from the previous page's Link header; leave out to start.",
    ),
    OpenApiParameter(
        "Link",
        str,
        location=OpenApiParameter.HEADER,
        response=[200],
        description='`<absolute URL of the next page>; rel="next"`, when more rows follow; absent on the last page.',
    ),
]


def page_of(serializer, order: str) -> OpenApiResponse:
    """The schema's 200 of a paged list: one page of `serializer` (many=True), in `order`."""
    return OpenApiResponse(
        serializer,
        description=f'One page, {order}. When more follow, the Link header (rel="next") gives the next page\'s URL.',
    )
