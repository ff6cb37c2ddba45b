"""The write throttle: a token bucket with additive increase and multiplicative decrease (AIMD).

Shared by every bulk writer (the restore today): it slows down when DynamoDB pushes back
(unprocessed items, throttling errors) and speeds up again, gh-ost style, towards the operator's
ceiling, so a restore neither hammers a table nor stays slow after a passing hiccup.
"""

from __future__ import annotations

import threading
import time

__all__ = ["RateLimiter"]


class RateLimiter:
    """Token bucket with additive increase / multiplicative decrease.

    ``ceiling`` is the operator's limit (None: none); ``current`` drops by half on pushback
    (unprocessed items, throttles) and climbs 10% per second of clean writes back to the ceiling.
    Without a ceiling and without pushback it never waits.
    """

    def __init__(self, ceiling: float | None) -> None:
        self.lock = threading.Lock()
        self.ceiling = ceiling
        self.current: float | None = ceiling
        self.tokens = 0.0
        self.last = time.monotonic()
        self.last_push = 0.0

    def set_ceiling(self, ceiling: float | None) -> None:
        with self.lock:
            self.ceiling = ceiling
            if ceiling is not None and (self.current is None or self.current > ceiling):
                self.current = ceiling
            if ceiling is None and self.last_push == 0.0:
                self.current = None

    def pushback(self, observed_rate: float) -> None:
        with self.lock:
            base = self.current if self.current is not None else max(observed_rate, 50.0)
            self.current = max(10.0, base / 2)
            self.last_push = time.monotonic()

    def acquire(self, n: int) -> None:
        """Wait until ``n`` items may be sent."""
        while True:
            with self.lock:
                now = time.monotonic()
                elapsed, self.last = now - self.last, now
                if self.current is not None and now - self.last_push > 1.0:
                    # Additive increase: +10% per second of clean writes since the last pushback.
                    self.current *= 1 + 0.1 * elapsed
                    if self.ceiling is not None:
                        self.current = min(self.current, self.ceiling)
                    elif self.current > 100_000:
                        self.current = None  # recovered: no limit again
                if self.current is None:
                    return
                # Capacity of at least one batch, so a low rate still lets a batch through.
                self.tokens = min(max(self.current, n), self.tokens + elapsed * self.current)
                if self.tokens >= n:
                    self.tokens -= n
                    return
                wait = (n - self.tokens) / self.current
            time.sleep(min(wait, 0.25))
