"""Reconnect delays: exponential growth with full jitter, kept between the configured bounds."""

from __future__ import annotations

import random
from collections.abc import Callable

_MAX_DOUBLINGS = 32  # past this the ceiling is long capped; it also keeps 2**n a small float


class Backoff:
    """Delay n (from 0) is uniform in [minimum, min(maximum, minimum * 2**(n+1))].

    The jitter spreads reconnects after an Asterisk restart; the floor keeps a flapping peer from being
    hammered; ``reset`` after a successful login so the next outage starts small again.
    """

    def __init__(
        self,
        minimum: float,
        maximum: float,
        *,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.minimum = minimum
        self.maximum = max(minimum, maximum)
        self._uniform = uniform
        self.attempt = 0

    def ceiling(self, attempt: int) -> float:
        return min(self.maximum, self.minimum * 2.0 ** min(attempt + 1, _MAX_DOUBLINGS))

    def next_delay(self) -> float:
        ceiling = self.ceiling(self.attempt)
        self.attempt += 1
        return min(ceiling, max(self.minimum, self._uniform(self.minimum, ceiling)))

    def reset(self) -> None:
        self.attempt = 0
