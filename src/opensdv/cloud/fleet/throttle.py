"""Login throttling: guessing an operator's secret costs exponentially more time per failure.

Each key (the operator's name, the caller's address) may fail ``free`` times in a row; after that,
each further attempt must wait ``base_s * 2**(failures - free)`` seconds (at most ``cap_s``) after
the last failure, or it is answered 429 without the secret being checked. A success clears the
operator's and the address's record. The record lives in the API process (a restart forgets it;
several API processes each keep their own: say so in the threat model) and holds at most
``max_keys`` keys, the oldest forgotten first, so random names cannot exhaust memory.
"""

from __future__ import annotations

from collections import OrderedDict

from opensdv.clock import SYSTEM_CLOCK, Clock

__all__ = ["LoginThrottle"]


class LoginThrottle:
    """Failures per key, and how long each key must wait before its next attempt."""

    def __init__(
        self, clock: Clock = SYSTEM_CLOCK, *, free: int = 5, base_s: float = 1.0, cap_s: float = 900.0,
        max_keys: int = 100_000,
    ) -> None:  # fmt: skip
        self.clock = clock
        self.free, self.base_s, self.cap_s, self.max_keys = free, base_s, cap_s, max_keys
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()  # key -> (count, last at)

    def retry_after_s(self, *keys: str) -> float:
        """How long the caller must wait before the next attempt (0: it may try now)."""
        now = self.clock.monotonic()
        waits = [0.0]
        for key in keys:
            count, last = self._failures.get(key, (0, now))
            if count >= self.free:
                waits.append(last + min(self.cap_s, self.base_s * 2 ** (count - self.free)) - now)
        return max(waits)

    def failed(self, *keys: str) -> list[str]:
        """Count a failed attempt; returns the keys this failure locked out (their first wait)."""
        now = self.clock.monotonic()
        locked = []
        for key in keys:
            count, _ = self._failures.pop(key, (0, now))
            self._failures[key] = (count + 1, now)
            if count + 1 == self.free:
                locked.append(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)
        return locked

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self._failures.pop(key, None)
