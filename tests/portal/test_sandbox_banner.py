"""The "sandbox" banner: every page says so when Azure is the emulator, and never against real Azure."""

import pytest

from portal.context_processors import sandbox

BANNER = 'role="status">Sandbox: Azure is emulated, time runs 20&nbsp;&times;</p>'


@pytest.mark.parametrize("url", ["/", "/login/"])
def test_it_shows_the_banner_when_azure_is_emulated(client, settings, bob, url):
    settings.AZURE_EMULATOR = True
    settings.GOLDSMITH_EMULATOR_TIME_SCALE = 20
    if url == "/":
        client.force_login(bob)
    response = client.get(url)
    assert response.status_code == 200
    assert BANNER in response.content.decode()


def test_it_shows_no_banner_against_real_azure(client, settings, bob):
    settings.AZURE_EMULATOR = False
    client.force_login(bob)
    response = client.get("/")
    assert response.status_code == 200
    assert "Sandbox:" not in response.content.decode()


def test_the_context_follows_the_settings(settings, rf):
    settings.AZURE_EMULATOR, settings.GOLDSMITH_EMULATOR_TIME_SCALE = True, 600
    assert sandbox(rf.get("/")) == {"sandbox_time_scale": 600}
    settings.AZURE_EMULATOR = False
    assert sandbox(rf.get("/")) == {"sandbox_time_scale": None}
