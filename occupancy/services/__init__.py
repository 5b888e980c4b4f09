"""Functions that change the occupancy time series. Every write goes through occupancy_recalculate."""

from occupancy.services.check import Difference, occupancy_check
from occupancy.services.recalculate import occupancy_rebuild, occupancy_recalculate, occupancy_settle
from occupancy.services.resets import reset_create, reset_delete

__all__ = [
    "Difference",
    "occupancy_check",
    "occupancy_rebuild",
    "occupancy_recalculate",
    "occupancy_settle",
    "reset_create",
    "reset_delete",
]
