"""Rate-limited logging: bad input gets a clear line, a flood gets one line and a count.

Threads: any; a lock guards the bookkeeping (never taken by the audio callback).
"""

from __future__ import annotations

import logging
import threading
import time


class RateLimitedLog:
    """Log at most one line per `seconds` per key; say how many were held back."""

    def __init__(self, logger: logging.Logger, seconds: float = 2.0):
        self.logger = logger
        self.seconds = seconds
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def log(self, level: int, msg: str, *args: object, key: str | None = None) -> bool:
        key = key or msg
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.seconds:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            held = self._held.pop(key, 0)
            self._last[key] = now
            if len(self._last) > 1024:  # bounded memory under a flood of distinct keys
                self._last.clear()
        if held:
            msg = f"{msg} (and {held} more like it)"
        self.logger.log(level, msg, *args)
        return True

    def warning(self, msg: str, *args: object, key: str | None = None) -> bool:
        return self.log(logging.WARNING, msg, *args, key=key)

    def info(self, msg: str, *args: object, key: str | None = None) -> bool:
        return self.log(logging.INFO, msg, *args, key=key)
