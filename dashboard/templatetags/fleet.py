"""Filters for the fleet page."""

from django import template

register = template.Library()


@register.filter
def seconds(value: int | None) -> str:
    """A whole number of seconds, in the largest unit that keeps it readable: 45 s, 17 min, 4.6 h, 3.1 d."""
    if value is None:
        return "—"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if value >= 2 * size:
            amount = value / size
            return f"{amount:.0f} {unit}" if amount >= 10 else f"{amount:.1f} {unit}"
    return f"{value} s"


@register.filter
def seconds_of(value) -> str:
    """A timedelta, as `seconds` writes it."""
    return seconds(int(value.total_seconds()))
