from django.contrib import admin

from occupancy.selectors import space_list_with_counts
from spaces.models import Doorway, Space
from spaces.services import doorway_create, doorway_update, space_create, space_update


@admin.register(Space)
class SpaceAdmin(admin.ModelAdmin):
    list_display = ["name", "allow_negative", "current_count"]
    search_fields = ["name"]

    def get_queryset(self, request):
        return space_list_with_counts()

    @admin.display(description="count now")
    def current_count(self, space: Space) -> int:
        return space.count

    def save_model(self, request, obj, form, change):
        # Through the services, so that changing allow_negative recalculates the space like the API would.
        if change:
            space_update(space=obj, name=obj.name, allow_negative=obj.allow_negative)
        else:
            obj.pk = space_create(name=obj.name, allow_negative=obj.allow_negative).pk


@admin.register(Doorway)
class DoorwayAdmin(admin.ModelAdmin):
    list_display = ["name", "side_a", "side_b"]
    search_fields = ["name"]

    def get_readonly_fields(self, request, obj=None):
        # Once a DPU has counted through a doorway its sides are history (see doorway_update).
        if obj is not None and obj.assignments.exists():
            return ["side_a", "side_b"]
        return []

    def save_model(self, request, obj, form, change):
        if change:
            doorway_update(doorway=obj, name=obj.name, side_a=obj.side_a, side_b=obj.side_b)
        else:
            obj.pk = doorway_create(name=obj.name, side_a=obj.side_a, side_b=obj.side_b).pk
