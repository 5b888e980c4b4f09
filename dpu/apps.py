from django.apps import AppConfig


class DpuConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "dpu"
