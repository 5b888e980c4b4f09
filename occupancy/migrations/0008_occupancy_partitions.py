"""On PostgreSQL, the occupancy rows become partitioned by month (history.partitions), rows and all."""

from django.db import migrations

from history.partitions import converting


class Migration(migrations.Migration):
    dependencies = [
        ("occupancy", "0007_event_unchecked_and_keys_with_timestamp"),
        ("history", "0001_archive"),
    ]

    # One way: a partitioned table does not go back to a plain one.
    operations = [migrations.RunPython(converting("occupancy_spaceoccupancy"), elidable=False)]
