from django.apps import AppConfig
from django.db.backends.signals import connection_created


def _sqlite_functions(sender, connection, **kwargs) -> None:
    """Give SQLite what the counts over time need of PostgreSQL (see occupancy.selectors.buckets)."""
    if connection.vendor == "sqlite":
        from occupancy.selectors.buckets import FirstAtMax, sqlite_width_bucket

        connection.connection.create_function("width_bucket", 2, sqlite_width_bucket, deterministic=True)
        connection.connection.create_aggregate("first_at_max", 2, FirstAtMax)


class OccupancyConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "occupancy"

    def ready(self) -> None:
        connection_created.connect(_sqlite_functions, dispatch_uid="occupancy_sqlite_functions")
