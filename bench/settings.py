"""The service's local settings, plus the baseline views the benchmarks compare it with (bench.urls)."""

from config.settings.local import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
