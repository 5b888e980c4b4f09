from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerView

from config.api import api_path
from config.health import HealthApi
from config.openapi import SchemaApi

urlpatterns = [
    path("admin/", admin.site.urls),
    api_path("health", HealthApi.as_view(), name="health"),
    api_path("api/schema", SchemaApi.as_view(), name="schema"),
    api_path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("", include("spaces.urls")),
    path("", include("dpu.urls")),
    path("", include("occupancy.urls")),
]

handler404 = "config.api.not_found"
handler500 = "config.api.server_error"
