from config.api import api_path
from occupancy import apis

SPACE = r"space/(?P<space_id>[0-9]{1,18})"

urlpatterns = [
    api_path(rf"{SPACE}/count", apis.SpaceCountApi.as_view(), name="space-count"),
    api_path(rf"{SPACE}/counts", apis.SpaceCountsApi.as_view(), name="space-counts"),
    api_path(r"counts", apis.CountsApi.as_view(), name="counts"),
    api_path(rf"{SPACE}/resets", apis.ResetListApi.as_view(), name="space-resets"),
    api_path(rf"{SPACE}/resets/(?P<reset_id>[0-9]{{1,18}})", apis.ResetDetailApi.as_view(), name="space-reset"),
]
