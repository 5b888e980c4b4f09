import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django_extensions.db.models import TimeStampedModel

from spaces.models import Doorway, Space

TOKEN_PREFIX = "dpu_"
# Serials are printed on the device; PostgreSQL's bigint is the widest integer every backend stores.
SERIAL_MAX = 2**63 - 1
# DPU clocks drift; an event further ahead than this is a broken clock, not a person.
MAX_CLOCK_SKEW = timedelta(minutes=5)
# No DPU counted anyone before this; an event older than it is a clock reset (to 1970, to year 1), not history.
EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=UTC)


def to_millisecond(instant: datetime) -> datetime:
    """UTC, truncated to the millisecond. Events are identical "to the millisecond": finer digits would make a
    re-send look like a new event."""
    return instant.astimezone(UTC).replace(microsecond=instant.microsecond // 1000 * 1000)


class Dpu(TimeStampedModel):
    """A depth sensor over a doorway, known by the serial printed on it. It reports +1/-1 events.

    Each DPU authenticates with its own secret token. Only the token's SHA-256 is stored: tokens are 256 random
    bits, so a fast hash is as good as a slow one, and it lets a request find its DPU with one indexed lookup.
    """

    serial = models.PositiveBigIntegerField(unique=True)
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    # Its health, kept up to date by event_ingest for the events it stores (not for duplicates): the latest of
    # their timestamps and of their received_at. Reading them costs nothing, scanning the event log would.
    last_event_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_received_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["serial"]
        verbose_name = "DPU"
        verbose_name_plural = "DPUs"

    def __str__(self) -> str:
        return f"DPU {self.serial}"

    @staticmethod
    def new_token() -> str:
        # The prefix tells a DPU token from a user's at a glance, in a header or a leaked config file.
        return TOKEN_PREFIX + secrets.token_urlsafe(32)

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()


class DpuAssignment(TimeStampedModel):
    """Where a DPU hung during [valid_from, valid_to): its doorway and the side a +1 event enters.

    `valid_to` empty means "until further notice". A DPU has at most one assignment at any instant: the
    database enforces it (a trigger on SQLite, an exclusion constraint on PostgreSQL; see migrations).
    """

    dpu = models.ForeignKey(Dpu, on_delete=models.CASCADE, related_name="assignments")
    doorway = models.ForeignKey(Doorway, on_delete=models.PROTECT, related_name="assignments")
    enters = models.ForeignKey(
        Space,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The side a +1 event enters; empty means a +1 goes outside.",
    )
    valid_from = models.DateTimeField()
    valid_to = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["dpu", "valid_from"]
        constraints = [
            models.UniqueConstraint(fields=["dpu", "valid_from"], name="assignment_unique_start"),
            models.UniqueConstraint(fields=["dpu"], condition=Q(valid_to__isnull=True), name="assignment_one_open"),
            models.CheckConstraint(
                name="assignment_ends_after_start",
                condition=Q(valid_to__isnull=True) | Q(valid_to__gt=models.F("valid_from")),
            ),
        ]

    def __str__(self) -> str:
        until = self.valid_to.isoformat() if self.valid_to else "now"
        return f"{self.dpu} at {self.doorway} from {self.valid_from.isoformat()} to {until}"

    def clean(self) -> None:
        if self.valid_to is not None and self.valid_from is not None and self.valid_to <= self.valid_from:
            raise ValidationError({"valid_to": "An assignment must end after it starts."})
        if self.doorway_id is not None and self.enters_id not in self.doorway.sides:
            raise ValidationError({"enters": f"Doorway {self.doorway} does not lead into that side."})

    def covers(self, instant) -> bool:
        return self.valid_from <= instant and (self.valid_to is None or instant < self.valid_to)

    def deltas(self, direction: int) -> list[tuple[int, int]]:
        """(space id, delta) for each counted side an event of `direction` changes."""
        other = self.doorway.other_side(self.enters_id)
        return [(space_id, delta) for space_id, delta in ((self.enters_id, direction), (other, -direction)) if space_id]


class DpuEvent(TimeStampedModel):
    """One +1/-1 report exactly as a DPU sent it. The raw log: never changed, duplicates stored once."""

    class Direction(models.IntegerChoices):
        IN = 1, "+1"
        OUT = -1, "-1"

    # No index of its own: the unique constraint's (dpu, timestamp, direction) index serves every lookup.
    dpu = models.ForeignKey(Dpu, on_delete=models.PROTECT, related_name="events", db_index=False)
    timestamp = models.DateTimeField()
    direction = models.SmallIntegerField(choices=Direction.choices)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["timestamp", "id"]
        constraints = [
            # A DPU that re-sends an event it was unsure had arrived must not count twice. The ingest inserts
            # with ON CONFLICT DO NOTHING against this constraint; it is also the (dpu, timestamp) index.
            models.UniqueConstraint(fields=["dpu", "timestamp", "direction"], name="event_unique"),
            models.CheckConstraint(name="event_direction_is_one", condition=Q(direction__in=[1, -1])),
        ]

    def __str__(self) -> str:
        return f"{self.dpu} {self.get_direction_display()} at {self.timestamp.isoformat()}"


# Lateness (received_at - timestamp) is counted in bins whose edges double: bin 0 holds less than 1 second (and
# the negative lateness of a clock slightly ahead), bin b holds [2^(b-1), 2^b) seconds, and the last bin everything
# from 2^(LAST_BIN-1) seconds (about 388 days) on.
LATENESS_LAST_BIN = 26
# A DPU's hourly statistics are read for the current hour and the 24 before it; older rows are pruned at ingest.
STATS_HOURS = 24


def lateness_bin(seconds: float) -> int:
    """The histogram bin of a lateness in seconds."""
    return min(LATENESS_LAST_BIN, int(max(seconds, 0)).bit_length())


def lateness_bin_upper(bin_: int) -> int:
    """What a percentile falling in the bin is reported as: its upper edge, in seconds (the last bin's lower edge).
    More than the true value (but for the last bin), and at most twice it from 1 second on."""
    return 2 ** min(bin_, LATENESS_LAST_BIN - 1)


class DpuHourStat(models.Model):
    """How many of a DPU's events were stored in one hour (by received_at, UTC), by lateness bin.

    event_ingest adds to these rows for the events it creates, so the last 24 hours' count and lateness
    percentile of a DPU are read from at most 25 hours x 27 bins, never from the event log. Rows older than
    that are pruned by the ingest of the same DPU.
    """

    dpu = models.ForeignKey(Dpu, on_delete=models.CASCADE, related_name="+", db_index=False)
    hour = models.DateTimeField(help_text="The start of the hour the events were stored in.")
    bin = models.SmallIntegerField(help_text="The lateness bin (see LATENESS_LAST_BIN).")
    n = models.BigIntegerField(help_text="Events stored in the hour with a lateness in the bin.")

    class Meta:
        verbose_name = "DPU hour statistic"
        constraints = [
            # The upsert's conflict target, and the (dpu, hour) index the reads and the pruning walk.
            models.UniqueConstraint(fields=["dpu", "hour", "bin"], name="dpu_hour_stat_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.dpu_id} {self.hour.isoformat()} bin {self.bin}: {self.n}"


class DpuClockRefusal(models.Model):
    """Items of a registered DPU refused for a broken clock, by reason: their events are never stored, so this is
    where the broken clock shows."""

    class Reason(models.TextChoices):
        CLOCK_AHEAD = "clock_ahead", "more than 5 minutes in the future"
        CLOCK_BEFORE_2000 = "clock_before_2000", "before 2000"

    dpu = models.ForeignKey(Dpu, on_delete=models.CASCADE, related_name="clock_refusals", db_index=False)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    count = models.BigIntegerField(help_text="Items refused for this reason.")
    last_timestamp = models.DateTimeField(help_text="The timestamp of the latest refused item, as the DPU sent it.")
    last_refused_at = models.DateTimeField(help_text="When the latest item was refused.")

    class Meta:
        verbose_name = "DPU clock refusal"
        constraints = [models.UniqueConstraint(fields=["dpu", "reason"], name="dpu_clock_refusal_unique")]

    def __str__(self) -> str:
        return f"{self.dpu_id} {self.reason}: {self.count}"
