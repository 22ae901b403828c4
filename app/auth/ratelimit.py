"""Failed logins counted per user name and per client address, so passwords cannot be guessed fast.

After ``max_per_user`` failures for one name, or ``max_per_address`` failures from one address, within
``window_s`` seconds, further attempts are refused (HTTP 429 with Retry-After) until the oldest failure
leaves the window. A refused attempt does not check the password at all, so a locked-out guesser
learns nothing. A successful login clears that name's failures only: logging in to one's own account
must not reset the counter of the address an attacker shares.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["LoginRateLimiter"]


class LoginRateLimiter:
    """Sliding-window counter of failed logins.

    Args:
        max_per_user: failures allowed per user name within the window.
        max_per_address: failures allowed per client address within the window (higher: colleagues
            behind one NAT share an address).
        window_s: the window in seconds.
        clock: monotonic time source (tests pass a fake one).
        max_keys: bound on the names and addresses remembered (guessing random names must not grow
            memory without limit); the least recently failed are forgotten first.
    """

    def __init__(self, max_per_user: int = 5, max_per_address: int = 10, window_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000):
        self.max_per_user = int(max_per_user)
        self.max_per_address = int(max_per_address)
        self.window_s = float(window_s)
        self.clock = clock
        self.max_keys = int(max_keys)
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, user: str, address: str) -> int:
        """Seconds until a login for ``user`` from ``address`` may be tried again (0: allowed now)."""
        now = self.clock()
        with self._lock:
            waits = [self._wait(("user", user), self.max_per_user, now),
                     self._wait(("address", address), self.max_per_address, now)]
        return max(waits)

    def failure(self, user: str, address: str) -> None:
        """Record a failed login."""
        now = self.clock()
        with self._lock:
            for key in (("user", user), ("address", address)):
                times = self._failures.pop(key, None) or deque()
                times.append(now)
                self._failures[key] = times  # re-inserted last: dict order is least recently failed first
            while len(self._failures) > self.max_keys:
                del self._failures[next(iter(self._failures))]

    def success(self, user: str) -> None:
        """Forget the failures of ``user`` (not of the address)."""
        with self._lock:
            self._failures.pop(("user", user), None)

    def _wait(self, key: tuple[str, str], limit: int, now: float) -> int:
        times = self._failures.get(key)
        if not times:
            return 0
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0
        if len(times) < limit:
            return 0
        # Allowed again once enough failures have left the window to get below the limit.
        release = times[len(times) - limit] + self.window_s
        return max(1, math.ceil(release - now))
