"""portal.redact: the one function that hides secrets in events, pages and exports."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal import redact as redact_module
from portal.redact import MASK, might_contain_secret, redact, redact_log_line, redact_text, secret_env_name

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


@settings(max_examples=300, deadline=None)
@given(st.lists(fragments | st.text(alphabet=st.characters(max_codepoint=127), max_size=4), max_size=14).map("".join))
def test_the_case_classes_form_matches_like_ignorecase_on_ascii(text):
    """PostgreSQL gets SECRET_HINT as [Xx] classes; on ASCII that must match exactly when re.I does."""
    import re

    from portal.redact import SECRET_HINT, case_classes

    assert (re.search(case_classes(SECRET_HINT), text) is not None) == might_contain_secret(text)


def test_a_bare_password_word_is_not_a_hint():
    assert not might_contain_secret('{"method": "password", "reason": "invalid credentials"}')
    assert might_contain_secret('{"password": "x"}') and might_contain_secret("Password := 1")


@settings(max_examples=300, deadline=None)
@given(st.lists(fragments | st.text(max_size=4), max_size=14).map("".join))
def test_redaction_is_idempotent(text):
    """Exports skip events stored under the current rules because redacting twice changes nothing."""
    assert redact_text(redact_text(text)) == redact_text(text)
    document = {"password": text, "note": text, "list": [text]}
    assert redact(redact(document)) == redact(document)


# RULES_VERSION -> fingerprint of the rules it names. Changing a pattern, the secret key names,
# redact() or the mask changes the fingerprint: then bump RULES_VERSION in portal/redact.py and
# add its fingerprint here, so that exports screen again the events stored under the old rules.
FINGERPRINTS = {1: "322a078880a913f621ff99ac892761f27bf81f4c5323a5d3d57e462e5322760c"}


def test_the_rules_version_names_these_rules():
    import hashlib
    import inspect

    from portal import redact as rules

    document = (repr([(kind, pattern.pattern, pattern.flags) for kind, pattern in rules._PATTERNS])
                + inspect.getsource(rules.redact) + inspect.getsource(rules._secret_key) + rules.MASK)
    fingerprint = hashlib.sha256(document.encode()).hexdigest()
    assert FINGERPRINTS.get(rules.RULES_VERSION) == fingerprint, (
        f"the redaction rules changed: bump RULES_VERSION (now {rules.RULES_VERSION}) and record {fingerprint}")


# Environment variables in logs: names that look like secrets are masked, the rest are not. (PWD=
# is masked whatever the rule says: redact_text's finder reads it as a connection string's Pwd=.)
ENV_NAMES = {
    "DB_PASS": True, "SQL_PASSWORD": True, "MYPASSWORD": True, "DB_PWD": True, "CLIENT_SECRET": True,
    "AWS_SECRET_ACCESS_KEY": True, "API_KEY": True, "APIKEY": True, "STORAGE_KEY": True, "GITHUB_TOKEN": True,
    "TOKEN": True, "ADO_PAT": True, "PAT": True, "AZURE_STORAGE_CONNECTION_STRING": True, "SAS": True,
    "BLOB_SAS_URL": True, "ARM_CLIENT_CREDENTIAL": True, "GPG_PASSPHRASE": True, "ApiKey": True,
    "CERT_PATH": False, "CERT_THUMBPRINT_FILE": False, "AUTH_METHOD": False, "AUTHORITY_HOST": False,
    "KEY_VAULT_NAME": False, "SSH_KEY_PATH": False, "BYPASS_PROXY": False, "COMPASS_DIR": False,
    "PATH": False, "PATCH_LEVEL": False, "MONKEY": False, "HOME": False,
}


@pytest.mark.parametrize(("name", "masked"), ENV_NAMES.items())
def test_log_lines_mask_only_environment_variables_named_like_secrets(name, masked):
    assert secret_env_name(name) is masked
    for line in (f"export {name}=value0042", f"{name}=value0042 ./run.sh", f'$env:{name} = "value0042"'):
        assert ("value0042" not in redact_log_line(line)) is masked, line
