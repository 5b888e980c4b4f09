from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview_page, name="overview"),
    path("fleet/", views.fleet_page, name="fleet"),
    path("space/<int:space_id>/", views.space_page, name="space"),
    path("space/<int:space_id>/count", views.set_count, name="set-count"),
]
