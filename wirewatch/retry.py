"""Exponential backoff with full jitter, shared by every loop that waits on something outside."""

from __future__ import annotations

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

    def next_delay(self) -> float:
        delay = min(self.cap, self.base * (2**self.attempts))
        self.attempts += 1
        return self._rng.uniform(delay / 2, delay) if self.jitter else delay

    def reset(self) -> None:
        self.attempts = 0
