from django.contrib import admin

from config.admin import ReadOnlyAdmin
from occupancy.models import SpaceOccupancy


@admin.register(SpaceOccupancy)
class SpaceOccupancyAdmin(ReadOnlyAdmin):
    """Derived from the events; rebuild with `manage.py occupancy_rebuild`, never edit by hand."""

    list_display = ["space", "timestamp", "kind", "delta", "count", "status", "event"]
    list_filter = ["space", "kind", "status"]
    list_select_related = ["space", "event__dpu"]
    date_hierarchy = "timestamp"
    ordering = ["space", "-timestamp"]
