import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


@pytest.fixture
def staff_client(django_user_model) -> APIClient:
    """An API client authenticated with the DRF token of a staff user, Sam."""
    sam = django_user_model.objects.create_user(username="sam", is_staff=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=sam).key}")
    return client


@pytest.fixture
def reader_client(django_user_model) -> APIClient:
    """An API client authenticated with the DRF token of Rita, a signed-in user who is not staff."""
    rita = django_user_model.objects.create_user(username="rita")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=rita).key}")
    return client


@pytest.fixture
def staff_token(django_user_model) -> str:
    """The DRF token key of Stella, a staff user, for clients in other processes (a real server)."""
    stella = django_user_model.objects.create_user(username="stella", is_staff=True)
    return Token.objects.create(user=stella).key


@pytest.fixture
def gunicorn_server(transactional_db, tmp_path):
    """A real gunicorn server (3 sync workers) on the test database, stopped with all its workers after the test.

    Mark the test django_db(transaction=True): the server's processes see only what the test has committed.
    """

    from django.db import connection

    from occupancy.models import SpaceOccupancy
    from occupancy.tests.server import database_url, gunicorn, wait_until_disconnected

    url = database_url(connection.settings_dict)
    with gunicorn(database_url=url, log_path=tmp_path / "gunicorn.log", workers=3) as server:
        yield server
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            wait_until_disconnected(cursor)
    # The flush after the test empties tables in no fixed order. On SQLite, emptying the events first checks each
    # against the occupancy rows' unindexed event column: seconds for the thousands of rows these tests make.
    SpaceOccupancy.objects.all().delete()
