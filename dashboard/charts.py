"""The dashboard's charts: SVG drawn on the server by pygal, from the same buckets the API gives.

Every chart has a text alternative on its page (a table, or the numbers beside it); the SVG is decoration for
people who can see it, so it carries a title and is otherwise hidden from screen readers by the template.
"""

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pygal
from pygal.style import Style

from dashboard.selectors import bucket_instant

BLUE, BAND, AMBER, GREY, GREEN = "#1d4ed8", "#c7d7fb", "#b45309", "#6b7280", "#15803d"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


def _style(*colors: str, opacity: str = "1") -> Style:
    """Solid fills by default (the day chart's band is a colour of its own); a sparkline's fill is a tint."""
    return Style(
        background="transparent",
        plot_background="transparent",
        foreground="#374151",
        foreground_strong="#111827",
        foreground_subtle="#d1d5db",
        colors=colors,
        font_family=FONT,
        label_font_size=13,
        major_label_font_size=13,
        legend_font_size=13,
        tooltip_font_size=13,
        opacity=opacity,
        opacity_hover=opacity,
    )


def _config(**options) -> dict:
    """What every chart shares: a viewBox that scales to its box; no script of its own (the page loads pygaljs's
    tooltips once, from this service)."""
    return {
        "explicit_size": False,
        "js": [],
        "show_legend": False,  # the page writes the legend in HTML (Chart.legend): it wraps, and it is text
        "show_y_guides": False,
        "truncate_label": -1,
        "margin": 8,
        **options,
    }


def clock(text: str, zone: ZoneInfo) -> str:
    """A bucket's instant as the local time of day, 14:05."""
    return bucket_instant(text).astimezone(zone).strftime("%H:%M")


@dataclass
class Chart:
    svg: str
    legend: list[tuple[str, str, str]]  # (label, colour, "area", "line" or "dashed"), for the page to write


# Each chart is drawn twice: wide for a desktop, narrow for a phone, so that its text is of a readable size on
# both (an SVG scales as a whole); the page shows the one that fits.
WIDE = {"width": 720, "hours_per_label": 3}
NARROW = {"width": 360, "hours_per_label": 6}


def day_chart(buckets: list[dict], *, zone: ZoneInfo, capacity: int | None, now: datetime, size: dict = WIDE) -> Chart:
    """The count through one local day, a point a bucket: the count at each bucket's end, the band between each
    bucket's lowest and highest count, buckets not yet settled drawn dashed in amber, and the capacity if any.
    Buckets that have not begun are left out."""
    # The buckets that have begun come first: each line is as long as they are, and stops at now.
    past = [bucket for bucket in buckets if bucket_instant(bucket["start"]) <= now]

    def values(key: str) -> list[int]:
        return [bucket[key] for bucket in past]

    top = max(values("max") + [capacity or 0, 1])
    bottom = min(values("min") + [0])  # below zero only in a space that allows it
    pending = [None if bucket["settled"] else bucket["count"] for bucket in past]
    has_pending = any(value is not None for value in pending)
    colors = [BAND, "#ffffff", BLUE] + ([AMBER] if has_pending else []) + ([GREY] if capacity else [])
    chart = pygal.Line(
        **_config(
            style=_style(*colors),
            width=size["width"],
            height=300,
            show_dots=False,
            range=(bottom, top + max(1, top // 10)),
            x_labels_major_every=size["hours_per_label"] * 12,  # 5-minute buckets
            show_minor_x_labels=False,
            missing_value_fill_truncation="either",  # a filled line closes at its last value, not the day's end
        )
    )
    chart.x_labels = [clock(bucket["start"], zone) for bucket in buckets]
    # The band: the highest count filled down to zero, then the lowest filled in the page's white over it.
    legend = [("People", BLUE, "line"), ("Lowest to highest in 5 minutes", BAND, "area")]
    chart.add("Lowest to highest", values("max"), fill=True, stroke_style={"width": 0})
    chart.add("", values("min"), fill=True, stroke_style={"width": 0})
    chart.add("People", values("count"), stroke_style={"width": 2.5})
    if has_pending:
        chart.add("May still change", pending, allow_interruptions=True, stroke_style={"width": 3, "dasharray": "6, 4"})
        legend.append(("May still change", AMBER, "dashed"))
    if capacity:
        chart.add("Capacity", [capacity] * len(buckets), stroke_style={"width": 1.5, "dasharray": "2, 4"})
        legend.append((f"Capacity ({capacity})", GREY, "dashed"))
    return Chart(chart.render(is_unicode=True, disable_xml_declaration=True), legend)


def flows_chart(hours: list[dict], *, zone: ZoneInfo, size: dict = WIDE) -> Chart:
    """Entrances and exits in each hour of the day, side by side."""
    chart = pygal.Bar(
        **_config(
            style=_style(GREEN, AMBER),
            width=size["width"],
            height=200,
            x_labels_major_every=size["hours_per_label"],
            show_minor_x_labels=False,
        )
    )
    chart.x_labels = [clock(hour["start"], zone) for hour in hours]
    top = max([hour["entrances"] for hour in hours] + [hour["exits"] for hour in hours] + [1])
    step = max(1, -(-top // 5))  # at most about six whole-number labels: people come whole
    chart.y_labels = list(range(0, top + step, step))
    chart.add("Entrances", [hour["entrances"] for hour in hours])
    chart.add("Exits", [hour["exits"] for hour in hours])
    legend = [("Entrances", GREEN, "area"), ("Exits", AMBER, "area")]
    return Chart(chart.render(is_unicode=True, disable_xml_declaration=True), legend)


def sparkline(buckets: list[dict], *, now: datetime) -> str:
    """A small line of the count through the day so far, no axes: the shape of the day at a glance. Drawn the
    whole day wide, so that the line stops at now, and stretched to its box (it has no text to distort)."""
    counts = [bucket["count"] for bucket in buckets if bucket_instant(bucket["start"]) <= now]
    chart = pygal.Line(
        **_config(
            style=_style(BLUE, opacity=".18"),
            width=300,
            height=48,
            show_dots=False,
            range=(min(counts + [0]), max(counts + [1])),
            stroke_style={"width": 2},
            missing_value_fill_truncation="either",
        )
    )
    chart.x_labels = [""] * len(buckets)
    chart.add("People", counts, fill=True)
    svg = chart.render_sparkline(is_unicode=True, disable_xml_declaration=True)
    return svg.replace("<svg ", '<svg preserveAspectRatio="none" ', 1)
