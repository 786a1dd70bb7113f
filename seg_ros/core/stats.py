"""Small running statistics for diagnostics: event rates, windows of durations, stage times."""

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


class StageProfile:
    """
    Mean wall and CPU time of each stage of a frame's path, over the last ``size`` frames.

    CPU time is the measuring thread's (``time.thread_time``): work a runtime does in threads
    of its own (the network on OpenVINO / ONNX Runtime) shows as wall time only.
    """

    def __init__(self, stages: tuple[str, ...], size: int = 100) -> None:
        """Make an empty profile of ``stages``, in their order."""
        self.stages = stages
        self._wall = {stage: DurationWindow(size) for stage in stages}
        self._cpu = {stage: DurationWindow(size) for stage in stages}

    def add(self, stage: str, wall_ms: float, cpu_ms: float) -> None:
        """Record one frame's time in ``stage``."""
        self._wall[stage].add(wall_ms)
        self._cpu[stage].add(cpu_ms)

    def line(self) -> str:
        """Return ``stage wall/cpu`` means in milliseconds, e.g. ``convert 1.2/1.1, ...``."""
        parts = []
        for stage in self.stages:
            wall, cpu = self._wall[stage].summary()['mean'], self._cpu[stage].summary()['mean']
            parts.append(f'{stage} {wall:.1f}/{cpu:.1f}')
        return ', '.join(parts)


class StageClock:
    """Lap times of one frame: ``lap(stage)`` closes the stage that ran since the last lap."""

    def __init__(self, profile: StageProfile) -> None:
        """Start timing now."""
        self._profile = profile
        self._wall = time.perf_counter()
        self._cpu = time.thread_time()

    def lap(self, stage: str, wall_ms: float | None = None) -> None:
        """Record ``stage`` (its wall time measured here unless given) and start the next."""
        wall, cpu = time.perf_counter(), time.thread_time()
        measured = (wall - self._wall) * 1e3
        self._profile.add(stage, measured if wall_ms is None else wall_ms,
                          (cpu - self._cpu) * 1e3)
        self._wall, self._cpu = wall, cpu
