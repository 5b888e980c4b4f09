"""Fixtures of the browser suite: one uvicorn server (config.asgi, as `make run` serves it) and one headless
Chromium for the whole run, and for each test the sample building, its users and a fresh browser context that
records every error it sees.

The server runs on pytest-django's test database, so each test is transactional: what the test commits, the
server's workers see; pytest-django empties the tables after each test, and the next test loads the building
again. The server and the browser hold no data of their own, so they outlive the tests.
"""

import io
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from rest_framework.authtoken.models import Token

from browser.support import BUILD_DIR, CHROMIUM, DESKTOP, PASSWORD, SCREENSHOTS, WAIT_MS
from dpu.models import Dpu
from dpu.services import dpu_token_rotate
from occupancy.models import SpaceOccupancy
from occupancy.tests.server import Server, database_url, uvicorn, wait_until_disconnected
from spaces.models import Space

SERVER_LOG = BUILD_DIR / "browser" / "server.log"


@pytest.fixture(scope="session")
def server(django_db_setup, django_db_blocker) -> Iterator[Server]:
    """uvicorn on the test database, for the whole run: the pages, the API and GET /stream from one process, as
    `make run` serves them (under `make serve` gunicorn answers the rest and uvicorn the stream).

    Its log is build/browser/server.log: a page's 500 leaves its traceback there.
    """
    SERVER_LOG.parent.mkdir(parents=True, exist_ok=True)
    SERVER_LOG.write_bytes(b"")
    with uvicorn(database_url=database_url(connection.settings_dict), log_path=SERVER_LOG) as running:
        yield running
    if connection.vendor == "postgresql":
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            wait_until_disconnected(cursor)


@pytest.fixture(scope="session")
def playwright(server) -> Iterator[Playwright]:
    """Playwright's sync API, started after the server so that the server's environment stays as it was."""
    # While the sync API runs, its asyncio loop counts as running on this thread, and Django's ORM would refuse
    # every query of the tests ("You cannot call this from an async context"). The tests are plain sync code
    # on one thread: the check guards against nothing here.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as running:
            yield running


@pytest.fixture(scope="session")
def browser(playwright) -> Iterator[Browser]:
    """Headless Debian Chromium, for the whole run; each test gets its own context (cookies, storage)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"No Chromium at {CHROMIUM}: run `make test-browser` (.ci/browser installs Debian's chromium).")
    shutil.rmtree(SCREENSHOTS / "failures", ignore_errors=True)  # what an earlier run left
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM))
    yield launched
    launched.close()


@pytest.fixture(scope="session")
def password_hash() -> str:
    """The hash of PASSWORD, made once: hashing takes a good part of a second."""
    return make_password(PASSWORD)


@dataclass
class Building:
    """The sample building of `init_data` (spaces A and B, DPUs 283 and 423 facing A, the events of
    2018-02-24 to 2018-03-02), its users, and the tokens a test needs to call the API as another process would."""

    a: Space
    b: Space
    viewer: User  # Vera: signs in with PASSWORD, not staff
    staff: User  # Stan: signs in with PASSWORD, staff
    staff_token: str
    dpu_283_token: str


@pytest.fixture
def building(transactional_db, django_user_model, password_hash) -> Iterator[Building]:
    """The sample building and two users, committed, so that the server sees them."""
    call_command("init_data", stdout=io.StringIO())
    viewer = django_user_model.objects.create(username="vera", password=password_hash)
    staff = django_user_model.objects.create(username="stan", password=password_hash, is_staff=True)
    yield Building(
        a=Space.objects.get(name="A"),
        b=Space.objects.get(name="B"),
        viewer=viewer,
        staff=staff,
        staff_token=Token.objects.create(user=staff).key,
        dpu_283_token=dpu_token_rotate(dpu=Dpu.objects.get(serial=283)),
    )
    # The flush after the test empties tables in no fixed order. On SQLite, emptying the events first checks each
    # against the occupancy rows' unindexed event column: slow for the rows init_data makes.
    SpaceOccupancy.objects.all().delete()


@dataclass
class Problems:
    """Everything that went wrong in a browser context: console errors, uncaught exceptions, failed requests
    and answers of 400 or more."""

    seen: list[str] = field(default_factory=list)
    watching: bool = True

    def watch(self, context: BrowserContext) -> None:
        context.on("console", self._console)
        context.on("weberror", lambda error: self._add(f"uncaught {error.error}"))
        context.on("requestfailed", self._request_failed)
        context.on("response", self._response)

    def _add(self, problem: str) -> None:
        if self.watching:
            self.seen.append(problem)

    def _console(self, message) -> None:
        if message.type == "error":
            self._add(f"console error on {message.page.url if message.page else '?'}: {message.text}")

    def _request_failed(self, request) -> None:
        # A poll in flight, or the stream open, when the page navigates away is cancelled by the browser: that is
        # no failure.
        if request.failure == "net::ERR_ABORTED" and request.resource_type in ("fetch", "xhr", "eventsource"):
            return
        self._add(f"request failed: {request.method} {request.url}: {request.failure}")

    def _response(self, response) -> None:
        if response.status >= 400:
            self._add(f"{response.status} for {response.request.method} {response.url}")


@pytest.fixture
def problems() -> Problems:
    return Problems()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so that a fixture can tell whether its test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def new_context(request, browser, server, building, problems) -> Iterator[Callable[..., BrowserContext]]:
    """Make browser contexts on the server (signed out; Playwright's context options, e.g. support.PHONE). The
    test fails on any error the browser saw in them (see Problems). When the test fails, each page it left open
    is saved as build/screenshots/failures/<test>-<n>.png."""
    made = []

    def make(**options) -> BrowserContext:
        context = browser.new_context(base_url=server.url, **options)
        context.set_default_timeout(WAIT_MS)
        problems.watch(context)
        made.append(context)
        return context

    yield make
    problems.watching = False  # closing pages cancels their polls
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        _save_pages(request.node.name, [page for context in made for page in context.pages])
    for context in made:
        context.close()
    assert problems.seen == [], f"the browser saw errors (the server's log: {SERVER_LOG}):\n" + "\n".join(problems.seen)


@pytest.fixture
def context(new_context) -> BrowserContext:
    """A desktop-sized (1280x800) browser context, signed out."""
    return new_context(**DESKTOP)


@pytest.fixture
def page(context) -> Page:
    return context.new_page()


def _save_pages(test_name: str, pages: list[Page]) -> None:
    folder = SCREENSHOTS / "failures"
    folder.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", test_name)
    for number, page in enumerate(pages, start=1):
        try:
            page.screenshot(path=folder / f"{name}-{number}.png", full_page=True, timeout=5_000)
        except PlaywrightError:  # a page that crashed or never loaded: the test's own failure says more
            pass
