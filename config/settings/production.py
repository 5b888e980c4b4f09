"""Production: DJANGO_SETTINGS_MODULE=config.settings.production.

Everything comes from the environment and nothing secret has a default: SECRET_KEY is required, DEBUG is off
unless asked for. Cookies are secure and HSTS is on, as `manage.py check --deploy` asks. TLS is expected to end
at a proxy in front of gunicorn: set TRUST_X_FORWARDED_PROTO=1 when that proxy sets X-Forwarded-Proto.
"""

import os
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import env_bool, env_seconds

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY.strip():
    raise ImproperlyConfigured(
        "SECRET_KEY must be set for production settings: a long random string, e.g. from "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
    )

SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
if env_bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = int(env_seconds("SECURE_HSTS_SECONDS", default=timedelta(days=365)).total_seconds())
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Static files (the dashboard's, the admin's, Swagger UI's) as `collectstatic` wrote them, which `make serve` runs:
# gzip-compressed once, named by content hash, and sent by WhiteNoise with a year's Cache-Control.
STATIC_ROOT = BASE_DIR / "staticfiles"  # noqa: F405
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = False
