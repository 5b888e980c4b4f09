import zoneinfo
from functools import cache

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django_extensions.db.models import TimeStampedModel


@cache
def time_zone_names() -> frozenset[str]:
    """Every IANA time zone name this machine knows (from the tzdata package where there are no system files)."""
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(name: str) -> None:
    if name not in time_zone_names():
        raise ValidationError(f"{name[:60]!r} is not an IANA time zone name, such as Europe/Berlin or UTC.")


class Space(TimeStampedModel):
    """A room or area whose occupancy is counted. Outside is not a Space: it is never counted.

    Its time zone decides what "a day" means for it: its daily reset and, by default, the days of its counts over
    time. Changing `allow_negative`, `time_zone` or `daily_reset` recalculates its whole history
    (spaces.services.space_update).
    """

    name = models.CharField(max_length=200, unique=True)
    allow_negative = models.BooleanField(
        default=False,
        help_text="Let the count go below zero instead of holding it at zero (for spaces with an uncounted entrance).",
    )
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="IANA name, such as Europe/Berlin: the space's local days (daily reset, counts by day).",
    )
    capacity = models.PositiveIntegerField(
        null=True, blank=True, help_text="How many people the space holds; counts report max / capacity."
    )
    daily_reset = models.TimeField(
        null=True,
        blank=True,
        help_text="Local time of day at which the count is set to 0 every day (people 'staying overnight' are "
        "sensor drift). Empty: never.",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                name="space_capacity_positive", condition=Q(capacity__isnull=True) | Q(capacity__gt=0)
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    def clean(self) -> None:
        # A count held at zero cannot also have been reset below it: the operator's resets say otherwise.
        if self.pk is not None and not self.allow_negative and self.resets.filter(count__lt=0).exists():
            raise ValidationError({"allow_negative": "This space has resets to a count below zero; delete them first."})


class Doorway(TimeStampedModel):
    """A passage between two sides, each a Space or outside (null). A DPU watches one doorway at a time."""

    name = models.CharField(max_length=200)
    side_a = models.ForeignKey(Space, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    side_b = models.ForeignKey(Space, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            # A doorway from a space into itself, or from outside to outside, would count nobody.
            models.CheckConstraint(
                name="doorway_sides_differ",
                condition=(Q(side_a__isnull=False) | Q(side_b__isnull=False))
                & (Q(side_a__isnull=True) | Q(side_b__isnull=True) | ~Q(side_a=models.F("side_b"))),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.side_a_id is None and self.side_b_id is None:
            raise ValidationError(
                "A doorway needs at least one side that is a space; outside to outside counts nobody."
            )
        if self.side_a_id is not None and self.side_a_id == self.side_b_id:
            raise ValidationError("A doorway must join two different sides.")

    @property
    def sides(self) -> tuple[int | None, int | None]:
        return (self.side_a_id, self.side_b_id)

    def other_side(self, space_id: int | None) -> int | None:
        """The side opposite `space_id` (a Space id, or None for outside)."""
        return self.side_b_id if space_id == self.side_a_id else self.side_a_id
