"""Local, embedded use: `make run`, `make test`. Safe defaults, nothing to configure."""

import os

from django.core.management.utils import get_random_secret_key

from config.settings.base import *  # noqa: F403
from config.settings.base import BASE_DIR


def _local_secret_key() -> str:
    # A key made on first use and kept beside the code, so that local sessions survive restarts and every
    # local worker signs with the same key; nothing secret is ever committed.
    path = BASE_DIR / ".secret_key"
    if not path.exists():
        path.write_text(get_random_secret_key())
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = os.environ.get("SECRET_KEY") or _local_secret_key()
