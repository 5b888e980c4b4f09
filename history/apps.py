from django.apps import AppConfig
from django.db.models.signals import post_migrate


class HistoryConfig(AppConfig):
    """Years of history on PostgreSQL: the monthly partitions of the event log and the occupancy rows, and the
    archive of old months."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "history"

    def ready(self) -> None:
        post_migrate.connect(_partitions_ahead, sender=self)


def _partitions_ahead(sender, using: str, **kwargs) -> None:
    """Every `migrate` makes the months ahead, like `manage.py history_partitions`."""
    from history.partitions import partitions_ensure

    if using == "default":
        partitions_ensure()
