from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("spaces.urls")),
    path("", include("dpu.urls")),
    path("", include("occupancy.urls")),
]

handler404 = "config.api.not_found"
