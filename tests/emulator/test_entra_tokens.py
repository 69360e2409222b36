"""Entra ID's discovery, keys and client-credentials tokens, and ARM's checks of bearer tokens.

Clients: azure-identity's ClientSecretCredential (what the worker uses) and azure-mgmt-compute;
PyJWT checks signatures against the published JWKS.
"""

from __future__ import annotations

import jwt
import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential

from tests.support.emulator import ARM_SCOPE, TENANT_ID

WORKER_OID = "00000000-0000-4000-9000-000000000001"


def session(ca_path) -> requests.Session:
    """A requests session trusting the emulator's CA. trust_env=False, because requests lets
    REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE from the environment win over Session.verify."""
    http = requests.Session()
    http.verify = str(ca_path)
    http.trust_env = False
    return http


def jwks(emulator) -> jwt.PyJWKSet:
    http = session(emulator.ca_path)
    config = http.get(f"{emulator.base_url}/{TENANT_ID}/v2.0/.well-known/openid-configuration").json()
    return jwt.PyJWKSet.from_dict(http.get(config["jwks_uri"]).json())


def verified(emulator, token: str, audience: str) -> dict:
    kid = jwt.get_unverified_header(token)["kid"]
    return jwt.decode(token, jwks(emulator)[kid].key, algorithms=["RS256"], audience=audience)


class StaticToken:
    """A credential that hands the SDK a token of the test's choosing."""

    def __init__(self, token: str):
        self.token = token

    def get_token(self, *scopes, **kwargs) -> AccessToken:
        return AccessToken(self.token, 4102444800)


def test_discovery_announces_the_emulator_endpoints(emulator):
    http = session(emulator.ca_path)
    base = emulator.base_url

    v2 = http.get(f"{base}/{TENANT_ID}/v2.0/.well-known/openid-configuration").json()
    v1 = http.get(f"{base}/{TENANT_ID}/.well-known/openid-configuration").json()
    common = http.get(f"{base}/common/v2.0/.well-known/openid-configuration").json()

    assert v2["issuer"] == f"{base}/{TENANT_ID}/v2.0"
    assert v2["token_endpoint"] == f"{base}/{TENANT_ID}/oauth2/v2.0/token"
    assert v2["authorization_endpoint"] == f"{base}/{TENANT_ID}/oauth2/v2.0/authorize"
    assert v2["jwks_uri"] == f"{base}/{TENANT_ID}/discovery/v2.0/keys"
    assert v2["end_session_endpoint"] == f"{base}/{TENANT_ID}/oauth2/v2.0/logout"
    assert "form_post" in v2["response_modes_supported"]
    assert v1["issuer"] == f"https://sts.windows.net/{TENANT_ID}/"
    assert common["issuer"] == f"{base}/{{tenantid}}/v2.0"
    keys = http.get(v2["jwks_uri"]).json()["keys"]
    assert [(key["kty"], key["use"], key["kid"] == key["x5t"]) for key in keys] == [("RSA", "sig", True)]


def test_client_secret_credential_gets_an_arm_token(emulator):
    token = emulator.credential().get_token(ARM_SCOPE)

    claims = verified(emulator, token.token, "https://management.azure.com")
    assert claims["iss"] == f"https://sts.windows.net/{TENANT_ID}/"
    assert (claims["appid"], claims["oid"], claims["tid"], claims["idtyp"]) == (
        "goldsmith-worker", WORKER_OID, TENANT_ID, "app")
    assert claims["exp"] - claims["iat"] >= 3500
    assert token.expires_on == claims["exp"] or abs(token.expires_on - claims["exp"]) < 5


def test_any_client_and_secret_get_a_token_by_default(emulator):
    credential = ClientSecretCredential(TENANT_ID, "some-ci-pipeline", "whatever", authority=emulator.base_url,
                                        disable_instance_discovery=True, connection_verify=str(emulator.ca_path))

    claims = jwt.decode(credential.get_token(ARM_SCOPE).token, options={"verify_signature": False})

    assert claims["appid"] == "some-ci-pipeline"
    assert list(emulator.compute_client(credential).galleries.list_by_resource_group("goldsmith-galleries"))


def test_client_credentials_need_a_default_scope(emulator):
    with pytest.raises(ClientAuthenticationError) as caught:
        emulator.credential().get_token("https://management.azure.com/user_impersonation")

    assert "AADSTS1002012" in str(caught.value)


def test_the_token_endpoint_answers_errors_in_entra_shape(emulator):
    http = session(emulator.ca_path)

    response = http.post(f"{emulator.base_url}/{TENANT_ID}/oauth2/v2.0/token",
                         data={"client_id": "goldsmith-worker", "client_secret": "emulator-secret"})

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_request"
    assert body["error_codes"] == [900144]
    assert body["error_description"].startswith(
        "AADSTS900144: The request body must contain the following parameter: 'grant_type'.")
    assert {"timestamp", "trace_id", "correlation_id"} <= set(body)


def test_arm_accepts_the_token_and_refuses_bad_ones(emulator):
    expired = emulator.control("POST", "entra/tokens", {"exp_offset": -3600}, expect=201).json()["access_token"]
    graph = emulator.control("POST", "entra/tokens", {"audience": "https://graph.microsoft.com"},
                             expect=201).json()["access_token"]

    def call(token: str):
        return list(emulator.compute_client(StaticToken(token)).images.list())

    assert call(emulator.credential().get_token(ARM_SCOPE).token)
    for token, code in [(expired, "ExpiredAuthenticationToken"), (graph, "InvalidAuthenticationTokenAudience"),
                        ("not-a-jwt", "InvalidAuthenticationToken"),
                        (expired[:-4] + "AAAA", "InvalidAuthenticationToken")]:
        with pytest.raises(ClientAuthenticationError) as caught:
            call(token)
        assert caught.value.status_code == 401
        assert caught.value.error.code == code
        assert caught.value.response.headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")


def test_arm_messages_name_the_expiry_and_the_audience(emulator):
    expired = emulator.control("POST", "entra/tokens", {"exp_offset": -3600}, expect=201).json()["access_token"]
    graph = emulator.control("POST", "entra/tokens", {"audience": "https://graph.microsoft.com"},
                             expect=201).json()["access_token"]
    images = lambda token: emulator.compute_client(StaticToken(token)).images  # noqa: E731

    with pytest.raises(ClientAuthenticationError) as old:
        list(images(expired).list())
    with pytest.raises(ClientAuthenticationError) as wrong:
        list(images(graph).list())

    assert old.value.error.message.startswith("The access token expiry UTC time '")
    assert "is earlier than current UTC time" in old.value.error.message
    assert wrong.value.error.message.startswith(
        "The access token has been obtained for wrong audience or resource 'https://graph.microsoft.com'.")


def test_arm_needs_the_authorization_header(emulator):
    response = session(emulator.ca_path).get(
        f"{emulator.base_url}/subscriptions/22222222-2222-2222-2222-222222222222/resourcegroups",
        params={"api-version": "2025-04-01"})

    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "AuthenticationFailed", "message": "Authentication failed. The 'Authorization' header is missing.",
        "details": []}


def test_rotated_keys_keep_old_tokens_valid(emulator):
    old = emulator.credential().get_token(ARM_SCOPE).token

    rotated = emulator.control("POST", "entra/rotate-keys").json()
    new = emulator.control("POST", "entra/tokens", {}, expect=201).json()["access_token"]

    assert len(rotated["kids"]) == 2
    assert jwt.get_unverified_header(new)["kid"] == rotated["kid"] != jwt.get_unverified_header(old)["kid"]
    assert list(emulator.compute_client(StaticToken(old)).images.list())
    assert list(emulator.compute_client(StaticToken(new)).images.list())


def test_the_v1_token_endpoint_takes_a_resource(emulator):
    response = session(emulator.ca_path).post(
        f"{emulator.base_url}/{TENANT_ID}/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "goldsmith-worker", "client_secret": "emulator-secret",
              "resource": "https://management.core.windows.net/"})

    assert response.status_code == 200
    claims = verified(emulator, response.json()["access_token"], "https://management.core.windows.net")
    assert claims["ver"] == "1.0"
