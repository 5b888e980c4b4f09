"""What every app's API shares: how instants, serials and directions are read and written, who may write,
and how errors reach the client."""

import re
from collections.abc import Iterable
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from django.core.exceptions import NON_FIELD_ERRORS, ObjectDoesNotExist, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import BaseConstraint
from django.http import JsonResponse
from django.urls import re_path
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.views import exception_handler as drf_exception_handler

from config.parsers import RequestBodyTooLarge
from dpu.models import SERIAL_MAX
from history.selectors import ArchivedHistory
from spaces.models import time_zone_names, validate_time_zone

INTEGER = re.compile(r"[+-]?[0-9]{1,20}")
# The ISO-8601 instants the API reads: a date, optionally a time to the hour, minute, second or fraction (up to
# nanoseconds), optionally a zone. datetime.fromisoformat alone is far looser: it takes any character between
# date and time, reads "1111111111..." as 1111-11-11T11:11:11, and stops at a NUL byte, ignoring what follows.
ISO_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[Tt ][0-9]{2}(?::[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,9})?)?)?(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"
)


def api_path(route: str, view, name: str):
    """A URL that answers with and without a trailing slash, so that no client is ever redirected."""
    return re_path(rf"^{route}/?$", view, name=name)


def format_instant(instant: datetime) -> str:
    """UTC with milliseconds and a Z, as DPUs send them: 2018-02-24T08:45:21.893Z."""
    if instant.utcoffset():
        instant = instant.astimezone(UTC)
    # Not strftime: its %Y gives "1", not "0001", for years before 1000.
    return instant.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_instant(value: object, *, naive_is_utc: bool, keep_naive: bool = False) -> datetime:
    """An aware datetime (UTC) from ISO-8601 text. A bare date is midnight. Text without a zone is UTC when
    `naive_is_utc`, a naive datetime (local time, for the caller to place) when `keep_naive`, else an error.
    Raises ValueError with a reason."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO-8601 timestamp string, such as 2018-02-24T08:45:21.893Z.")
    text = value.strip()
    try:
        if not ISO_INSTANT.fullmatch(text):
            raise ValueError
        parsed = datetime.fromisoformat(text.upper())
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not an ISO-8601 timestamp, such as 2018-02-24T08:45:21.893Z.") from None
    if parsed.tzinfo is None:
        if keep_naive:
            return parsed
        if not naive_is_utc:
            raise ValueError(f"{value[:40]!r} has no time zone; add one, such as Z for UTC: 2018-02-24T08:45:21.893Z.")
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value[:40]!r} is outside the range of representable times.") from None


# "2018-02-26T18:08:02.170+02:00" in a URL without percent-encoding arrives as "...170 02:00": a query string's
# "+" is a space. A date, a time, then a space and an offset can only be that.
PLUS_AS_SPACE = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}(?::[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,9})?)?)?)"
    r" ([0-9]{2}(?::?[0-9]{2})?)"
)


def instant_param(params, name: str, *, naive_is_utc: bool = False, keep_naive: bool = False) -> datetime | None:
    """The instant in query parameter `name` (its last value), None when absent; a 400 naming `name` otherwise.

    For reads that need nothing else from a serializer: the same parsing and error body as an InstantField in an
    InputSerializer, without building a serializer for every request. An offset's "+" that arrived as a space
    (the usual curl mistake) is read as "+".
    """
    raw = params.get(name)
    if raw is None:
        return None
    fixed = PLUS_AS_SPACE.fullmatch(raw.strip())
    if fixed is not None:
        raw = f"{fixed[1]}+{fixed[2]}"
    try:
        return parse_instant(raw, naive_is_utc=naive_is_utc, keep_naive=keep_naive)
    except ValueError as exc:
        raise ValidationError({name: [str(exc)]}) from None


def check_query_params(params, allowed: Iterable[str]) -> None:
    """A 400 naming every query parameter not in `allowed`, so that a misspelt one never silently gives a different
    answer. `_`, the cache buster some clients add, is always allowed."""
    unknown = sorted(set(params) - {*allowed, "_"})
    if unknown:
        takes = ", ".join(sorted(allowed))
        raise ValidationError(
            {
                printable(name[:60]): [f"is not a query parameter this endpoint takes (it takes {takes})."]
                for name in unknown
            }
        )


def time_zone_param(params, name: str) -> ZoneInfo | None:
    """The IANA time zone in query parameter `name`, None when absent; a 400 naming `name` otherwise."""
    raw = params.get(name)
    if raw is None:
        return None
    if raw not in time_zone_names():
        raise ValidationError(
            {name: [f"{printable(raw[:60])!r} is not an IANA time zone name, such as Europe/Berlin or UTC."]}
        )
    return ZoneInfo(raw)


@extend_schema_field({"type": "string", "format": "date-time", "example": "2018-02-24T08:45:21.893Z"})
class InstantField(serializers.Field):
    """An instant: ISO-8601 in, UTC with milliseconds and Z out. Naive input is an error unless `naive_is_utc`."""

    def __init__(self, *, naive_is_utc: bool = False, **kwargs):
        self.naive_is_utc = naive_is_utc
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        try:
            return parse_instant(data, naive_is_utc=self.naive_is_utc)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    def to_representation(self, value):
        return format_instant(value) if value is not None else None


LOCAL_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?")


@extend_schema_field({"type": "string", "pattern": f"^(?:{LOCAL_TIME.pattern})$", "example": "04:00"})
class LocalTimeField(serializers.Field):
    """A local time of day, "HH:MM" or "HH:MM:SS" (24-hour); written back as "HH:MM" (with seconds when set)."""

    def to_internal_value(self, data):
        match = LOCAL_TIME.fullmatch(data.strip()) if isinstance(data, str) else None
        if match is None:
            raise ValidationError('must be a local time of day, "HH:MM" (24-hour), such as "04:00".')
        return time(int(match[1]), int(match[2]), int(match[3] or 0))

    def to_representation(self, value):
        return value.strftime("%H:%M:%S" if value.second else "%H:%M")


@extend_schema_field({"type": "string", "enum": sorted(time_zone_names()), "example": "Europe/Berlin"})
class TimeZoneField(serializers.CharField):
    """An IANA time zone name, such as Europe/Berlin."""

    def __init__(self, **kwargs):
        super().__init__(max_length=64, validators=[validate_time_zone], **kwargs)


def _whole_number(data) -> int | None:
    if isinstance(data, bool):  # JSON true is not 1
        return None
    if isinstance(data, int):
        return data
    if isinstance(data, str) and INTEGER.fullmatch(data.strip()):
        return int(data)
    return None


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": SERIAL_MAX, "example": 283})
class SerialField(serializers.Field):
    """A DPU serial: a positive whole number, as a JSON number or a numeric string ("283")."""

    def to_internal_value(self, data):
        serial = _whole_number(data)
        if serial is None or not 1 <= serial <= SERIAL_MAX:
            raise ValidationError(f"must be a DPU serial: a whole number from 1 to {SERIAL_MAX}.")
        return serial

    def to_representation(self, value):
        return value


@extend_schema_field({"type": "integer", "enum": [1, -1]})
class DirectionField(serializers.Field):
    """+1 or -1, as a JSON number or a numeric string ("1", "-1")."""

    def to_internal_value(self, data):
        direction = _whole_number(data)
        if direction not in (1, -1):
            raise ValidationError("must be 1 (towards the side the DPU faces) or -1 (away from it).")
        return direction

    def to_representation(self, value):
        return value


class NameField(serializers.CharField):
    """A name: JSON text only, at most max_length characters as sent. DRF's CharField would store the number 0 as
    the name "0", and counts the length after trimming spaces, so it took 201 characters where the schema says 200."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")  # "Not a valid string.", as DRF says of a list or an object
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so that a misspelt field is an error rather than silently ignored."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise ValidationError(
                    {printable(name[:60]): ["is not a field this endpoint takes."] for name in unknown}
                )
        return super().to_internal_value(data)


def printable(text: str) -> str:
    # A lone surrogate ("\ud800" in JSON) parses, but cannot be encoded into the response: escape it when echoed.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": SERIAL_MAX, "example": 3})
class IdField(serializers.PrimaryKeyRelatedField):
    """A row of `queryset` by its id: a whole JSON number or a numeric string ("3").

    DRF's field hands anything to the database lookup, which reads 1.5 as 1 and fails on 1e400 (infinity).
    """

    def to_internal_value(self, data):
        queryset = self.get_queryset()
        noun = queryset.model._meta.verbose_name
        pk = _whole_number(data)
        if pk is None or not 1 <= pk <= SERIAL_MAX:  # SERIAL_MAX: the largest id the database holds, too
            raise ValidationError(f"must be the id of a {noun}: a whole number, such as 3.")
        try:
            return queryset.get(pk=pk)
        except ObjectDoesNotExist:
            raise ValidationError(f"No {noun} has id {pk}.") from None


class Conflict(APIException):
    """A 409: the request contradicts what is stored (history depends on what it would delete or change);
    `detail` says why and what to do instead."""

    status_code = 409
    default_detail = "The request conflicts with what is stored."
    default_code = "conflict"


class RequestRejected(APIException):
    """A 400 whose JSON body is sent exactly as given (DRF would turn numbers in it into strings). The body has a
    `detail` sentence, like every error body, and whatever else the client needs to act on it."""

    status_code = 400

    def __init__(self, body: dict):
        if not isinstance(body.get("detail"), str):
            raise TypeError("An error body needs `detail`, a sentence for a person.")
        self.detail = body


def validated_input(serializer_class: type[serializers.Serializer], data) -> dict:
    """The body validated by `serializer_class`; a 400 naming each bad field otherwise."""
    if not isinstance(data, dict):
        raise ValidationError({"detail": "The body must be a JSON object."})
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def exception_handler(exc, context):
    """DRF's handler, plus: every error body has `detail`, a sentence for a person, and a validation error also
    `errors`, each field's messages (error_body); a service's Django ValidationError is the client's 400, not a
    server error, and a change to archived history a 409."""
    if isinstance(exc, DjangoValidationError):
        exc = (Conflict if _only_duplicates(exc) else ValidationError)(_django_messages(exc))
    elif isinstance(exc, ArchivedHistory):
        exc = Conflict(str(exc))
    elif isinstance(exc, RequestDataTooBig):
        # DRF reads request.body, where Django applies DATA_UPLOAD_MAX_MEMORY_SIZE, before the parser runs; left
        # to Django, the answer would be a bare HTML 400 that does not say what was wrong.
        exc = RequestBodyTooLarge()
    response = drf_exception_handler(exc, context)
    if response is not None and not isinstance(exc, RequestRejected):
        response.data = error_body(response.data)
    return response


# Django's message for a violated check or conditional unique constraint names the constraint, which means nothing
# to a client: "Constraint “doorway_sides_differ” is violated."
CONSTRAINT_VIOLATED = re.compile(
    re.escape(str(BaseConstraint.default_violation_error_message)).replace(re.escape("%(name)s"), "(.+)")
)
# What each such constraint means, for the rare case that no clean() has already said it (see _django_messages).
CONSTRAINT_SENTENCES = {
    "doorway_sides_differ": "A doorway must join two different sides, at least one of them a space.",
    "space_capacity_positive": "A space's capacity must be 1 or more, or empty.",
    "assignment_ends_after_start": "An assignment must end after it starts.",
    "assignment_one_open": "A DPU can have only one assignment without an end.",
}
CONSTRAINT_GENERIC = "This conflicts with a rule for what the service stores."


def _only_duplicates(exc: DjangoValidationError) -> bool:
    """Whether every message says the thing exists already (code "unique", as Django's unique checks and the
    services' own duplicate checks say): a conflict with what is stored, 409, not a malformed request."""
    errors = [e for es in exc.error_dict.values() for e in es] if hasattr(exc, "error_dict") else exc.error_list
    return bool(errors) and all(error.code in ("unique", "unique_together") for error in errors)


def _django_messages(exc: DjangoValidationError) -> dict[str, list[str]]:
    """A Django ValidationError's messages by field (NON_FIELD_ERRORS and a bare error under "detail"), with a
    constraint's message made a sentence, or dropped when a model's clean() already said the same in words."""
    by_field = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
    readable = {}
    for field, messages in by_field.items():
        worded = [m for m in messages if not CONSTRAINT_VIOLATED.fullmatch(m)]
        if not worded:
            names = [CONSTRAINT_VIOLATED.fullmatch(m)[1] for m in messages]
            worded = [CONSTRAINT_SENTENCES.get(name, CONSTRAINT_GENERIC) for name in names]
        readable["detail" if field == NON_FIELD_ERRORS else field] = worded
    return readable


# Keys under which DRF and Django put messages about the request as a whole rather than one field.
GENERAL = ("detail", "non_field_errors", NON_FIELD_ERRORS)


def error_body(data) -> dict:
    """The one error shape: {"detail": a sentence for a person} and, for a validation error that names fields,
    "errors": {field: [messages]}. `data` is what DRF made of the exception: {"detail": "..."}, a list of
    messages, or a serializer's errors (nested ones, such as a list's items, become "sides.0")."""
    if isinstance(data, list):
        data = {"detail": data}
    general, fields = [], {}
    for key, value in data.items():
        if key in GENERAL:
            general += _messages(value)
        else:
            _flatten(fields, str(key), value)
    detail = " ".join(_unique(general))
    if fields:
        if len(fields) == 1:
            [(name, messages)] = fields.items()
            summary = f"{name}: {' '.join(messages)}"
        else:
            summary = f"{len(fields)} fields are not valid: {', '.join(fields)}."
        detail = f"{detail} {summary}" if detail else summary
        return {"detail": detail, "errors": fields}
    return {"detail": detail or "The request was refused."}


def _messages(value) -> list[str]:
    if isinstance(value, dict):
        return [m for item in value.values() for m in _messages(item)]
    if isinstance(value, list):
        return [m for item in value for m in _messages(item)]
    return [str(value)]


def _flatten(fields: dict[str, list[str]], name: str, value) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(fields, f"{name}.{key}", item)
    elif isinstance(value, list) and any(isinstance(item, dict | list) for item in value):
        for key, item in enumerate(value):
            if item:  # a ListSerializer lists every item, valid ones as {}
                _flatten(fields, f"{name}.{key}", item)
    else:
        fields[name] = _unique(_messages(value))


def _unique(messages: list[str]) -> list[str]:
    return list(dict.fromkeys(messages))


def not_found(request, exception=None) -> JsonResponse:
    """Every unknown path answers like an unknown object does: JSON, not Django's HTML page."""
    return JsonResponse({"detail": "Not found."}, status=404)


def server_error(request) -> JsonResponse:
    """An unexpected failure answers JSON with `detail` too (the traceback goes to the log, not to the caller)."""
    return JsonResponse({"detail": "The service failed to answer this request; the failure is logged."}, status=500)
