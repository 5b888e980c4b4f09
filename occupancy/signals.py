"""What occupancy tells other apps.

`counts_recalculated(space_ids, now)`: occupancy_recalculate rewrote these spaces' rows. Sent inside its
transaction while it holds the spaces' locks, so a receiver reads their rows as this transaction leaves them and
what it writes commits (or rolls back) with them; keep receivers quick, they run on every ingest.
"""

from django.dispatch import Signal

counts_recalculated = Signal()
