from django.db import models
from django_extensions.db.models import TimeStampedModel

from dpu.models import Dpu, DpuEvent
from spaces.models import Space


class SpaceOccupancy(TimeStampedModel):
    """One row per event that touches a space: the change it made and the count right after it.

    The count of a space at T is the `count` of its latest row at or before T, in the order (timestamp,
    increments before decrements, DPU). `dpu` is copied from the event so that this order, and the index that
    serves it, never depend on the order events arrived in.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        SETTLED = "settled"

    # Rows are only ever looked up by space (the indexes below); single-column indexes would only cost writes.
    # The database checks that each row's event exists. It does not check `space` and `dpu` as well: `dpu` is a
    # copy of the event's DPU, which the event's own foreign key holds, and rows are only written by
    # occupancy_recalculate from spaces it has locked and deleted with them by Django's cascade. Those two checks
    # ran at every commit, two per row, and took a fifth of the time of a batch ingest (measured on PostgreSQL).
    space = models.ForeignKey(
        Space, on_delete=models.CASCADE, related_name="occupancy", db_index=False, db_constraint=False
    )
    timestamp = models.DateTimeField()
    event = models.ForeignKey(DpuEvent, on_delete=models.CASCADE, related_name="occupancy", db_index=False)
    dpu = models.ForeignKey(Dpu, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False)
    delta = models.SmallIntegerField()
    count = models.IntegerField()
    status = models.CharField(max_length=7, choices=Status.choices, default=Status.PENDING)

    class Meta:
        verbose_name_plural = "space occupancy"
        constraints = [
            models.UniqueConstraint(fields=["space", "event"], name="occupancy_one_row_per_event"),
            models.CheckConstraint(name="occupancy_delta_is_one", condition=models.Q(delta__in=[1, -1])),
        ]
        indexes = [
            # Walked backwards from (space, ts) it yields the latest row at or before ts: the count lookup.
            models.Index(fields=["space", "timestamp", "-delta", "dpu"], name="occupancy_space_order"),
            # Settling looks only at pending rows whose last change is old enough: few, even right after a
            # large late backfill has made many rows pending.
            models.Index(fields=["space", "modified"], name="occupancy_pending", condition=models.Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.space} = {self.count} at {self.timestamp.isoformat()}"

    # The row order, for the ORM and reversed for "latest first"; occupancy.services.Sql writes it in SQL.
    ORDER = ("timestamp", "-delta", "dpu_id")
    LATEST_FIRST = ("-timestamp", "delta", "-dpu_id")
