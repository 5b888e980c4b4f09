"""On PostgreSQL, the event log becomes partitioned by month (history.partitions), rows and all."""

from django.db import migrations

from history.partitions import converting


class Migration(migrations.Migration):
    # The occupancy rows' key to the events goes first: a key cannot point at a partitioned table's id alone.
    dependencies = [
        ("dpu", "0004_dpu_health"),
        ("occupancy", "0007_event_unchecked_and_keys_with_timestamp"),
        ("history", "0001_archive"),
    ]

    # One way: a partitioned table does not go back to a plain one.
    operations = [migrations.RunPython(converting("dpu_dpuevent"), elidable=False)]
