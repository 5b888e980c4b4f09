"""One place that sees every request: it records the request metrics and writes the request's log line.

Placed near the top of MIDDLEWARE (config/settings/base.py), so that its duration covers the rest of Django's
work. Who called is read after the response: DRF authenticates inside the view and puts its user on the request.
"""

import logging
import re
import time
import uuid
from functools import lru_cache

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.utils.encoding import escape_uri_path

from observability.logs import current_request_id
from observability.metrics import UNMATCHED, request_answered

logger = logging.getLogger("observability.requests")

REQUEST_ID_HEADER = "X-Request-ID"
# A request id from the client or a proxy in front is kept when it is short and plain (it goes into logs and back
# into a header); anything else is replaced by a new one.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:=+/-]{1,128}")
# Methods outside these share one label, so that made-up methods cannot make new series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

NAMED_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


@lru_cache(maxsize=1024)
def endpoint_label(route: str) -> str:
    """The URL pattern as a path template: `^space/(?P<space_id>[0-9]{1,18})/count/?$` is /space/{space_id}/count,
    `dashboard/space/<int:space_id>/` is /dashboard/space/{space_id}/. Bounded by the URL patterns, not the paths."""
    template = CONVERTER.sub(r"{\1}", NAMED_GROUP.sub(r"{\1}", route))
    return "/" + template.removeprefix("^").removesuffix("$").removesuffix("/?")


def request_id_of(request) -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if SANE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def caller_of(request) -> tuple[str, int | None]:
    """(kind of caller, DPU serial or None): "dpu", "staff", "user" (signed in, not staff), "metrics" (the
    METRICS_TOKEN scrape job) or "anonymous". For a DRF view the user is the one DRF authenticated."""
    user = getattr(request, "user", None)
    if user is None:
        return "anonymous", None
    if getattr(user, "is_dpu", False):
        return "dpu", user.dpu.serial
    if getattr(user, "is_metrics_scraper", False):
        return "metrics", None
    if not user.is_authenticated:
        return "anonymous", None
    return ("staff" if user.is_staff else "user"), None


class RequestObservabilityMiddleware:
    """Times each request, records it in the request metrics (by URL pattern, method and status), echoes or gives
    it a request id (X-Request-ID), and logs one line for it: method, path, status, duration, caller, DPU serial
    and request id."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        started, token = self._begin(request)
        try:
            response = self.get_response(request)
            self._finish(request, response, started, caller_of(request))
        finally:
            current_request_id.reset(token)
        return response

    async def __acall__(self, request):
        started, token = self._begin(request)
        try:
            response = await self.get_response(request)
            # A session user is read from the database on first use, which async code may not do itself.
            self._finish(request, response, started, await sync_to_async(caller_of)(request))
        finally:
            current_request_id.reset(token)
        return response

    def _begin(self, request):
        request.request_id = request_id_of(request)
        return time.perf_counter(), current_request_id.set(request.request_id)

    def _finish(self, request, response, started: float, caller: tuple[str, int | None]) -> None:
        # For a streaming response (Server-Sent Events) this is the time to its headers, not to its end.
        seconds = time.perf_counter() - started
        response[REQUEST_ID_HEADER] = request.request_id
        match = request.resolver_match
        endpoint = endpoint_label(match.route) if match is not None else UNMATCHED
        method = request.method if request.method in METHODS else "other"
        request_answered(endpoint=endpoint, method=method, status=response.status_code, seconds=seconds)

        kind, serial = caller
        # escape_uri_path: a %0A in the URL must not start a new line in a plain-text log.
        path = escape_uri_path(request.path)
        milliseconds = round(seconds * 1000, 1)
        fields = {
            "method": request.method,
            "path": path,
            "endpoint": endpoint,
            "status": response.status_code,
            "duration_ms": milliseconds,
            "caller": kind,
            "dpu": serial,
            "request_id": request.request_id,
        }
        dpu = f" dpu={serial}" if serial is not None else ""
        logger.info(
            "%s %s %s %sms caller=%s%s request_id=%s",
            request.method,
            path,
            response.status_code,
            milliseconds,
            kind,
            dpu,
            request.request_id,
            extra=fields,
        )
