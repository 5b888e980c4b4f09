from config.api import api_path
from stream import apis

urlpatterns = [
    api_path("stream", apis.StreamApi.as_view(), name="stream"),
]
