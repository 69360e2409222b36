"""Durable state for the emulator: JSON documents in SQLite, keyed by (kind, key).

With a data folder the database is DIR/state.sqlite3, so a restart loses nothing; without
one it lives in memory (tests). One connection guarded by a lock serves every thread: the
emulator's traffic is small next to SQLite's speed, and a single writer keeps it simple.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class Store:
    def __init__(self, path: Path | None = None):
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL" if path else "PRAGMA journal_mode=MEMORY")
        # In WAL mode NORMAL still survives a crash of the emulator process (only an OS crash
        # can lose the last commits) and spares an fsync per write, which the 1,000-template
        # benchmark would otherwise pay on every state change.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS docs (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
            " seq INTEGER NOT NULL, PRIMARY KEY (kind, key))"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """Hold the lock across several reads and writes so they apply together."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def get(self, kind: str, key: str) -> Any | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM docs WHERE kind=? AND key=?", (kind, key.lower())).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, kind: str, key: str, value: Any) -> None:
        """Insert or replace; keys are case-insensitive like ARM resource ids. Keeps insertion order."""
        with self._lock:
            seq = self._db.execute("SELECT seq FROM docs WHERE kind=? AND key=?", (kind, key.lower())).fetchone()
            order = seq[0] if seq else self.next_value(f"seq:{kind}")
            self._db.execute("INSERT OR REPLACE INTO docs (kind, key, value, seq) VALUES (?, ?, ?, ?)",
                             (kind, key.lower(), json.dumps(value), order))

    def delete(self, kind: str, key: str) -> bool:
        with self._lock:
            cursor = self._db.execute("DELETE FROM docs WHERE kind=? AND key=?", (kind, key.lower()))
        return cursor.rowcount > 0

    def list(self, kind: str, prefix: str = "") -> list[Any]:
        """Documents of a kind whose key starts with prefix (case-insensitive), in insertion order."""
        with self._lock:
            rows = self._db.execute("SELECT value FROM docs WHERE kind = ? AND key >= ? AND key < ? ORDER BY seq",
                                    _prefix(kind, prefix)).fetchall()
        return [json.loads(row[0]) for row in rows]

    def keys(self, kind: str, prefix: str = "") -> list[str]:
        """The (lowercased) keys of a kind that start with prefix, without reading the documents."""
        with self._lock:
            rows = self._db.execute("SELECT key FROM docs WHERE kind = ? AND key >= ? AND key < ?",
                                    _prefix(kind, prefix)).fetchall()
        return [row[0] for row in rows]

    def scan(self, kind: str, prefix: str = "", *, after: int = 0, limit: int | None = None) -> list[tuple[int, Any]]:
        """(seq, document) pairs of a kind whose key starts with prefix and whose insertion
        sequence is greater than `after`, in insertion order, at most `limit` of them.

        For paging: pass the last seq of a page as `after` to get the next one; documents
        deleted or added meanwhile never shift a page the way an offset would.
        """
        sql = "SELECT seq, value FROM docs WHERE kind = ? AND key >= ? AND key < ? AND seq > ? ORDER BY seq"
        args: tuple = (*_prefix(kind, prefix), after)
        if limit is not None:
            sql += " LIMIT ?"
            args += (limit,)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [(row[0], json.loads(row[1])) for row in rows]

    def next_value(self, name: str) -> int:
        """A durable counter (request sequence numbers, auto versions...)."""
        with self._lock:
            self._db.execute("INSERT INTO counters (name, value) VALUES (?, 1) "
                             "ON CONFLICT(name) DO UPDATE SET value = value + 1", (name,))
            return self._db.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()[0]

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM docs")
            self._db.execute("DELETE FROM counters")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _prefix(kind: str, prefix: str) -> tuple[str, str, str]:
    """Parameters for "kind = ? AND key >= ? AND key < ?": keys starting with prefix as a range
    on the primary key, so SQLite seeks the index instead of testing every row (keys are stored
    lowercased; U+10FFFF sorts after every character)."""
    low = prefix.lower()
    return kind, low, low + "\U0010ffff"
