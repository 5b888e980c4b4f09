from config.api import api_path
from observability import apis

urlpatterns = [
    api_path("metrics", apis.MetricsApi.as_view(), name="metrics"),
]
