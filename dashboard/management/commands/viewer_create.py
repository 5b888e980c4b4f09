"""manage.py viewer_create <username>: a user who may look at the dashboard and read the API, and change nothing."""

import getpass
import secrets
import sys

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Create a view-only user (not staff) for the dashboard. Asks for the password twice at a terminal; "
        "elsewhere, or with --generate, makes one and prints it once."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--generate", action="store_true", help="Make a random password and print it.")

    def handle(self, *args, username: str, generate: bool, **options):
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            raise CommandError(f"A user named {username!r} exists already; change it in the admin.")
        user = User(username=username, is_staff=False, is_superuser=False)
        if generate or not sys.stdin.isatty():
            password = secrets.token_urlsafe(12)
        else:
            password = self._ask(user)
        user.set_password(password)
        user.save()
        self.stdout.write(f"Created {username!r}, who may look but not change anything.")
        if generate or not sys.stdin.isatty():
            self.stdout.write(f"Password (shown once): {password}")

    def _ask(self, user) -> str:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Password (again): "):
            raise CommandError("The two passwords differ; nothing was created.")
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages) + " Nothing was created.") from None
        return password
