from config.api import api_path
from occupancy import apis

urlpatterns = [
    api_path(r"space/(?P<space_id>[0-9]{1,18})/count", apis.SpaceCountApi.as_view(), name="space-count"),
]
