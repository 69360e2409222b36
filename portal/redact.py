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
# Bump whenever the rules below change (a test fingerprints them): audit events record the
# version they were stored under, and exports screen again every event stored under an older one.
RULES_VERSION = 1

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


# Anything the patterns above (or the secret key names below) would change matches this,
# ignoring case. Text that does not is returned untouched after one scan. It is written in
# the syntax Python's `re` and PostgreSQL's regular expressions share, so the audit export
# can have PostgreSQL apply it while it writes (portal/audit_export.py). Keep it a superset
# when adding a pattern: tests/portal/test_redact.py checks it against every pattern. A bare
# "password" is not enough: it only matters before ":" or "=" (an assignment or a JSON key)
# or after "-" (a PowerShell parameter), and logins record {"method": "password"}.
SECRET_HINT = r'key|sig|bearer|eyj|pwd|secret|token|://|passw(or)?d[\s"]*[:=]|-passw'
_HINT = re.compile(SECRET_HINT, re.IGNORECASE)


def might_contain_secret(text: str) -> bool:
    """False when text certainly holds nothing redact() would change (a fast pre-check).

    IGNORECASE folds the way the patterns do, including characters such as the long s
    (U+017F) and the Kelvin sign, which match ASCII letters.
    """
    return _HINT.search(text) is not None


def case_classes(pattern: str) -> str:
    """`pattern` with every ASCII letter outside brackets and escapes written as [Xx]: the same
    match, case-insensitive, for engines asked to match case-sensitively (PostgreSQL's ~ on
    text in the C collation is several times faster than ~* or lower())."""
    out, index, in_brackets = [], 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            out.append(pattern[index:index + 2])
            index += 2
            continue
        if char == "[":
            in_brackets = True
        elif char == "]":
            in_brackets = False
        out.append(f"[{char.upper()}{char.lower()}]" if char.isascii() and char.isalpha() and not in_brackets
                   else char)
        index += 1
    return "".join(out)


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


# --- Logs: the same finder, plus secret-looking environment variables, line by line on streams --------

# NAME=value (shell, env dumps), export NAME=value, set NAME=value, $env:NAME = "value" (PowerShell)
# where NAME looks like it holds a secret. Names are judged by their words (split at underscores
# and camelCase humps), not by substrings: DB_PASS, CLIENT_SECRET, AWS_SECRET_ACCESS_KEY, ADO_PAT,
# GITHUB_TOKEN, SQL_PASSWORD, STORAGE_CONNECTION_STRING and $env:ApiKey are masked; CERT_PATH,
# AUTH_METHOD, KEY_VAULT_NAME, SSH_KEY_PATH and BYPASS_PROXY are not.
_ENV_ASSIGNMENT = re.compile(
    r"((?:\$env:)?\b([A-Za-z_][A-Za-z0-9_]*)\s*=\s*[\"']?)(?!\[REDACTED)(?!\$)[^\s\"']+", re.IGNORECASE)
# A superset of the secret names below, so most lines skip the word-by-word look.
_ENV_HINT = re.compile(r"(?:pass|pwd|secret|token|key|credential|sas|pat|connection_?string|sig)[A-Za-z0-9_]*\s*=",
                       re.IGNORECASE)
_NAME_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_SECRET_ANYWHERE = ("PASSWORD", "PASSWD", "TOKEN", "CONNECTIONSTRING")
_SECRET_LAST_WORD = {"KEY", "APIKEY", "SECRET", "PASS", "PWD", "PAT", "SAS", "CREDENTIAL", "CREDENTIALS",
                     "PASSPHRASE", "SIG", "SIGNATURE"}


def secret_env_name(name: str) -> bool:
    """True for an environment variable name that looks like it holds a secret (see above)."""
    upper = name.upper()
    if any(word in upper.replace("_", "") for word in _SECRET_ANYWHERE):
        return True
    words = [word.upper() for word in _NAME_WORDS.findall(name)]
    return bool(words) and (words[-1] in _SECRET_LAST_WORD or "SAS" in words)


_KEY_BEGIN = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")
_KEY_END = re.compile(r"-----END [A-Z ]*PRIVATE KEY-----")


def redact_log_line(line: str) -> str:
    """One log line with every secret masked: redact_text's finder, and the values of
    environment variables whose names look secret."""
    line = redact_text(line)
    if _ENV_HINT.search(line):
        line = _ENV_ASSIGNMENT.sub(lambda m: m.group(1) + MASK if secret_env_name(m.group(2)) else m.group(0), line)
    return line


class LogRedactor:
    """Redacts a log arriving in pieces (byte ranges): only whole lines are redacted and given
    back, so a secret split across two pieces is still seen whole; the unfinished last line
    is carried to the next piece (or given back by finish()). A private key spanning lines
    is masked from its BEGIN line to its END line."""

    def __init__(self):
        self._carry = b""
        self._in_key = False

    def feed(self, data: bytes) -> bytes:
        data = self._carry + data
        cut = data.rfind(b"\n") + 1
        self._carry = data[cut:]
        return self._lines(data[:cut]) if cut else b""

    def finish(self) -> bytes:
        """The last line, if the log does not end with a newline."""
        rest, self._carry = self._carry, b""
        return self._lines(rest) if rest else b""

    @property
    def in_key(self) -> bool:
        """Inside a private key block (its END line not seen yet)."""
        return self._in_key

    @property
    def pending(self) -> int:
        """Bytes held back (an unfinished line)."""
        return len(self._carry)

    def _lines(self, data: bytes) -> bytes:
        text = data.decode("utf-8", errors="replace")
        if not (self._in_key or might_contain_secret(text) or _ENV_HINT.search(text)):
            return data  # the common case: nothing to look at line by line
        if not self._in_key and not _KEY_BEGIN.search(text):
            # No private key: the patterns stop at line ends (a few may reach across one, which
            # only masks more), so one pass over the whole block gives what line by line would,
            # several times faster on logs full of URLs (every "://" is a hint).
            return redact_log_line(text).encode("utf-8")
        out = []
        for line in text.splitlines(keepends=True):
            body = line.rstrip("\r\n")
            end = line[len(body):]
            if self._in_key:
                if _KEY_END.search(body):
                    self._in_key = False
                out.append(MASK + end)
                continue
            begin = _KEY_BEGIN.search(body)
            if begin and not _KEY_END.search(body[begin.end():]):
                self._in_key = True
                out.append(redact_log_line(body[:begin.start()]) + MASK + end)
                continue
            out.append(redact_log_line(body) + end)
        return "".join(out).encode("utf-8")


def redact_log(text: str) -> str:
    """A whole log, redacted as LogRedactor would."""
    redactor = LogRedactor()
    return (redactor.feed(text.encode("utf-8")) + redactor.finish()).decode("utf-8")
