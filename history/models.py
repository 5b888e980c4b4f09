from django.db import models


class HistoryArchive(models.Model):
    """Whole months of raw events exported to a file and dropped from the database (history_archive).

    Everything before `before` is read-only history from then on: its events are gone, and its counts are read
    from the five-minute blocks, which are kept (occupancy.latest).
    """

    before = models.DateTimeField(unique=True, help_text="Every month before this instant (UTC) is archived.")
    file = models.CharField(max_length=1000, help_text="Where the events went: a gzip-compressed CSV.")
    events = models.BigIntegerField(help_text="How many events the file holds.")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["before"]

    def __str__(self) -> str:
        return f"before {self.before:%Y-%m}: {self.events} events to {self.file}"
