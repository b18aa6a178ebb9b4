"""Exponential backoff with full jitter, shared by every loop that waits on something outside.

:class:`Backoff` only computes delays; the caller waits (on its stop event, so
SIGTERM is never held up by a backoff) and goes back to its own loop, which
keeps polling Kafka between attempts. That is why this is not a retry
decorator from tenacity or stamina: those own the sleep and the call, while
our call sites must rewind a consumer, heartbeat through ``poll()`` and check a
stop event between attempts, and must never give up (a retriable failure is
held until the outside world comes back, however long that takes). Their delay
functions were measured too (``bench/bench_ingest_libraries.py``, README
"Dependencies"): at the cap, tenacity's ``wait_exponential_jitter`` and stamina
return the cap itself every time, so every consumer would come back at the same
instant after an outage; this one keeps spreading them over [cap/2, cap].

The exponent is clamped, so the delay stays at ``cap`` however many attempts
a day-long outage piles up (``base * 2**1024`` overflows a float).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays of ``base * 2**n`` seconds, capped, with full jitter; ``reset()`` after a success."""

    base: float = 0.5
    cap: float = 30.0
    jitter: bool = True
    attempts: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if not (self.base > 0 and self.cap >= self.base and math.isfinite(self.cap)):
            raise ValueError(f"need 0 < base <= cap < inf, got base={self.base} cap={self.cap}")
        # The smallest exponent whose delay already reaches the cap; beyond it only the cap matters.
        self._max_exponent = max(0, math.ceil(math.log2(self.cap / self.base)))

    def next_delay(self) -> float:
        delay = min(self.cap, self.base * 2.0 ** min(self.attempts, self._max_exponent))
        self.attempts += 1
        return self._rng.uniform(delay / 2, delay) if self.jitter else delay

    def reset(self) -> None:
        self.attempts = 0
