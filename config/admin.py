from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """For data nobody edits by hand: the raw event log and what is derived from it."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
