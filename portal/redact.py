"""Finding and hiding secrets: one function for events, pages, logs and exports.

SAS tokens in URLs, passwords, bearer tokens, private keys and connection-string keys must
never be stored in the audit trail, rendered or exported. The same patterns let the
validation rules refuse inline scripts that carry a secret, naming the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MASK = "[REDACTED]"

# (kind, pattern); the first group, when present, is the part to keep before the secret.
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)")),
    ("SAS token", re.compile(r"([?&](?:sig|signature)=)[^&\s\"']+", re.IGNORECASE)),
    ("storage key", re.compile(r"((?:AccountKey|SharedAccessKey|SharedAccessSignature)=)[^;\s\"']+", re.IGNORECASE)),
    ("bearer token", re.compile(r"(\bBearer\s+)[A-Za-z0-9\-._~+/]{16,}=*", re.IGNORECASE)),
    ("JSON web token", re.compile(r"()\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("password", re.compile(
        r"((?:password|passwd|pwd|secret|client_secret|api[_-]?key|token)\s*[:=]\s*[\"']?)(?!\$|%|\[REDACTED)"
        r"[^\s\"';&]{4,}", re.IGNORECASE)),
    ("password", re.compile(r"(-(?:Password|Secret)\s+[\"']?)(?!\$)[^\s\"']{4,}", re.IGNORECASE)),
    ("credentials in URL", re.compile(r"(https?://[^/\s:@]+:)[^@\s/]+(?=@)", re.IGNORECASE)),
]


# Every secret the patterns above (and the secret key names below) can find contains one of
# these words, in some case. Text without any of them is returned untouched after a few
# substring scans, which keeps exports of millions of events fast. Keep the list a superset
# when adding a pattern: tests/portal/test_redact.py checks it against every pattern.
SECRET_HINTS = ("key", "sig", "bearer", "eyj", "pass", "pwd", "secret", "token", "://")


def might_contain_secret(text: str) -> bool:
    """False when text certainly holds nothing redact() would change (a fast pre-check).

    casefold() rather than lower(): the patterns ignore case the way `re` does, which also
    folds characters such as the long s (U+017F) and the Kelvin sign into ASCII letters.
    """
    folded = text.casefold()
    return any(hint in folded for hint in SECRET_HINTS)


@dataclass(frozen=True)
class Finding:
    kind: str
    line: int  # 1-based line number within the scanned text


def find_secrets(text: str) -> list[Finding]:
    """Secret-looking content in text, one finding per line and kind."""
    findings: list[Finding] = []
    for number, line in enumerate(text.splitlines() or [text], start=1):
        for kind, pattern in _PATTERNS:
            if pattern.search(line) and Finding(kind, number) not in findings:
                findings.append(Finding(kind, number))
    return findings


def redact_text(text: str) -> str:
    if not might_contain_secret(text):
        return text
    for kind, pattern in _PATTERNS:
        if kind == "private key":
            text = pattern.sub(MASK, text)
        else:
            text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, text)
    return text


def redact(value: Any) -> Any:
    """A copy of value (str, list, dict, nested) with every secret replaced by [REDACTED].

    Keys that name a secret (clientSecret, password, ...) have their whole value masked.
    """
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: MASK if _secret_key(key) and value[key] not in (None, "") else redact(item)
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(item) for item in value]
    return value


def _secret_key(key: Any) -> bool:
    return isinstance(key, str) and re.fullmatch(
        r"(?i).*(password|passwd|secret|private_?key|access_?token|refresh_?token|sas_?token|api_?key)", key) is not None
