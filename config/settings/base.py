"""Settings every deployment shares. Pick one of the modules beside it:

- `config.settings.local` (the default): embedded, SQLite in the project folder, a secret key generated once
  into `.secret_key`;
- `config.settings.production`: everything from the environment, secure cookies and HSTS, no fallbacks.

Everything that differs between machines comes from the environment.
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
import pygaljs
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0, true/false, yes/no or on/off, not {raw!r}.")


def env_seconds(name: str, default: timedelta) -> timedelta:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        seconds = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number of seconds, not {raw!r}.") from None
    if seconds < 0:
        raise ImproperlyConfigured(f"{name} must not be negative, got {seconds}.")
    return timedelta(seconds=seconds)


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in (os.environ.get(name) or default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", default=False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_extensions",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "spaces",
    "dpu",
    "occupancy",
    "dashboard",
    "observability",
    "stream",
    "history",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Request metrics, the request id and the one log line per request; first after the HTTPS redirect, so that
    # its duration covers everything Django does and static files are logged too.
    "observability.middleware.RequestObservabilityMiddleware",
    # Static files (the admin's, Swagger UI's) from this process, under gunicorn too: no web server needed.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
# The API answers on paths with and without a trailing slash itself; never redirect a POST.
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"


def _database(url: str | None = None, *, variable: str = "DATABASE_URL") -> dict:
    url = url or os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    try:
        config = dj_database_url.parse(url, conn_max_age=60)
    except Exception as exc:  # dj-database-url raises several types for a bad URL
        raise ImproperlyConfigured(f"{variable} is not a database URL Django understands: {exc}") from None
    engine = config.get("ENGINE", "")
    if engine == "django.db.backends.sqlite3":
        # IMMEDIATE takes the write lock when a transaction starts, so two writers queue on the busy timeout
        # instead of failing with "database is locked" when one upgrades a read lock.
        config["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 30}
        # Tests use a file, not shared-cache memory, so that parallel writers see real SQLite locking.
        config["TEST"] = {"NAME": f"{config['NAME']}.test"}
    elif engine == "django.db.backends.postgresql":
        # libpq waits for a new connection as long as the operating system does: minutes, for a host that drops
        # packets. Give up after 2 seconds instead, so that a worker answers (GET /health: 503) rather than hangs
        # while PostgreSQL is unreachable. A connect_timeout in DATABASE_URL's query string takes precedence.
        config.setdefault("OPTIONS", {}).setdefault("connect_timeout", 2)
    else:
        raise ImproperlyConfigured(f"{variable} must point at SQLite or PostgreSQL, not {engine or url!r}.")
    return config


def _replicas(primary: dict) -> dict[str, dict]:
    """DATABASE_REPLICA_URLS: streaming standbys of the primary, "replica_0", "replica_1", ... (config.replicas)."""
    replicas = {}
    for number, url in enumerate(env_list("DATABASE_REPLICA_URLS", "")):
        replica = _database(url, variable="DATABASE_REPLICA_URLS")
        if replica["ENGINE"] != "django.db.backends.postgresql" or primary["ENGINE"] != replica["ENGINE"]:
            raise ImproperlyConfigured(
                "DATABASE_REPLICA_URLS must list PostgreSQL standbys of a PostgreSQL DATABASE_URL "
                f"(streaming replication), not {url!r}."
            )
        # Under test, a replica is the test database itself (and config.replicas reads from the primary).
        replica["TEST"] = {"MIRROR": "default"}
        replicas[f"replica_{number}"] = replica
    return replicas


DATABASES = {"default": _database()}
DATABASES.update(_replicas(DATABASES["default"]))
# A replica further behind the primary than this is skipped (its reads go to the primary); see config.replicas.
DATABASE_REPLICA_MAX_LAG = env_seconds("DATABASE_REPLICA_MAX_LAG", default=timedelta(seconds=5))
if len(DATABASES) > 1:
    DATABASE_ROUTERS = ["config.replicas.ReplicaRouter"]
    # Which database a request reads from, and the read-your-writes cookie; right after the request's metrics, so
    # that everything Django does for the request runs inside it.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("observability.middleware.RequestObservabilityMiddleware") + 1,
        "config.replicas.ReplicaReadsMiddleware",
    )

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# pygal's tooltip script, from the pygaljs package (no CDN): /static/pygal/pygal-tooltips.min.js.
STATICFILES_DIRS = [("pygal", pygaljs.path("latest"))]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "login"
# Locally, straight from the apps' static folders: no collectstatic step. Production serves what `collectstatic`
# (run by `make serve`) wrote into its STATIC_ROOT (config/settings/production.py).
WHITENOISE_USE_FINDERS = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A batch of 10,000 events is about 800 kB of JSON; leave room for pretty-printed bodies.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "dpu.authentication.DpuTokenAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["config.permissions.IsStaffOrReadOnly"],  # safe by default
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    # JSON is the only format: ?format=... is an ordinary (ignored) query parameter, not a 404.
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# The version of this service, written only here: the OpenAPI schema and GET /health both report it.
SERVICE_VERSION = "1.0.0"

# The OpenAPI schema (GET /api/schema) and its documentation (GET /api/docs), served by this service with no
# internet access: Swagger UI comes from drf-spectacular-sidecar's static files, not a CDN.
SPECTACULAR_SETTINGS = {
    "TITLE": "People-counting service API",
    "DESCRIPTION": "Occupancy of spaces from doorway sensors (DPUs): events in, counts out.",
    "VERSION": SERVICE_VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],  # readable without a token, and a wrong one does not matter
    "PREPROCESSING_HOOKS": ["config.openapi.paths_without_trailing_slash"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.strict_request_bodies",
        "dpu.apis.event_batch_schema",
    ],
    "COMPONENT_SPLIT_REQUEST": True,
    # GET /health and GET /dpu both have a `status`, with different choices.
    "ENUM_NAME_OVERRIDES": {"DpuStatusEnum": "dpu.selectors.STATUSES"},
}

# GET /stream: how long count changes are kept for a client that reconnects with Last-Event-ID; how many changes
# a client may have waiting before it is dropped; how often an idle stream gets a keep-alive comment.
STREAM_RETENTION = env_seconds("STREAM_RETENTION", default=timedelta(hours=1))
STREAM_QUEUE = int(os.environ.get("STREAM_QUEUE") or 1000)
STREAM_HEARTBEAT = env_seconds("STREAM_HEARTBEAT", default=timedelta(seconds=15))

# Occupancy rows younger than this (by timestamp or by their last change) are "pending": a late event may
# still change them. Older ones are "settled".
OCCUPANCY_SETTLE_AFTER = env_seconds("OCCUPANCY_SETTLE_AFTER", default=timedelta(hours=1))

# A DPU (assigned, and heard from before) is "silent" when nothing of it was stored for longer than this.
DPU_SILENT_AFTER = env_seconds("DPU_SILENT_AFTER", default=timedelta(hours=24))


def _metrics_token() -> str | None:
    token = os.environ.get("METRICS_TOKEN") or None
    if token is not None and not (len(token) >= 16 and token.isascii() and token.isprintable() and " " not in token):
        raise ImproperlyConfigured(
            "METRICS_TOKEN must be at least 16 printable ASCII characters without spaces (it travels as "
            "`Authorization: Bearer <token>`), such as one from "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
        )
    return token


# GET /metrics answers staff users' tokens and, when this is set, `Authorization: Bearer <METRICS_TOKEN>`.
METRICS_TOKEN = _metrics_token()

# The log's format: "text" (a line of text per record) or "json" (one JSON object per line, for a log collector).
LOG_FORMAT = os.environ.get("LOG_FORMAT") or "text"
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "observability.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
