"""What the browser tests share besides fixtures: where things are, the two screen sizes, and small helpers."""

import struct
from pathlib import Path

from django.conf import settings
from django.test import Client
from playwright.sync_api import BrowserContext

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; .ci/browser installs it. Nothing downloads a browser.
BUILD_DIR = Path(settings.BASE_DIR) / "build"  # git-ignored
SCREENSHOTS = BUILD_DIR / "screenshots"
PASSWORD = "correct horse battery staple 283"  # the test users' password
# Browser context options: a laptop, and a phone (is_mobile: the page's viewport meta tag counts, as on a phone).
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
WAIT_MS = 10_000  # the longest Playwright waits for anything; the live-update test sets its own, tighter, limit


def sign_in(context: BrowserContext, base_url: str, user) -> None:
    """Give the browser context a session of `user`, as signing in would: for tests about what comes after."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": base_url}])


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG file, from its header."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])
