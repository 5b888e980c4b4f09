"""Each DPU has its own secret token: made with the DPU, shown once, stored only as a hash, rotatable."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from dpu.models import Dpu
from dpu.services import dpu_create
from dpu.tests.factories import DpuFactory

pytestmark = pytest.mark.django_db


def test_a_new_dpu_gets_a_token_kept_only_as_its_hash():
    dpu, token = dpu_create(serial=283)

    stored = Dpu.objects.get(pk=dpu.pk)
    assert token.startswith("dpu_") and len(token) > 40
    assert stored.token_hash == Dpu.hash_token(token)
    assert token not in stored.token_hash


def test_every_dpu_gets_a_different_token():
    tokens = {dpu_create(serial=serial)[1] for serial in (283, 423, 512)}

    assert len(tokens) == 3


def test_dpu_token_command_prints_a_new_token_and_the_old_one_stops_matching():
    dpu, old = dpu_create(serial=283)
    out = StringIO()

    call_command("dpu_token", "283", stdout=out)

    new = out.getvalue().strip()
    dpu.refresh_from_db()
    assert new.startswith("dpu_") and new != old
    assert dpu.token_hash == Dpu.hash_token(new)


def test_dpu_token_command_names_an_unknown_serial():
    DpuFactory(serial=283)

    with pytest.raises(CommandError, match="No DPU with serial 999"):
        call_command("dpu_token", "999", stdout=StringIO())


@pytest.fixture
def admin_client_ada(client, django_user_model):
    """The Django test client signed in as Ada, a superuser."""
    ada = django_user_model.objects.create_superuser(username="ada", email="ada@example.com", password=None)
    client.force_login(ada)
    return client


def test_admin_shows_a_new_dpus_token_once(admin_client_ada):
    response = admin_client_ada.post(
        "/admin/dpu/dpu/add/",
        {
            "serial": 512,
            "assignments-TOTAL_FORMS": 0,
            "assignments-INITIAL_FORMS": 0,
            "assignments-MIN_NUM_FORMS": 0,
            "assignments-MAX_NUM_FORMS": 1000,
        },
        follow=True,
    )

    dpu = Dpu.objects.get(serial=512)
    shown = [str(m) for m in response.context["messages"] if "shown only now" in str(m)]
    assert len(shown) == 1
    token = shown[0].rsplit(" ", 1)[1]
    assert dpu.token_hash == Dpu.hash_token(token)
    assert token not in admin_client_ada.get(f"/admin/dpu/dpu/{dpu.pk}/change/").content.decode()


def test_admin_action_rotates_tokens(admin_client_ada):
    dpu, old = dpu_create(serial=283)

    response = admin_client_ada.post(
        "/admin/dpu/dpu/", {"action": "rotate_tokens", "_selected_action": [dpu.pk]}, follow=True
    )

    dpu.refresh_from_db()
    shown = [str(m) for m in response.context["messages"] if "shown only now" in str(m)]
    assert len(shown) == 1
    assert dpu.token_hash == Dpu.hash_token(shown[0].rsplit(" ", 1)[1])
    assert dpu.token_hash != Dpu.hash_token(old)
