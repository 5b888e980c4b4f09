from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet

from history.selectors import ArchivedHistory, history_check_writable
from occupancy.models import OccupancyReset
from occupancy.selectors import space_list_with_counts
from occupancy.services import reset_create, reset_delete
from spaces.models import Doorway, Space
from spaces.services import SPACE_SETTINGS, doorway_create, doorway_update, space_create, space_update


class ResetFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        """A reset added or deleted in an archived month is a form error. The services refuse it too, but only
        after the space's other changes were saved."""
        super().clean()
        deleted = [form.instance.timestamp for form in self.deleted_forms if form.instance.pk is not None]
        added = [
            form.cleaned_data["timestamp"]
            for form in self.forms
            if form.instance.pk is None and not self._should_delete_form(form) and form.cleaned_data.get("timestamp")
        ]
        changed = [*((at, "The reset deleted") for at in deleted), *((at, "This reset") for at in added)]
        if changed:
            instant, what = min(changed)  # the earliest: if any is archived, it is
            try:
                history_check_writable(instant=instant, what=what)
            except ArchivedHistory as exc:
                raise ValidationError(str(exc)) from None


class ResetInline(admin.TabularInline):
    """An operator's resets of the space: added and deleted through the same service as the API; a reset is
    never edited in place (delete it and add the right one)."""

    model = OccupancyReset
    formset = ResetFormSet
    fields = ["timestamp", "local_time", "count", "created_by", "created"]
    readonly_fields = ["local_time", "created_by", "created"]
    ordering = ["-timestamp"]
    extra = 0

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="in the space's time zone")
    def local_time(self, reset: OccupancyReset) -> str:
        if reset.pk is None:
            return "-"
        return reset.timestamp.astimezone(reset.space.zone).strftime("%Y-%m-%d %H:%M:%S %Z")


@admin.register(Space)
class SpaceAdmin(admin.ModelAdmin):
    list_display = ["name", "time_zone", "capacity", "daily_reset", "allow_negative", "current_count"]
    search_fields = ["name"]
    inlines = [ResetInline]

    def get_queryset(self, request):
        return space_list_with_counts()

    @admin.display(description="count now")
    def current_count(self, space: Space) -> int:
        return space.count

    def save_model(self, request, obj, form, change):
        # Through the services, so that a change that moves counts recalculates the space like the API would.
        settings = {field: getattr(obj, field) for field in SPACE_SETTINGS}
        if change:
            space_update(space=obj, **settings)
        else:
            obj.pk = space_create(**settings).pk

    def save_formset(self, request, form, formset, change):
        if formset.model is not OccupancyReset:
            return super().save_formset(request, form, formset, change)
        added = [reset for reset in formset.save(commit=False) if reset.pk is None]
        for reset in formset.deleted_objects:
            reset_delete(reset=reset)
        for reset in added:
            reset_create(space=form.instance, timestamp=reset.timestamp, count=reset.count, created_by=request.user)


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
