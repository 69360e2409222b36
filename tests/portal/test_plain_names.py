"""Names on the floor (departments, API tokens) refuse invisible characters like catalog names do.

A token named "nightly\u202e" or a department "Web\u200bPlatform" would read as something else in
the profile, the admin and the audit trail; portal/text.py is the one rule for both layers.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from portal.models import ApiToken, Department

SNEAKY = ["pipe\u202eline", "pipe\u200bline", "pipe\x07line", "pipe\u2066line"]


@pytest.mark.parametrize("name", SNEAKY)
def test_it_refuses_a_token_name_with_an_invisible_character(client, bob, name):
    client.force_login(bob)
    response = client.post(reverse("portal:token-create"), {"name": name, "expires": "30"})
    assert response.status_code in (200, 400, 422)
    assert "invisible" in response.content.decode()
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("name", SNEAKY)
def test_it_refuses_a_department_name_with_an_invisible_character(db, name):
    department = Department(name=name, slug="sneaky")
    with pytest.raises(ValidationError) as caught:
        department.full_clean()
    assert caught.value.error_dict["name"][0].code == "name.invisible-character"


def test_it_accepts_plain_names_in_any_script(client, bob):
    client.force_login(bob)
    client.post(reverse("portal:token-create"), {"name": "Pipeline für Bäckerei, 夜間", "expires": "30"})
    assert ApiToken.objects.filter(name="Pipeline für Bäckerei, 夜間").exists()
    Department(name="Données & Science", slug="donnees").full_clean()
