from django.contrib import admin

from occupancy.models import SpaceOccupancy


@admin.register(SpaceOccupancy)
class SpaceOccupancyAdmin(admin.ModelAdmin):
    """Derived from the events; rebuild with `manage.py occupancy_rebuild`, never edit by hand."""

    list_display = ["space", "timestamp", "delta", "count", "status", "event"]
    list_filter = ["space", "status"]
    list_select_related = ["space", "event__dpu"]
    date_hierarchy = "timestamp"
    ordering = ["space", "-timestamp"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
