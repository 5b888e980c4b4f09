"""`manage.py dpu_health`: the fleet as text, and an exit status a monitor can act on."""

from datetime import timedelta
from io import StringIO
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from dpu.services import dpu_clock_refusal_record, event_ingest
from dpu.tests.factories import DpuFactory
from occupancy.tests.factories import INSTALLED, NOW, event, floorplan

pytestmark = pytest.mark.django_db


def dpu_health(now) -> tuple[str, CommandError | None]:
    out = StringIO()
    with mock.patch("django.utils.timezone.now", return_value=now):
        try:
            call_command("dpu_health", stdout=out)
        except CommandError as exc:
            return out.getvalue(), exc
    return out.getvalue(), None


def test_it_prints_every_dpu_worst_first_and_succeeds_while_none_is_silent():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0)], now=NOW)
    DpuFactory(serial=512)

    out, error = dpu_health(NOW + timedelta(hours=1))

    assert error is None
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["DPU", "STATUS", "DOORWAY"]
    assert [line.split()[:2] for line in lines[1:]] == [["423", "never_seen"], ["512", "never_seen"], ["283", "ok"]]
    assert "2018-02-25T08:00:00.000Z" in lines[3]  # 283's last report: NOW


def test_it_exits_non_zero_naming_the_silent_dpus(settings):
    settings.DPU_SILENT_AFTER = timedelta(hours=24)
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0), event(plan.dpu_423, 0)], now=NOW)
    event_ingest(events=[event(plan.dpu_423, 1)], now=NOW + timedelta(hours=20))

    out, error = dpu_health(NOW + timedelta(hours=25))

    assert error is not None and error.returncode == 1
    assert "silent for more than 24 hours: 283." in str(error)
    assert [line.split()[:2] for line in out.splitlines()[1:]] == [["283", "silent"], ["423", "ok"]]


def test_it_shows_clock_refusals():
    plan = floorplan()
    event_ingest(events=[event(plan.dpu_283, 0)], now=NOW)
    dpu_clock_refusal_record(serial=283, reason="clock_before_2000", timestamp=INSTALLED - timedelta(days=1), now=NOW)

    out, _ = dpu_health(NOW)

    assert "1 before 2000, 0 ahead; last 2018-02-25T08:00:00.000Z (clock_before_2000 1999-12-31T00:00:00.000Z)" in out
