from datetime import UTC, datetime

import factory

from dpu.models import Dpu, DpuAssignment, DpuEvent
from spaces.tests.factories import DoorwayFactory


class DpuFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dpu
        django_get_or_create = ("serial",)

    serial = factory.Sequence(lambda n: 1000 + n)


class DpuAssignmentFactory(factory.django.DjangoModelFactory):
    """An open-ended assignment since 2018-01-01 in which +1 enters the doorway's side_b."""

    class Meta:
        model = DpuAssignment

    dpu = factory.SubFactory(DpuFactory)
    doorway = factory.SubFactory(DoorwayFactory)
    enters = factory.SelfAttribute("doorway.side_b")
    valid_from = datetime(2018, 1, 1, tzinfo=UTC)
    valid_to = None


class DpuEventFactory(factory.django.DjangoModelFactory):
    """A raw +1 event stored directly, as if ingested, at 2018-02-24T08:00Z (no occupancy rows are made)."""

    class Meta:
        model = DpuEvent

    dpu = factory.SubFactory(DpuFactory)
    timestamp = datetime(2018, 2, 24, 8, 0, tzinfo=UTC)
    direction = DpuEvent.Direction.IN
    received_at = factory.SelfAttribute("timestamp")
