from django.apps import AppConfig
from django.db.backends.signals import connection_created


def _database_session(sender, connection, **kwargs) -> None:
    """What the occupancy statements need of each new database session."""
    if connection.vendor == "sqlite":
        # What the counts over time need of PostgreSQL (see occupancy.selectors.sqlite).
        from occupancy.selectors.sqlite import FirstAtMax, sqlite_width_bucket

        connection.connection.create_function("width_bucket", 2, sqlite_width_bucket, deterministic=True)
        connection.connection.create_aggregate("first_at_max", 2, FirstAtMax)
    elif connection.vendor == "postgresql":
        # PostgreSQL compiles a statement whose estimated cost is high enough; range conditions it cannot estimate
        # (a recalculation's upper bound) made it compile statements that run in 0.1 ms, for 40 ms each
        # (EXPLAIN ANALYZE of a batch's block refresh). No statement here runs long enough to gain from it.
        with connection.connection.cursor() as cursor:
            cursor.execute("SET jit = off")


class OccupancyConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "occupancy"

    def ready(self) -> None:
        connection_created.connect(_database_session, dispatch_uid="occupancy_database_session")
