"""--strict-auth: only the seeded principals, users, tenants and redirect URIs get through.

A separate emulator process (the session one runs in the default, accept-anything mode).
"""

from __future__ import annotations

import msal
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential

from tests.support.emulator import ARM_SCOPE, TENANT_ID, EmulatorProcess

pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")


def session(process) -> requests.Session:
    http = requests.Session()
    http.verify = str(process.ca_path)
    http.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would otherwise win over verify
    return http


@pytest.fixture(scope="module")
def strict_emulator(tmp_path_factory):
    process = EmulatorProcess(tmp_path_factory.mktemp("strict"), extra_args=("--strict-auth",)).start()
    yield process
    process.stop()


def strict_credential(process, client_id: str, secret: str) -> ClientSecretCredential:
    return ClientSecretCredential(TENANT_ID, client_id, secret, authority=process.base_url,
                                  disable_instance_discovery=True, connection_verify=str(process.ca_path))


def test_strict_mode_accepts_only_seeded_principals(strict_emulator):
    assert strict_credential(strict_emulator, "goldsmith-worker", "emulator-secret").get_token(ARM_SCOPE).token

    with pytest.raises(ClientAuthenticationError) as wrong_secret:
        strict_credential(strict_emulator, "goldsmith-worker", "guess").get_token(ARM_SCOPE)
    with pytest.raises(ClientAuthenticationError) as unknown:
        strict_credential(strict_emulator, "stranger", "emulator-secret").get_token(ARM_SCOPE)

    assert "AADSTS7000215" in str(wrong_secret.value)
    assert "AADSTS700016" in str(unknown.value)


def test_strict_mode_refuses_unknown_tenants(strict_emulator):
    credential = ClientSecretCredential("33333333-3333-3333-3333-333333333333", "goldsmith-worker", "emulator-secret",
                                        authority=strict_emulator.base_url, disable_instance_discovery=True,
                                        connection_verify=str(strict_emulator.ca_path))

    with pytest.raises(ClientAuthenticationError) as caught:
        credential.get_token(ARM_SCOPE)
    discovery = session(strict_emulator).get(
        f"{strict_emulator.base_url}/33333333-3333-3333-3333-333333333333/v2.0/.well-known/openid-configuration")

    # As with Entra, the discovery document is refused first, and msal reports that.
    assert "Unable to get authority configuration" in str(caught.value)
    assert discovery.status_code == 400
    assert discovery.json()["error_codes"] == [90002]


def portal_flow(process, redirect_uri: str) -> dict:
    app = msal.ConfidentialClientApplication("goldsmith-portal", client_credential="emulator-portal-secret",
                                             authority=f"{process.base_url}/{TENANT_ID}", instance_discovery=False,
                                             http_client=session(process))
    return app.initiate_auth_code_flow([], redirect_uri=redirect_uri)


def test_strict_mode_offers_only_seeded_users(strict_emulator):
    page = session(strict_emulator).get(portal_flow(strict_emulator, "http://localhost:8000/auth/callback")["auth_uri"])

    assert page.status_code == 200
    assert "alice@contoso.example" in page.text
    assert "Another account" not in page.text


def test_strict_mode_refuses_unregistered_redirect_uris(strict_emulator):
    registered = session(strict_emulator).get(portal_flow(strict_emulator, "http://127.0.0.1:9999/elsewhere")["auth_uri"])
    foreign = session(strict_emulator).get(portal_flow(strict_emulator, "https://evil.example/callback")["auth_uri"])

    assert registered.status_code == 200  # loopback URIs are accepted on any port and path
    assert foreign.status_code == 400
    assert "AADSTS50011" in foreign.text
