"""Request body parsing. Its own module: DRF imports it while loading its settings, before the rest of the API."""

import io

from django.conf import settings
from rest_framework import parsers, status
from rest_framework.exceptions import APIException, ParseError


class RequestBodyTooLarge(APIException):
    """A 413: the body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE. Says the limit, and what to do instead."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"

    def __init__(self):
        super().__init__(
            f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes, the most this service "
            "accepts. Split the batch into smaller ones and send them one after another (10,000 events, the largest "
            "batch, take about 800 kB)."
        )


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, plus two refusals:

    - A body over DATA_UPLOAD_MAX_MEMORY_SIZE is a 413 (RequestBodyTooLarge): refused on its Content-Length before
      anything is read, and otherwise by counting what the stream yields (a chunked body has no Content-Length),
      so that at most the limit plus one byte is ever held. DRF 3.15+ hands this parser `request.body`, where
      Django has already applied the limit and raised RequestDataTooBig (config.api's exception handler turns
      that into the same 413); these checks hold whatever stream a DRF version or a caller passes.
    - A body nested too deeply to parse is a 400 like any other malformed JSON: json.loads gives up on [[[[...
      thousands deep with RecursionError, which DRF's parser does not catch (it turns ValueError only into a
      ParseError), so it would surface as a 500.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None:
            request = (parser_context or {}).get("request")
            if request is not None and _declared_length(request) > limit:
                raise RequestBodyTooLarge()
            stream = io.BytesIO(_read_at_most(stream, limit))
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # as Django and DRF read it: no usable length, so the stream decides


def _read_at_most(stream, limit: int) -> bytes:
    """All of `stream`, or RequestBodyTooLarge as soon as it yields more than `limit` bytes."""
    body = bytearray()
    while len(body) <= limit:
        chunk = stream.read(limit + 1 - len(body))
        if not chunk:
            return bytes(body)
        body += chunk
    raise RequestBodyTooLarge()
