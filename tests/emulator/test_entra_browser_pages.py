"""`--browser-http-port`: Entra ID's sign-in and sign-out pages on plain-HTTP loopback.

A browser treats http://127.0.0.1 as a secure context, so it reaches those pages without
trusting the emulator's private CA. Discovery announces them there; the token endpoint, the
keys and discovery itself stay on HTTPS, and the plain-HTTP listener answers nothing else.
"""

from __future__ import annotations

from email.message import Message
from urllib.parse import urlsplit

import msal
import pytest
import requests

from emulator.__main__ import main
from emulator.app import Config, build_app
from emulator.core.http import Request
from tests.support.emulator import TENANT_ID, EmulatorProcess

BROWSER = "http://127.0.0.1:8444"


def get(app, url: str):
    parts = urlsplit(url)
    request = Request.build("GET", parts.path + (f"?{parts.query}" if parts.query else ""), Message(), b"",
                            f"{parts.scheme}://{parts.netloc}")
    return app.handle(request)


@pytest.mark.parametrize("path", [f"/{TENANT_ID}/v2.0/.well-known/openid-configuration",
                                  f"/{TENANT_ID}/.well-known/openid-configuration"])
def test_discovery_announces_the_browser_pages_on_the_http_listener(path):
    app = build_app(config=Config(entra_browser_url=BROWSER))

    document = get(app, "https://127.0.0.1:8443" + path).body

    assert document["authorization_endpoint"] == f"{BROWSER}/{TENANT_ID}/oauth2/v2.0/authorize"
    assert document["end_session_endpoint"] == f"{BROWSER}/{TENANT_ID}/oauth2/v2.0/logout"
    assert document["token_endpoint"].startswith(f"https://127.0.0.1:8443/{TENANT_ID}/oauth2/")
    assert document["jwks_uri"].startswith(f"https://127.0.0.1:8443/{TENANT_ID}/discovery/")


def test_without_the_flag_every_endpoint_stays_on_https():
    app = build_app()

    document = get(app, f"https://127.0.0.1:8443/{TENANT_ID}/v2.0/.well-known/openid-configuration").body

    assert document["authorization_endpoint"] == f"https://127.0.0.1:8443/{TENANT_ID}/oauth2/v2.0/authorize"
    assert document["end_session_endpoint"] == f"https://127.0.0.1:8443/{TENANT_ID}/oauth2/v2.0/logout"


def test_the_issuer_and_the_token_endpoint_do_not_move():
    plain = get(build_app(), f"https://127.0.0.1:8443/{TENANT_ID}/v2.0/.well-known/openid-configuration").body
    flagged = get(build_app(config=Config(entra_browser_url=BROWSER)),
                  f"https://127.0.0.1:8443/{TENANT_ID}/v2.0/.well-known/openid-configuration").body

    moved = {name for name in plain if plain[name] != flagged[name]}

    assert moved == {"authorization_endpoint", "end_session_endpoint"}


@pytest.mark.parametrize("path", [
    f"/{TENANT_ID}/v2.0/.well-known/openid-configuration",
    f"/{TENANT_ID}/discovery/v2.0/keys",
    "/_emulator/users",
    "/subscriptions/22222222-2222-2222-2222-222222222222/resourcegroups?api-version=2021-04-01",
])
def test_the_http_listener_serves_nothing_but_the_browser_pages(path):
    app = build_app(config=Config(entra_browser_url=BROWSER))

    response = get(app, BROWSER + path)

    assert response.status == 404
    assert "served over plain HTTP" in response.body["error"]["message"]


def test_the_http_listener_serves_the_sign_in_page():
    app = build_app(config=Config(entra_browser_url=BROWSER))

    response = get(app, f"{BROWSER}/{TENANT_ID}/oauth2/v2.0/authorize?client_id=goldsmith-portal"
                        "&redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2Fauth%2Fentra%2Fcallback%2F&response_type=code")

    assert response.status == 200
    assert "Sign in as" in response.body


def test_it_refuses_a_plain_http_listener_off_loopback(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--host", "0.0.0.0", "--port", "0", "--browser-http-port", "0"])

    assert exit_.value.code == 2
    assert "needs a loopback --host" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")
def test_msal_sends_the_browser_to_the_http_page_and_redeems_over_https(tmp_path):
    process = EmulatorProcess(tmp_path, extra_args=("--browser-http-port", "0")).start()
    try:
        browser_url = next(line.split(" on ")[1].split()[0] for line in process.output if "for browsers on" in line)
        http = requests.Session()
        http.verify = str(process.ca_path)
        http.trust_env = False
        app = msal.ConfidentialClientApplication(
            "goldsmith-portal", client_credential="emulator-portal-secret",
            authority=f"{process.base_url}/{TENANT_ID}", instance_discovery=False, http_client=http)

        flow = app.initiate_auth_code_flow([], redirect_uri="http://127.0.0.1:8000/auth/entra/callback/")
        assert flow["auth_uri"].startswith(f"{browser_url}/{TENANT_ID}/oauth2/v2.0/authorize?")
        page = requests.post(flow["auth_uri"], data={"username": "alice@contoso.example"}, allow_redirects=False,
                             timeout=10)
        assert page.status_code == 302
        query = dict(item.split("=", 1) for item in urlsplit(page.headers["Location"]).query.split("&"))
        result = app.acquire_token_by_auth_code_flow(flow, {key: requests.utils.unquote(value)
                                                            for key, value in query.items()})

        assert result["id_token_claims"]["iss"] == f"{process.base_url}/{TENANT_ID}/v2.0"
        assert result["id_token_claims"]["roles"] == ["Goldsmith.Security"]
        assert requests.get(f"{browser_url}/{TENANT_ID}/discovery/v2.0/keys", timeout=10).status_code == 404
    finally:
        process.stop()
