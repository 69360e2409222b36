"""The emulator's clock: real time, optionally frozen or moved forward by the control API.

Build phases are computed from timestamps on every read (no background threads), so a
frozen clock freezes every build and advancing it moves them all, and a restart resumes
where the wall clock says they are.
"""

from __future__ import annotations

import datetime as dt
import threading


class Clock:
    def __init__(self, time_scale: float = 1.0):
        if time_scale <= 0:
            raise ValueError("time scale must be positive")
        self.time_scale = time_scale  # default phase durations are divided by this
        self._offset = dt.timedelta()
        self._frozen_at: dt.datetime | None = None
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            if self._frozen_at is not None:
                return self._frozen_at
            return dt.datetime.now(dt.UTC) + self._offset

    def advance(self, seconds: float) -> dt.datetime:
        with self._lock:
            delta = dt.timedelta(seconds=seconds)
            if self._frozen_at is not None:
                self._frozen_at += delta
            else:
                self._offset += delta
        return self.now()

    def freeze(self) -> dt.datetime:
        current = self.now()
        with self._lock:
            self._frozen_at = current
        return current

    def unfreeze(self) -> dt.datetime:
        with self._lock:
            if self._frozen_at is not None:
                self._offset = self._frozen_at - dt.datetime.now(dt.UTC)
                self._frozen_at = None
        return self.now()

    def scaled(self, seconds: float) -> dt.timedelta:
        """A realistic duration shortened by the time scale."""
        return dt.timedelta(seconds=seconds / self.time_scale)


def iso(moment: dt.datetime) -> str:
    """ARM's timestamp shape: UTC with 7 fractional digits and a Z."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
