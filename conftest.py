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
