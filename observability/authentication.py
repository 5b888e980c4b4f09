"""How a Prometheus server proves it may scrape GET /metrics without a user: `Authorization: Bearer <METRICS_TOKEN>`,
the token an operator puts in the environment (and in the scrape job). Staff users' own tokens work too."""

import hmac
from dataclasses import dataclass

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions


@dataclass(frozen=True)
class MetricsScraper:
    """The caller behind METRICS_TOKEN: may read GET /metrics, nothing else."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    is_dpu = False
    is_metrics_scraper = True

    def __str__(self) -> str:
        return "metrics scraper"


class MetricsTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].lower() != self.keyword.lower().encode():
            return None
        expected = settings.METRICS_TOKEN
        # Compared in constant time, so that how long a refusal takes says nothing about how much of it was right.
        if not expected or not hmac.compare_digest(parts[1], expected.encode()):
            raise exceptions.AuthenticationFailed("Invalid metrics token: it must be the service's METRICS_TOKEN.")
        return MetricsScraper(), None

    def authenticate_header(self, request):
        return self.keyword


class MetricsTokenScheme(OpenApiAuthenticationExtension):
    target_class = "observability.authentication.MetricsTokenAuthentication"
    name = "metricsToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "METRICS_TOKEN from the service's environment, for a Prometheus scrape job: /metrics only.",
        }
