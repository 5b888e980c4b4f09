from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_extensions.db.models import TimeStampedModel

from dpu.models import EARLIEST_EVENT, MAX_CLOCK_SKEW, Dpu, DpuEvent
from spaces.models import Space


class OccupancyReset(TimeStampedModel):
    """An operator's correction: "at this instant there were `count` people in this space".

    Events at the same instant apply first, then the reset; later events continue from it. The raw record, like
    DpuEvent: occupancy_recalculate derives a SpaceOccupancy row from it.
    """

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="resets", db_index=False)
    timestamp = models.DateTimeField(help_text="UTC, like every instant the service keeps.")
    count = models.IntegerField(help_text="How many people were in the space at that instant.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "reset"
        ordering = ["space", "timestamp"]
        constraints = [
            # Two different counts at one instant would make the count there depend on which was entered last.
            models.UniqueConstraint(fields=["space", "timestamp"], name="reset_one_per_instant"),
        ]

    def __str__(self) -> str:
        return f"{self.count} in {self.space} at {self.timestamp:%Y-%m-%d %H:%M:%S} UTC"

    def clean(self) -> None:
        # The rules of event timestamps: a reset says what was counted, at an instant the service can count.
        if self.timestamp is not None and self.timestamp < EARLIEST_EVENT:
            raise ValidationError({"timestamp": "is before 2000-01-01; no count that old can be corrected."})
        if self.timestamp is not None and self.timestamp > timezone.now() + MAX_CLOCK_SKEW:
            raise ValidationError({"timestamp": "is more than 5 minutes in the future; a reset says what was counted."})
        if self.count is not None and self.count < 0 and self.space_id is not None and not self.space.allow_negative:
            raise ValidationError(
                {"count": f"must be 0 or more: space {self.space.name!r} does not allow negative counts."}
            )


class SpaceOccupancy(TimeStampedModel):
    """One row per change of a space's count: an event that touches it, a reset, or a daily reset.

    The count of a space at T is the `count` of its latest row at or before T, in the order (timestamp, kind,
    DPU): at one instant entrances apply before exits, then the daily reset, then an operator's reset. `dpu` is
    copied from the event so that this order, and the index that serves it, never depend on the order events
    arrived in.

    A daily reset row (count 0) exists at the space's next daily reset after each of its other rows: so a count
    read after the reset is 0 even when nothing happened since. One more changes nothing (the count is 0 already).
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        SETTLED = "settled"

    class Kind(models.IntegerChoices):
        # The values are the order of rows at one instant.
        ENTRANCE = 0, "entrance"  # an event that added a person to the space (delta +1)
        EXIT = 1, "exit"  # an event that took one away (delta -1), even from an empty space
        DAILY_RESET = 2, "daily reset"  # the count set to 0 at the space's daily reset time
        RESET = 3, "reset"  # an operator's reset: the count set to the reset's count

    # Rows are only ever looked up by space (the indexes below); single-column indexes would only cost writes.
    # The database checks that each row's event exists. It does not check `space` and `dpu` as well: `dpu` is a
    # copy of the event's DPU, which the event's own foreign key holds, and rows are only written by
    # occupancy_recalculate from spaces it has locked and deleted with them by Django's cascade. Those two checks
    # ran at every commit, two per row, and took a fifth of the time of a batch ingest (measured on PostgreSQL).
    space = models.ForeignKey(
        Space, on_delete=models.CASCADE, related_name="occupancy", db_index=False, db_constraint=False
    )
    timestamp = models.DateTimeField()
    kind = models.SmallIntegerField(choices=Kind.choices)
    # Unchecked too: on PostgreSQL the events are partitioned by month, and a key can only point at a unique key
    # (id alone is not one there). Rows are deleted with their event by Django's cascade.
    event = models.ForeignKey(
        DpuEvent,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="occupancy",
        db_index=False,
        db_constraint=False,
    )
    reset = models.ForeignKey(
        OccupancyReset, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    dpu = models.ForeignKey(
        Dpu, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    delta = models.SmallIntegerField()  # +1 or -1 for an event; 0 for a reset, which sets the count instead
    count = models.IntegerField()
    status = models.CharField(max_length=7, choices=Status.choices, default=Status.PENDING)

    class Meta:
        verbose_name_plural = "space occupancy"
        constraints = [
            # With the timestamp (the event's, so no less unique): PostgreSQL's partitions need it in every key.
            models.UniqueConstraint(fields=["space", "event", "timestamp"], name="occupancy_one_row_per_event"),
            # Also the index that finds the next reset after an instant: a reset bounds every recalculation.
            models.UniqueConstraint(
                fields=["space", "timestamp", "kind"], condition=Q(kind__gte=2), name="occupancy_one_reset_per_instant"
            ),
            models.CheckConstraint(
                name="occupancy_kind_matches",
                condition=Q(kind=0, delta=1, event__isnull=False, reset__isnull=True)
                | Q(kind=1, delta=-1, event__isnull=False, reset__isnull=True)
                | Q(kind=2, delta=0, event__isnull=True, reset__isnull=True, count=0)
                | Q(kind=3, delta=0, event__isnull=True, reset__isnull=False),
            ),
        ]
        indexes = [
            # Walked backwards from (space, ts) it yields the latest row at or before ts: the count lookup.
            models.Index(fields=["space", "timestamp", "kind", "dpu"], name="occupancy_space_order"),
            # Settling looks only at pending rows whose last change is old enough: few, even right after a
            # large late backfill has made many rows pending.
            models.Index(fields=["space", "modified"], name="occupancy_pending", condition=Q(status="pending")),
        ]

    def __str__(self) -> str:
        return f"{self.space} = {self.count} at {self.timestamp.isoformat()}"

    # The row order, for the ORM and reversed for "latest first"; occupancy.sql writes it in SQL.
    ORDER = ("timestamp", "kind", "dpu_id")
    LATEST_FIRST = ("-timestamp", "-kind", "-dpu_id")


class OccupancyBlock(models.Model):
    """Five minutes of a space's time series, summed up: what counts over time read instead of the rows.

    Derived from the rows (occupancy.services.blocks), rewritten wherever they change, and only where the space
    has rows: between two blocks the count holds. `start_count` is the count the five minutes start with; `low`,
    `high` and `high_at` count it too, so that a bucket made of whole blocks needs nothing else.
    """

    MINUTES = 5

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False)
    start = models.DateTimeField()  # a multiple of five minutes since the epoch
    start_count = models.IntegerField()
    low = models.IntegerField()
    high = models.IntegerField()
    high_at = models.DateTimeField()  # the first instant at `high`
    entrances = models.IntegerField()
    exits = models.IntegerField()
    area = models.FloatField()  # the count integrated over the five minutes, in person-seconds
    end_count = models.IntegerField()
    pending_changed = models.DateTimeField(null=True)  # the latest change of a pending row in it
    end_pending_changed = models.DateTimeField(null=True)  # the same, of its last row

    class Meta:
        constraints = [models.UniqueConstraint(fields=["space", "start"], name="block_one_per_space_start")]

    def __str__(self) -> str:
        return f"{self.space_id} from {self.start.isoformat()}: {self.low}-{self.high}"
