"""
Warnings throttled per kind of fault, so that a stream of one fault cannot hide another.

rclpy's ``throttle_duration_sec`` throttles one call site: every malformed image would share one
warning every few seconds, whatever was wrong with it. Here the kind of a message is the message
without what varies between two faults of one kind (numbers and quoted values), or a kind the
caller names; each kind is logged at most once every ``period_s``.
"""

import re
import threading
import time
from typing import Callable

WARN_THROTTLE_S = 5.0
# What varies between two messages of one kind: sizes, stamps and quoted values.
_DETAILS = re.compile(r"\d+|'[^']*'")


def kind_of(message: str) -> str:
    """Return the kind of a message: the message without its numbers and quoted values."""
    return _DETAILS.sub('', message)


class ThrottledWarnings:
    """Log each kind of warning at most once every ``period_s`` (safe from several threads)."""

    def __init__(self, warn: Callable[[str], object], period_s: float = WARN_THROTTLE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """
        Keep where to log and how often.

        :param warn: logs one line, e.g. a ROS logger's ``warning``.
        :param period_s: seconds between two lines of one kind.
        :param clock: monotonic seconds.
        """
        self._warn = warn
        self._period_s = period_s
        self._clock = clock
        self._logged: dict[str, float] = {}
        self._lock = threading.Lock()

    def warn(self, message: str, kind: str | None = None) -> bool:
        """
        Log ``message`` unless its kind was logged less than ``period_s`` ago.

        :param kind: the kind, when the message's own text does not say it (default:
            :func:`kind_of` the message).
        :return: whether it was logged.
        """
        kind = kind_of(message) if kind is None else kind
        now = self._clock()
        with self._lock:
            if now - self._logged.get(kind, -self._period_s) < self._period_s:
                return False
            self._logged[kind] = now
        self._warn(message)
        return True
