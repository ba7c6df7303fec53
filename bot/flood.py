"""Per-user flood control: a sliding 60-second window, one polite warning, then silence.

Pure: the caller passes the clock (`time.monotonic()`), so tests need no sleeping. Memory stays
bounded: keys idle for a whole window are forgotten (their state equals a fresh key's), and past
`max_keys` the least recently seen key is dropped, which at worst lets that sender start afresh.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Literal

Verdict = Literal["ok", "warn", "drop"]


@dataclass
class _Sender:
    allowed: deque[float] = field(default_factory=deque)  # times of the messages let through
    warned: bool = False  # the slow-down reply was sent since the last allowed message
    last: float = 0.0  # last hit of any kind, for idling out


class FloodGuard:
    """`hit(key, now)` → "ok" (handle it), "warn" (say "slow down" once) or "drop" (ignore it)."""

    def __init__(self, limit_per_minute: int, window: float = 60.0, max_keys: int = 100_000) -> None:
        if limit_per_minute < 1 or window <= 0 or max_keys < 1:
            raise ValueError("limit_per_minute and max_keys must be at least 1, window positive")
        self.limit = limit_per_minute
        self.window = window
        self.max_keys = max_keys
        self._senders: OrderedDict[str, _Sender] = OrderedDict()  # least recently seen first

    def __len__(self) -> int:
        """How many keys are remembered (for tests and health output)."""
        return len(self._senders)

    def hit(self, key: str, now: float) -> Verdict:
        """Count one message from `key` at time `now` (seconds, any monotonic origin)."""
        self._forget_idle(now)
        sender = self._senders.pop(key, None) or _Sender()
        self._senders[key] = sender  # (re)inserted at the end: most recently seen
        sender.last = max(sender.last, now)
        while sender.allowed and sender.allowed[0] <= now - self.window:
            sender.allowed.popleft()
        if len(sender.allowed) < self.limit:
            sender.allowed.append(now)
            sender.warned = False
            verdict: Verdict = "ok"
        elif not sender.warned:
            sender.warned = True
            verdict = "warn"
        else:
            verdict = "drop"
        while len(self._senders) > self.max_keys:
            self._senders.popitem(last=False)
        return verdict

    def _forget_idle(self, now: float) -> None:
        """Drop keys silent for a full window, oldest first; amortised O(1) per hit."""
        while self._senders:
            oldest = next(iter(self._senders.values()))
            if oldest.last > now - self.window:
                break
            self._senders.popitem(last=False)
