"""Settings come from the environment, and a bad value stops the service with a message naming it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]


def _load_settings(**env: str) -> subprocess.CompletedProcess:
    code = (
        "import config.settings.local as s; print(s.OCCUPANCY_SETTLE_AFTER.total_seconds(), s.DEBUG, s.ALLOWED_HOSTS)"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT,
        env={**os.environ, "DATABASE_URL": "", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("OCCUPANCY_SETTLE_AFTER", "an hour", "OCCUPANCY_SETTLE_AFTER must be a whole number of seconds"),
        ("OCCUPANCY_SETTLE_AFTER", "-5", "OCCUPANCY_SETTLE_AFTER must not be negative"),
        ("DEBUG", "maybe", "DEBUG must be one of"),
        ("DATABASE_URL", "mysql://root@localhost/occupancy", "DATABASE_URL must point at SQLite or PostgreSQL"),
    ],
)
def test_bad_setting_stops_with_a_message_naming_the_variable(name, value, complaint):
    result = _load_settings(**{name: value})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert complaint in result.stderr


def test_settings_are_read_from_the_environment():
    result = _load_settings(OCCUPANCY_SETTLE_AFTER="90", DEBUG="true", ALLOWED_HOSTS="counts.example.com, x.test")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split(" ", 2) == ["90.0", "True", "['counts.example.com', 'x.test']\n"]


def test_defaults_are_an_hour_to_settle_no_debug_and_local_hosts():
    result = _load_settings(OCCUPANCY_SETTLE_AFTER="", DEBUG="", ALLOWED_HOSTS="")

    assert result.returncode == 0, result.stderr
    assert result.stdout == "3600.0 False ['127.0.0.1', 'localhost']\n"


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.production", "SECRET_KEY": "", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_refuse_to_start_without_a_secret_key():
    result = _manage("check")

    assert result.returncode != 0
    assert "SECRET_KEY must be set for production settings" in result.stderr


def test_production_settings_pass_the_deployment_checklist():
    key = "k3y-" + "x7Qz" * 15  # long and varied enough for Django's checks; not a real secret

    result = _manage("check", "--deploy", "--fail-level", "WARNING", SECRET_KEY=key, ALLOWED_HOSTS="counts.example.com")

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_settings_keep_debug_off_and_cookies_secure():
    code = (
        "import config.settings.production as s; "
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0, "
        "s.SECURE_SSL_REDIRECT)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT,
        env={**os.environ, "SECRET_KEY": "k3y-" + "x7Qz" * 15, "DEBUG": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "False True True True True\n"
