from django.apps import AppConfig


class StreamConfig(AppConfig):
    name = "stream"
    verbose_name = "Live stream of counts"

    def ready(self):
        from stream import services  # noqa: F401  (connects its receiver of occupancy's counts_recalculated)
