"""The service's URLs, plus the baseline views under bench/baseline/."""

from bench import baseline
from config.api import api_path
from config.urls import urlpatterns as service_urlpatterns

urlpatterns = [
    *service_urlpatterns,
    api_path(
        r"bench/baseline/space/(?P<space_id>[0-9]{1,18})/count",
        baseline.BareCountApi.as_view(),
        name="baseline-count",
    ),
    api_path("bench/baseline/events", baseline.BareEventInsertApi.as_view(), name="baseline-events"),
]
