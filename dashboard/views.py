"""The dashboard's pages: thin views over dashboard.selectors (reads) and occupancy's reset service (the one write).

Signed-in users only (Django's login); staff may also set a space's count. The pages call the same selectors and
services as the API, and their live counts come from the API itself (static/dashboard/live.js).
"""

from datetime import timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_GET, require_POST

from dashboard import charts
from dashboard.forms import DayForm, SetCountForm
from dashboard.selectors import bucket_instant, fleet, local_today, overview, space_day
from history.selectors import ArchivedHistory
from occupancy.services import reset_create
from spaces.selectors import space_get


@require_GET
def home(request):
    """`/`: the overview for a signed-in browser, the sign-in page for anyone else."""
    if request.user.is_authenticated:
        return redirect("dashboard:overview")
    return redirect(f"{reverse('login')}?next=/")


# The pages are mostly SVG and JSON, which compress about eightfold. Their only secret is the CSRF token, which
# Django masks anew in every response, so compression leaks nothing to a BREACH-style attack.
@gzip_page
@login_required
@require_GET
def overview_page(request):
    now = timezone.now()
    cards = overview(now=now)
    for card in cards:
        card.sparkline = charts.sparkline(card.buckets, now=now)
    return render(request, "dashboard/overview.html", {"cards": cards, "now": now})


@gzip_page
@login_required
@require_GET
def fleet_page(request):
    """Every DPU with its status, doorway, last report and lateness, worst first."""
    now = timezone.now()
    return render(
        request,
        "dashboard/fleet.html",
        {"fleet": fleet(now=now), "now": now, "silent_after": settings.DPU_SILENT_AFTER},
    )


@gzip_page
@login_required
@require_GET
def space_page(request, space_id: int):
    day_form = DayForm(request.GET)
    if not day_form.is_valid():
        return _space_response(request, space_id, day=None, day_form=day_form, status=400)
    return _space_response(request, space_id, day=day_form.cleaned_data["day"], day_form=day_form)


@gzip_page
@login_required
@require_POST
def set_count(request, space_id: int):
    """Staff: a reset through occupancy's reset_create, the API's own path; then back to the day it falls on."""
    if not request.user.is_staff:
        raise PermissionDenied
    try:
        space = space_get(space_id=space_id)  # the space only: the day is read after, for the page
    except Http404:
        return render(request, "dashboard/not_found.html", status=404)
    zone = ZoneInfo(space.time_zone)
    with timezone.override(zone):  # the form's local time is the space's
        form = SetCountForm(request.POST)
        valid = form.is_valid()
    if valid:
        try:
            reset = reset_create(
                space=space,
                timestamp=form.cleaned_data["timestamp"],
                count=form.cleaned_data["count"],
                created_by=request.user,
            )
        except (ValidationError, ArchivedHistory) as exc:
            form.add_error(None, str(exc) if isinstance(exc, ArchivedHistory) else exc)
        else:
            shown = timezone.localtime(reset.timestamp, zone).date()
            return redirect(f"{reverse('dashboard:space', args=[space_id])}?day={shown.isoformat()}#count")
    return _space_response(request, space_id, day=None, day_form=DayForm(), count_form=form, status=400)


def _space_response(request, space_id: int, *, day, day_form, count_form=None, status=200):
    now = timezone.now()
    try:
        shown = space_day(space_id=space_id, day=day, now=now)
    except Http404:
        return render(request, "dashboard/not_found.html", status=404)
    space, zone = shown.space, ZoneInfo(shown.space.time_zone)
    if count_form is None and request.user.is_staff:
        with timezone.override(zone):
            count_form = SetCountForm(initial={"timestamp": timezone.localtime(now, zone).replace(microsecond=0)})
    context = {
        "space": space,
        "shown": shown,
        "zone": zone,
        "now": now,
        "today": local_today(space, now),
        "previous_day": shown.day - timedelta(days=1),
        "next_day": shown.day + timedelta(days=1),
        "day_form": day_form if day_form.is_bound and not day_form.is_valid() else DayForm(initial={"day": shown.day}),
        "count_form": count_form if request.user.is_staff else None,
        "day_charts": [
            charts.day_chart(shown.buckets, zone=zone, capacity=space.capacity, now=now, size=size)
            for size in (charts.WIDE, charts.NARROW)
        ],
        "flows_charts": [
            charts.flows_chart(shown.hours, zone=zone, size=size) for size in (charts.WIDE, charts.NARROW)
        ],
        "peak_at": bucket_instant(shown.total["max_at"]),
        "hours": [
            {**hour, "label": f"{charts.clock(hour['start'], zone)}–{charts.clock(hour['end'], zone)}"}
            for hour in shown.hours
        ],
        "csv_url": _counts_url(space.pk, shown, "csv"),
        "poll_url": reverse("space-detail", kwargs={"space_id": space.pk}),
    }
    return render(request, "dashboard/space.html", context, status=status)


def _counts_url(space_id: int, shown, format_: str) -> str:
    """The API's own URL for the day's 5-minute buckets, for the page's download link. Local midnights without
    an offset: the API reads them in the space's time zone, as the page does."""
    next_day = shown.day + timedelta(days=1)
    query = urlencode(
        {"start": f"{shown.day}T00:00:00", "end": f"{next_day}T00:00:00", "interval": "5m", "format": format_}
    )
    return f"{reverse('space-counts', kwargs={'space_id': space_id})}?{query}"
