"""What the counts-over-time endpoints answer with besides DRF's JSON: JSON the database wrote, and CSV for
reports (`Accept: text/csv` or `?format=csv`, a file)."""

import csv
import io

from rest_framework.exceptions import ValidationError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer


class PreRenderedJson:
    """JSON text made already (by the database, for counts over time), for PreRenderedJsonRenderer to pass on."""

    def __init__(self, text: str):
        self.text = text


class PreRenderedJsonRenderer(JSONRenderer):
    """DRF's JSON renderer, which passes PreRenderedJson through as it is."""

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if isinstance(data, PreRenderedJson):
            return data.text.encode()  # JSON is UTF-8
        return super().render(data, accepted_media_type, renderer_context)


class CsvRenderer(BaseRenderer):
    """Series of buckets (one, or a list) as CSV: a header row, then one row per bucket, with `space_id` first."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        series = data if isinstance(data, list) else [data]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        header = None
        for one in series:
            for bucket in one["buckets"]:
                if header is None:
                    header = ["space_id", *bucket]
                    writer.writerow(header)
                writer.writerow([one["space_id"], *(_cell(value) for value in bucket.values())])
        return out.getvalue().encode(self.charset)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class FormatParamNegotiation(DefaultContentNegotiation):
    """`?format=json` or `?format=csv` choose the format, so that a plain link downloads a report; otherwise the
    Accept header does (JSON when it says nothing)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        wanted = request.query_params.get("format")
        if wanted is not None:
            formats = [renderer.format for renderer in renderers]
            if wanted not in formats:
                raise ValidationError({"format": [f"must be one of {', '.join(formats)}."]})
            renderer = next(renderer for renderer in renderers if renderer.format == wanted)  # instances here
            return renderer, renderer.media_type
        return super().select_renderer(request, renderers, format_suffix)
