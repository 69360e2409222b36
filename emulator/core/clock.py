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

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    def state(self) -> dict:
        """What `restore` needs to bring a restarted process back to the same simulated time."""
        with self._lock:
            frozen_at = self._frozen_at
            offset = self._offset
        return {"time_scale": self.time_scale, "offset_seconds": offset.total_seconds(),
                "frozen_at": frozen_at.isoformat() if frozen_at else None}

    def restore(self, state: dict) -> None:
        with self._lock:
            self.time_scale = float(state.get("time_scale") or self.time_scale)
            self._offset = dt.timedelta(seconds=state.get("offset_seconds") or 0.0)
            frozen_at = state.get("frozen_at")
            self._frozen_at = dt.datetime.fromisoformat(frozen_at) if frozen_at else None

    def reset(self, time_scale: float) -> None:
        """Back to real time, unfrozen, at the given scale."""
        with self._lock:
            self.time_scale = time_scale
            self._offset = dt.timedelta()
            self._frozen_at = None

    def scaled(self, seconds: float) -> dt.timedelta:
        """A realistic duration shortened by the time scale."""
        return dt.timedelta(seconds=seconds / self.time_scale)


def iso(moment: dt.datetime) -> str:
    """ARM's timestamp shape: UTC with 7 fractional digits and a Z."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"
