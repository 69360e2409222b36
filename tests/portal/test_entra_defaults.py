"""`make run` (manage.py runall) turns on Entra sign-in against the emulator, unless configured."""

from __future__ import annotations

import pytest

from portal.management.commands.runall import entra_defaults
from portal.models import RoleMapping

URL = "https://127.0.0.1:8443"


def test_runall_points_entra_sign_in_at_the_emulator(monkeypatch):
    for name in ("ENTRA_CLIENT_ID", "ENTRA_TENANT_ID", "ENTRA_CLIENT_SECRET", "ENTRA_AUTHORITY_HOST"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)

    assert entra_defaults(URL) == {"ENTRA_CLIENT_ID": "goldsmith-portal",
                                   "ENTRA_TENANT_ID": "11111111-1111-1111-1111-111111111111",
                                   "ENTRA_CLIENT_SECRET": "emulator-portal-secret", "ENTRA_AUTHORITY_HOST": URL}


@pytest.mark.parametrize("name", ["ENTRA_CLIENT_ID", "ENTRA_AUTHORITY_HOST", "ENTRA_CLIENT_SECRET_FILE"])
def test_runall_leaves_an_operator_s_entra_settings_alone(monkeypatch, name):
    monkeypatch.setenv(name, "theirs")
    assert entra_defaults(URL) == {}


def test_seeddemo_creates_the_default_role_mappings(db):
    from builds.demo import seed_demo

    created = seed_demo()

    assert "role mapping Goldsmith.Security -> security" in created
    assert set(RoleMapping.objects.values_list("claim_value", flat=True)) == {
        "Goldsmith.Security", "Goldsmith.Auditor", "Goldsmith.Admin", "Goldsmith.Editor.web", "Goldsmith.Editor.data"}
