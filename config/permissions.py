"""Who may do what. Its own module: DRF imports it while loading its settings, before the rest of the API.

Three kinds of caller: staff users (everything), other signed-in users such as a dashboard's read-only token
(read counts and layout), and DPUs (post their own events, nothing else).
"""

from rest_framework import permissions


class IsStaffOrReadOnly(permissions.BasePermission):
    """Any signed-in user may read (a dashboard's read-only token, say); only staff may change anything.

    DPUs may do neither: their token is for posting their own events (CanPostEvents).
    """

    message = "Only staff users may change this; DPU tokens may only post events."

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated) or getattr(user, "is_dpu", False):
            return False
        return request.method in permissions.SAFE_METHODS or user.is_staff


class CanPostEvents(permissions.BasePermission):
    """Staff may post events for any DPU; a DPU's token for that DPU only (checked per item by the view)."""

    message = "Only staff users and DPU tokens may post events."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and (user.is_staff or getattr(user, "is_dpu", False)))
