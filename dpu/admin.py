from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms.models import BaseInlineFormSet

from config.admin import ReadOnlyAdmin
from dpu.models import Dpu, DpuAssignment, DpuEvent
from dpu.services import assignment_delete, assignment_move, assignment_update, dpu_create, dpu_token_rotate


def _apply_assignment_forms(dpu: Dpu, formset: BaseInlineFormSet) -> None:
    """The inline's changes, through the same services as the API: deletions, then corrections in place,
    then new rows, each of which moves the DPU from its valid_from on (ending the assignment covering it).

    Records what it did as a formset's save() would, for the admin's change message."""
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    for form in formset.deleted_forms:
        if form.instance.pk:
            assignment_delete(assignment=DpuAssignment.objects.get(pk=form.instance.pk))
            formset.deleted_objects.append(form.instance)
    for form in formset.initial_forms:
        if form in formset.deleted_forms or not form.has_changed():
            continue
        data = form.cleaned_data
        formset.changed_objects.append((form.instance, form.changed_data))
        assignment_update(
            assignment=DpuAssignment.objects.get(pk=form.instance.pk),
            doorway=data["doorway"],
            enters=data["enters"],
            valid_from=data["valid_from"],
            valid_to=data["valid_to"],
        )
    new = [f.cleaned_data for f in formset.extra_forms if f.has_changed() and f not in formset.deleted_forms]
    for data in sorted(new, key=lambda d: d["valid_from"]):
        moved = assignment_move(dpu=dpu, doorway=data["doorway"], enters=data["enters"], valid_from=data["valid_from"])
        formset.new_objects.append(moved)
        if data["valid_to"] is not None and data["valid_to"] != moved.valid_to:
            assignment_update(
                assignment=moved,
                doorway=moved.doorway,
                enters=moved.enters,
                valid_from=moved.valid_from,
                valid_to=data["valid_to"],
            )


class AssignmentFormSet(BaseInlineFormSet):
    def clean(self):
        super().clean()
        if any(self.errors) or self.instance.pk is None:
            return
        # Try the changes for real and roll them back: the services are the one judge of what is allowed.
        try:
            with transaction.atomic():
                _apply_assignment_forms(self.instance, self)
                transaction.set_rollback(True)
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None


class AssignmentInline(admin.TabularInline):
    model = DpuAssignment
    formset = AssignmentFormSet
    fields = ["doorway", "enters", "valid_from", "valid_to"]
    extra = 1
    ordering = ["valid_from"]
    verbose_name_plural = (
        "assignments (a new row moves the DPU from its valid_from on and ends the assignment covering that instant)"
    )


@admin.register(Dpu)
class DpuAdmin(admin.ModelAdmin):
    list_display = ["serial", "created"]
    search_fields = ["serial"]
    inlines = [AssignmentInline]

    actions = ["rotate_tokens"]

    def save_model(self, request, obj, form, change):
        if change:
            obj.save()
            return
        created, token = dpu_create(serial=obj.serial)
        obj.pk, obj.token_hash = created.pk, created.token_hash
        self._show_token(request, created, token)

    @admin.action(description="Rotate the tokens of the selected DPUs (the old ones stop working)")
    def rotate_tokens(self, request, queryset):
        for dpu in queryset:
            self._show_token(request, dpu, dpu_token_rotate(dpu=dpu))

    def _show_token(self, request, dpu: Dpu, token: str) -> None:
        # Only the hash is stored: this message is the one chance to copy the token into the device.
        messages.warning(request, f"Token of {dpu}, shown only now - configure the device with it: {token}")

    def save_formset(self, request, form, formset, change):
        if formset.model is DpuAssignment:
            with transaction.atomic():
                _apply_assignment_forms(form.instance, formset)
        else:
            super().save_formset(request, form, formset, change)


@admin.register(DpuEvent)
class DpuEventAdmin(ReadOnlyAdmin):
    """The raw log, exactly as received: read-only."""

    list_display = ["dpu", "timestamp", "direction", "received_at"]
    list_filter = ["dpu", "direction"]
    date_hierarchy = "timestamp"
    ordering = ["-timestamp"]
