"""A job's retry policy, with resque-retry's meaning of every number.

``limit`` is the number of *retries* (resque-retry's ``@retry_limit``): a limit of 2 allows 3
runs; 0 never retries; a negative limit retries for ever. The delay before retry ``n`` (``n`` =
0 after the first failure) is ``backoff[n]`` (the last entry past its end), or ``delay``;
``jitter`` multiplies it by a random factor in ``[1 - jitter, 1 + jitter]`` (resque-retry's
multiplicand range). Delay 0 re-enqueues at once; a positive delay goes through
resque-scheduler's delayed layout, so any scheduler (ours, Ruby's) moves it.

Which failures are retried: a ``fatal`` exception never; otherwise, when ``retry_on`` is given,
only those; otherwise every one. ``expire_after`` sets a TTL on the attempt counter (resque-retry's
``@expire_retry_key_after``) so a job enqueued again much later starts from attempt 0.
Only the final failure is recorded in ``failed`` unless ``record_attempts`` is set.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Retry:
    """``Retry(limit=5, backoff=[0, 60, 600])``: given at registration, ``@job("X", retry=...)``."""

    limit: int = 1
    delay: float = 0.0
    backoff: Sequence[float] = ()
    retry_on: tuple[type[BaseException], ...] = ()
    fatal: tuple[type[BaseException], ...] = ()
    expire_after: float | None = None
    jitter: float = 0.0
    record_attempts: bool = False
    _rand: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int):
            raise TypeError("Retry: limit must be an integer (retries; negative: for ever)")
        for name, value in (("delay", self.delay), *((f"backoff[{i}]", d) for i, d in enumerate(self.backoff))):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"Retry: {name} must be a number of seconds >= 0, not {value!r}")
        if not 0 <= self.jitter < 1:
            raise ValueError("Retry: jitter must be in [0, 1)")
        if self.expire_after is not None and self.expire_after <= 0:
            raise ValueError("Retry: expire_after must be > 0 seconds")
        for name, group in (("retry_on", self.retry_on), ("fatal", self.fatal)):
            if not isinstance(group, tuple) or not all(
                isinstance(c, type) and issubclass(c, BaseException) for c in group
            ):
                raise TypeError(f"Retry: {name} must be a tuple of exception classes")
        object.__setattr__(self, "backoff", tuple(self.backoff))

    @classmethod
    def exponential(
        cls,
        limit: int = 25,
        *,
        base: float = 15.0,
        factor: float = 2.0,
        cap: float = 86_400.0,
        jitter: float = 0.25,
        **kwargs: object,
    ) -> Retry:
        """``base * factor**n`` seconds before retry ``n``, at most ``cap``, with jitter."""
        steps = max(limit, 1)
        backoff = [min(cap, base * factor**n) for n in range(steps)]
        return cls(limit=limit, backoff=backoff, jitter=jitter, **kwargs)  # type: ignore[arg-type]

    @property
    def runs(self) -> int | None:
        """How many runs the policy allows in all (None: unlimited)."""
        return None if self.limit < 0 else self.limit + 1

    def retries(self, exc: BaseException) -> bool:
        """Is this kind of failure retried at all (before counting attempts)?"""
        if self.fatal and isinstance(exc, self.fatal):
            return False
        return not self.retry_on or isinstance(exc, self.retry_on)

    def allows(self, attempt: int) -> bool:
        """May run ``attempt`` (0-based, the one that just failed) be followed by another?"""
        return self.limit < 0 or attempt < self.limit

    def base_delay(self, attempt: int) -> float:
        if self.backoff:
            return float(self.backoff[min(max(attempt, 0), len(self.backoff) - 1)])
        return float(self.delay)

    def delay_after(self, attempt: int) -> int:
        """Whole seconds to wait after failed run ``attempt`` (resque-retry's ``.to_i``)."""
        seconds = self.base_delay(attempt)
        if self.jitter:
            seconds *= self._rand.uniform(1 - self.jitter, 1 + self.jitter)
        return int(seconds)
