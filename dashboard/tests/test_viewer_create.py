"""manage.py viewer_create: a user who may look and change nothing."""

from io import StringIO
from unittest import mock

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def test_a_generated_password_is_shown_once_and_signs_the_new_viewer_in():
    out = StringIO()

    call_command("viewer_create", "vera", "--generate", stdout=out)

    password = out.getvalue().split("Password (shown once): ")[1].strip()
    vera = get_user_model().objects.get(username="vera")
    assert (vera.is_staff, vera.is_superuser, vera.is_active) == (False, False, True)
    assert authenticate(username="vera", password=password) == vera


def test_at_a_terminal_it_asks_for_the_password_twice_and_prints_none():
    out = StringIO()
    with (
        mock.patch("sys.stdin.isatty", return_value=True),
        mock.patch("getpass.getpass", side_effect=["a long enough passphrase", "a long enough passphrase"]),
    ):
        call_command("viewer_create", "vera", stdout=out)

    assert "Password" not in out.getvalue()
    assert authenticate(username="vera", password="a long enough passphrase") is not None


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        (["one passphrase here", "another passphrase"], "The two passwords differ"),
        (["short", "short"], "This password is too short"),
    ],
)
def test_a_password_typed_twice_differently_or_too_weak_creates_nothing(typed, says):
    with mock.patch("sys.stdin.isatty", return_value=True), mock.patch("getpass.getpass", side_effect=typed):
        with pytest.raises(CommandError, match=says):
            call_command("viewer_create", "vera")

    assert not get_user_model().objects.filter(username="vera").exists()


def test_an_existing_username_is_refused_and_left_as_it_was(django_user_model):
    sam = django_user_model.objects.create_user(username="sam", password="unchanged-2026", is_staff=True)

    with pytest.raises(CommandError, match="exists already"):
        call_command("viewer_create", "sam", "--generate")

    sam.refresh_from_db()
    assert sam.is_staff and sam.check_password("unchanged-2026")
