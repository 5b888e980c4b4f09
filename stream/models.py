from django.db import models

from spaces.models import Space


class CountChange(models.Model):
    """A change of a space's current count, as GET /stream sends it. Its id is the stream's event id; rows are kept
    for STREAM_RETENTION so that a client reconnecting with Last-Event-ID gets what it missed."""

    space = models.ForeignKey(Space, on_delete=models.CASCADE, related_name="+")
    count = models.IntegerField()
    at = models.DateTimeField(db_index=True)  # when the service recalculated it: the pruning order

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.space_id} = {self.count} at {self.at.isoformat()}"


class PublishedCount(models.Model):
    """Each space's current count as last published: what a recalculation compares the new current count with,
    so that only a real change becomes an event."""

    space = models.OneToOneField(Space, on_delete=models.CASCADE, primary_key=True, related_name="+")
    count = models.IntegerField()

    def __str__(self) -> str:
        return f"{self.space_id} = {self.count}"
