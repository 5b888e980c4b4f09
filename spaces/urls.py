from config.api import api_path
from spaces import apis

urlpatterns = [
    api_path("space", apis.SpaceApi.as_view(), name="space-list"),
    api_path(r"space/(?P<space_id>[0-9]{1,18})", apis.SpaceDetailApi.as_view(), name="space-detail"),
    api_path("doorway", apis.DoorwayApi.as_view(), name="doorway-list"),
    api_path(r"doorway/(?P<doorway_id>[0-9]{1,18})", apis.DoorwayDetailApi.as_view(), name="doorway-detail"),
]
