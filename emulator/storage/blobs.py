"""A small client for the Blob REST API (Azurite, path-style URLs, bearer tokens). Stdlib only:
the emulator has no Azure SDK and needs five calls.

Every method takes the account and a token getter; errors are BlobError with the HTTP status
and Azure's error code (x-ms-error-code).
"""

from __future__ import annotations

import email.utils
import http.client
import ssl
import threading
import urllib.parse
from collections.abc import Callable

API_VERSION = "2021-12-02"
APPEND_BLOCK_BYTES = 4 * 1024 * 1024  # Azure's limit for one append block (older x-ms-versions)


class BlobError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


class BlobClient:
    """Blob calls against one endpoint (`https://host:port`), one keep-alive connection per thread."""

    def __init__(self, endpoint: str, *, ca_path: str | None, token: Callable[[], str], timeout: float = 10.0):
        parsed = urllib.parse.urlsplit(endpoint)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 443
        self.context = ssl.create_default_context(cafile=ca_path) if ca_path else ssl.create_default_context()
        self.token = token
        self.timeout = timeout
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPSConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=self.timeout)
            self._local.connection = connection
        return connection

    def request(self, method: str, path: str, *, query: str = "", body: bytes = b"",
                headers: dict[str, str] | None = None, ok: tuple[int, ...] = (200, 201, 202)) -> tuple[int, dict, bytes]:
        target = urllib.parse.quote(path) + (f"?{query}" if query else "")
        sent = {"x-ms-version": API_VERSION, "x-ms-date": email.utils.formatdate(usegmt=True),
                "Authorization": f"Bearer {self.token()}", "Content-Length": str(len(body)), **(headers or {})}
        for attempt in (1, 2):  # a keep-alive connection the server closed gets one fresh retry
            connection = self._connection()
            try:
                connection.request(method, target, body=body, headers=sent)
                response = connection.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, OSError):
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise
        answer = {key.lower(): value for key, value in response.getheaders()}
        if response.status not in ok:
            raise BlobError(response.status, answer.get("x-ms-error-code", ""), data.decode(errors="replace")[:300])
        return response.status, answer, data

    # -- containers ------------------------------------------------------------------------
    def create_container(self, account: str, container: str) -> bool:
        """True when created, False when it already existed."""
        try:
            self.request("PUT", f"/{account}/{container}", query="restype=container")
        except BlobError as error:
            if error.status == 409:
                return False
            raise
        return True

    def delete_container(self, account: str, container: str) -> bool:
        try:
            self.request("DELETE", f"/{account}/{container}", query="restype=container")
        except BlobError as error:
            if error.status == 404:
                return False
            raise
        return True

    # -- blobs -----------------------------------------------------------------------------
    def create_append_blob(self, account: str, container: str, name: str) -> None:
        self.request("PUT", f"/{account}/{container}/{name}",
                     headers={"x-ms-blob-type": "AppendBlob", "x-ms-blob-content-type": "text/plain; charset=utf-8"})

    def append(self, account: str, container: str, name: str, data: bytes) -> None:
        for start in range(0, len(data), APPEND_BLOCK_BYTES):
            self.request("PUT", f"/{account}/{container}/{name}", query="comp=appendblock",
                         body=data[start:start + APPEND_BLOCK_BYTES])

    def read(self, account: str, container: str, name: str) -> bytes | None:
        """The blob's content, or None when it does not exist."""
        try:
            return self.request("GET", f"/{account}/{container}/{name}")[2]
        except BlobError as error:
            if error.status == 404:
                return None
            raise

    def delete_blob(self, account: str, container: str, name: str) -> None:
        try:
            self.request("DELETE", f"/{account}/{container}/{name}")
        except BlobError as error:
            if error.status != 404:
                raise
