"""Counting recent failures per key (a client address) in a sliding window.

Kept in memory: each server worker counts on its own, which is enough to slow down
guessing from one address; accounts also lock in the database (see accounts.py).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class FailureWindow:
    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        now = self.clock()
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def record(self, key: str) -> None:
        self._recent(key)
        self._failures.setdefault(key, deque()).append(self.clock())

    def retry_after(self, key: str) -> int:
        """Seconds until `key` may try again; 0 when it may now."""
        failures = self._recent(key)
        if len(failures) < self.limit:
            return 0
        return max(1, int(failures[-self.limit] + self.window - self.clock()) + 1)
