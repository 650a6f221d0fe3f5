"""One rate limiter: "at most N per interval, per key", and the rate-limited log built on it.

`RateLimit(count, seconds)` is a token bucket per key: a key starts with `count` tokens and gets
them back at `count / seconds` a second, never more than `count`. `allow(key)` takes a token if
there is one (True) or refuses (False); `wait(key)` always takes one and says how long to wait
until it was due, for a reader that slows a sender down rather than dropping it. With `count` 1,
`allow` says yes at most once per `seconds` since the last yes.

Used for: error replies per OSC sender (`control.feedback`), per web page the messages read, the
error replies and the "too many messages" notice (`web.server`), and `RateLimitedLog`'s one line
per key per interval (OSC, MIDI, web, engine, session, trainer).

Threads: any; a lock guards the buckets (never taken by the audio callback).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable


class RateLimit:
    """At most `count` per `seconds` per key (a token bucket of `count`, refilled evenly).

    At most `max_keys` keys are remembered: when more come, the keys whose bucket has refilled
    are forgotten (they behave as new keys do), and if that is not enough, all of them."""

    def __init__(self, count: float, seconds: float, max_keys: int = 1024,
                 clock: Callable[[], float] = time.monotonic):
        if not count > 0 or not seconds > 0:
            raise ValueError(f"a rate limit needs count > 0 and seconds > 0, got {count} per {seconds} s")
        self.count = float(count)
        self.seconds = float(seconds)
        self.rate = self.count / self.seconds
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def _tokens(self, key: Hashable, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.count, now))
        return min(self.count, tokens + (now - at) * self.rate)

    def _store(self, key: Hashable, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_keys:  # bounded memory under a flood of distinct keys
            full = [k for k, (t, at) in self._buckets.items() if t + (now - at) * self.rate >= self.count]
            for k in full:
                del self._buckets[k]
            if len(self._buckets) > self.max_keys:
                self._buckets.clear()

    def allow(self, key: Hashable = None) -> bool:
        """Take a token for `key` if one is there: True; else False (nothing taken)."""
        with self._lock:
            now = self._clock()
            tokens = self._tokens(key, now)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return False
            self._store(key, tokens - 1.0, now)
            return True

    def wait(self, key: Hashable = None) -> float:
        """Take a token for `key` even if it is not there yet: the seconds until it would have been (0: now)."""
        with self._lock:
            now = self._clock()
            tokens = self._tokens(key, now) - 1.0
            self._store(key, tokens, now)
        return 0.0 if tokens >= 0.0 else -tokens / self.rate

    def forget(self, key: Hashable = None) -> None:
        with self._lock:
            self._buckets.pop(key, None)


class RateLimitedLog:
    """Log at most one line per `seconds` per key; say how many were held back."""

    def __init__(self, logger: logging.Logger, seconds: float = 2.0):
        self.logger = logger
        self.seconds = seconds
        self._limit = RateLimit(1, seconds)
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def log(self, level: int, msg: str, *args: object, key: str | None = None) -> bool:
        key = key or msg
        with self._lock:
            if not self._limit.allow(key):
                self._held[key] = self._held.get(key, 0) + 1
                return False
            held = self._held.pop(key, 0)
        if held:
            msg = f"{msg} (and {held} more like it)"
        self.logger.log(level, msg, *args)
        return True

    def warning(self, msg: str, *args: object, key: str | None = None) -> bool:
        return self.log(logging.WARNING, msg, *args, key=key)

    def info(self, msg: str, *args: object, key: str | None = None) -> bool:
        return self.log(logging.INFO, msg, *args, key=key)
