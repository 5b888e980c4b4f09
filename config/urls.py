from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerView

from config.api import api_path
from config.health import HealthApi
from config.openapi import SchemaApi
from dashboard.views import home as dashboard_home

urlpatterns = [
    path("admin/", admin.site.urls),
    # The dashboard: pages for people with a password (Django's sign-in); the API below is for programs.
    path("", dashboard_home, name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("dashboard/", include("dashboard.urls")),
    api_path("health", HealthApi.as_view(), name="health"),
    api_path("api/schema", SchemaApi.as_view(), name="schema"),
    api_path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("", include("observability.urls")),
    path("", include("spaces.urls")),
    path("", include("dpu.urls")),
    path("", include("occupancy.urls")),
    path("", include("stream.urls")),
]

handler404 = "config.api.not_found"
handler500 = "config.api.server_error"
