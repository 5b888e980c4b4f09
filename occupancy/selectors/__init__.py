"""Functions that read occupancy: the count at an instant, counts over time, resets."""

from occupancy.selectors.buckets import SpaceSeries, space_series
from occupancy.selectors.counts import (
    SpaceCount,
    space_count_at,
    space_get_with_count,
    space_list_page,
    space_list_with_counts,
)
from occupancy.selectors.resets import reset_get, reset_list

__all__ = [
    "SpaceCount",
    "SpaceSeries",
    "reset_get",
    "reset_list",
    "space_count_at",
    "space_get_with_count",
    "space_list_page",
    "space_list_with_counts",
    "space_series",
]
