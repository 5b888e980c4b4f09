from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = (
        "Print a read-only API token for a dashboard: it reads counts and the layout and can change nothing. "
        "Creates the (non-staff, password-less) user if needed; running it again replaces the token."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="a user name for the dashboard, e.g. lobby-screen")

    def handle(self, *args, name: str, **options):
        users = get_user_model()
        with transaction.atomic():
            user, created = users.objects.get_or_create(username=name, defaults={"is_staff": False})
            if not created and (user.is_staff or user.is_superuser):
                raise CommandError(f"{name} is a staff user; a dashboard token must belong to a user who is not staff.")
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
            Token.objects.filter(user=user).delete()
            token = Token.objects.create(user=user)
        self.stdout.write(token.key)
