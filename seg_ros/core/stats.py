"""Small running statistics for diagnostics: event rates and windows of durations."""

from collections import deque
import math
import threading
import time


class RateMeter:
    """Count events and report their rate over a sliding time window."""

    def __init__(self, window_s: float = 5.0) -> None:
        self._window_s = window_s
        self._stamps: deque[float] = deque()
        self._lock = threading.Lock()
        self.total = 0
        self.last_time: float | None = None

    def tick(self, now: float | None = None) -> None:
        """Record one event (at monotonic time ``now``)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self.total += 1
            self.last_time = now
            self._stamps.append(now)
            self._trim(now)

    def rate(self, now: float | None = None) -> float:
        """Return events per second over the window ending at ``now``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(now)
            if len(self._stamps) < 2:
                return 0.0
            span = max(now - self._stamps[0], 1e-9)
            return (len(self._stamps) - 1) / span if span < self._window_s else \
                len(self._stamps) / self._window_s

    def _trim(self, now: float) -> None:
        while self._stamps and now - self._stamps[0] > self._window_s:
            self._stamps.popleft()


class DurationWindow:
    """Keep the last ``size`` durations (milliseconds) and summarise them."""

    def __init__(self, size: int = 100) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, milliseconds: float) -> None:
        """Record one duration."""
        with self._lock:
            self._values.append(milliseconds)

    def summary(self) -> dict[str, float]:
        """Return mean, p50, p99 and max of the window (NaN when empty)."""
        with self._lock:
            values = sorted(self._values)
        if not values:
            nan = math.nan
            return {'mean': nan, 'p50': nan, 'p99': nan, 'max': nan}
        return {
            'mean': sum(values) / len(values),
            'p50': percentile(values, 50.0),
            'p99': percentile(values, 99.0),
            'max': values[-1],
        }


def percentile(sorted_values: list[float], percent: float) -> float:
    """Return the nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(percent / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]
