from django.apps import AppConfig


class OccupancyConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "occupancy"
