"""On PostgreSQL, the occupancy rows become partitioned by month (history.partitions), rows and all."""

from django.db import migrations

from history.partitions import partition_convert

TABLE = "occupancy_spaceoccupancy"


def partition(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite keeps one table
    with schema_editor.connection.cursor() as cursor:
        partition_convert(cursor, TABLE)


class Migration(migrations.Migration):
    dependencies = [
        ("occupancy", "0007_event_unchecked_and_keys_with_timestamp"),
        ("history", "0001_archive"),
    ]

    # One way: a partitioned table does not go back to a plain one.
    operations = [migrations.RunPython(partition, elidable=False)]
