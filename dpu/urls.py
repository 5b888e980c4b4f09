from config.api import api_path
from dpu import apis

urlpatterns = [
    api_path("events", apis.EventIngestApi.as_view(), name="event-ingest"),
    api_path("dpu", apis.DpuApi.as_view(), name="dpu-list"),
    api_path(r"dpu/(?P<serial>[0-9]{1,19})/assignments", apis.AssignmentApi.as_view(), name="dpu-assignments"),
    api_path(r"dpu/(?P<serial>[0-9]{1,19})", apis.DpuDetailApi.as_view(), name="dpu-detail"),
    api_path(r"dpu/(?P<serial>[0-9]{1,19})/token", apis.DpuTokenApi.as_view(), name="dpu-token"),
    api_path(
        r"dpu/(?P<serial>[0-9]{1,19})/assignments/(?P<assignment_id>[0-9]{1,19})",
        apis.AssignmentDetailApi.as_view(),
        name="dpu-assignment-detail",
    ),
    api_path(r"dpu/(?P<serial>[0-9]{1,19})/events", apis.EventLogApi.as_view(), name="dpu-events"),
]
