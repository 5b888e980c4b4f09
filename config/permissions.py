"""Who may do what. Its own module: DRF imports it while loading its settings, before the rest of the API.

Three kinds of caller: staff users (everything), other signed-in users such as a dashboard's read-only token
(read counts and layout), and DPUs (post their own events, nothing else).
"""

from rest_framework import permissions


class IsStaffOrReadOnly(permissions.BasePermission):
    """Any signed-in user may read (a dashboard's read-only token, say); only staff may change anything.

    DPUs may do neither: their token is for posting their own events (CanPostEvents).
    """

    message = "Only staff users may change this."

    def has_permission(self, request, view):
        user = request.user
        if getattr(user, "is_dpu", False):
            # DRF makes a new instance per request: the refusal may say what this caller tried.
            self.message = DPU_POSTS_ONLY
            return False
        if not (user and user.is_authenticated):
            return False
        return request.method in permissions.SAFE_METHODS or user.is_staff


DPU_POSTS_ONLY = (
    "DPU tokens may only post events (POST /events); reading or changing anything else needs a user's token."
)


class CanPostEvents(permissions.BasePermission):
    """Staff may post events for any DPU; a DPU's token for that DPU only (checked per item by the view)."""

    message = "Only staff users and DPU tokens may post events."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and (user.is_staff or getattr(user, "is_dpu", False)))
