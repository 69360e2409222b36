"""portal.redact: the one function that hides secrets in events, pages and exports."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal import redact as redact_module
from portal.redact import MASK, might_contain_secret, redact, redact_text

SECRETS = [
    ("https://acct.blob.core.windows.net/c/s.sh?sv=2024-01-01&sig=abcDEF123%2B", "abcDEF123"),
    ("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0a2V5==;", "c2VjcmV0a2V5"),
    ("curl -H 'Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123'", "abcdefghijklmnopqrstuvwxyz0123"),
    ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     "dozjgNryP4J3jVmNHl0w5N"),
    ("export PASSWORD=hunter22", "hunter22"),
    ("New-LocalUser -Password 'S3cr3t!x'", "S3cr3t!x"),
    ("git clone https://user:ghp_abcdef123456@github.com/x/y", "ghp_abcdef123456"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "MIIEow"),
]


@pytest.mark.parametrize("text, secret", SECRETS)
def test_it_masks_each_kind_of_secret(text, secret):
    assert secret not in redact_text(text) and MASK in redact_text(text)
    assert might_contain_secret(text)


def test_secret_keys_are_masked_whole_in_documents():
    assert redact({"clientSecret": "x1", "nested": [{"api_key": "y2"}], "name": "web"}) == {
        "clientSecret": MASK, "nested": [{"api_key": MASK}], "name": "web"}


def test_plain_text_is_untouched():
    for text in ("ubuntu@1.2.0", "web/nginx", "build 1a2b3c4d of ubuntu@1.0.0", "sudo apt-get update"):
        assert redact_text(text) == text and not might_contain_secret(text)


def _full_redaction(text: str) -> str:
    """redact_text without its fast pre-check: every pattern, always."""
    for kind, pattern in redact_module._PATTERNS:
        if kind == "private key":
            text = pattern.sub(MASK, text)
        else:
            text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, text)
    return text


fragments = st.sampled_from([
    "sig=", "Sig=", "signature=", "AccountKey=", "SharedAccessSignature=", "Bearer ", "bearer\t", "eyJ", ".",
    "password", "PASSWD", "pwd", "secret", "client_secret", "api-key", "apikey", "TOKEN", ":", "=", " ", "'", '"',
    "https://", "http://", "user", "@", "host", "/", "?", "&", "-----BEGIN RSA PRIVATE KEY-----", "-Password ",
    "abcdefghijklmnopqrstu", "0123456789", "xyz", "\n", "-----END RSA PRIVATE KEY-----",
])


@settings(max_examples=600, deadline=None)
@given(st.lists(fragments | st.text(max_size=4), max_size=14).map("".join))
def test_the_fast_check_never_skips_text_a_pattern_would_change(text):
    if _full_redaction(text) != text:
        assert might_contain_secret(text), text
    assert redact_text(text) == _full_redaction(text)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=16) | st.sampled_from(["clientSecret", "API_KEY", "sas_token", "passwd"]),
                       st.text(min_size=1, max_size=8), max_size=4))
def test_the_fast_check_covers_secret_key_names(document):
    import json

    if redact(document) != document:
        assert might_contain_secret(json.dumps(document, ensure_ascii=False))


def test_case_folding_cannot_smuggle_a_secret_past_the_fast_check():
    text = "pa\u017f\u017fword=hunter22"  # long s: the pattern's IGNORECASE folds it to "s"
    assert "hunter22" not in redact_text(text)
    assert might_contain_secret(text)
