"""The domain's signals: a low module (it imports nothing of builds), so that a lower service can
announce what a higher module acts on without importing it.

- `version_released(gold_version, channel, actor)`: a gold version was published (`channel` "")
  or promoted to `channel`; sent inside the transaction that did it, so what a receiver writes
  commits or rolls back with it. builds/rollouts.py plans or starts the rollout the policy asks
  for (`rollout_on_publish`, `rollout_on_promote`).
"""

from __future__ import annotations

from django.dispatch import Signal

version_released = Signal()
