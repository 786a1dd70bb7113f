"""Progress of a long run: a bar on a terminal, a plain line every few seconds in a log."""

from __future__ import annotations

from dataclasses import dataclass, field
import sys
import time
from typing import TextIO

#: Seconds between two lines where stderr is a file or a pipe (no carriage returns there).
PLAIN_PERIOD_S = 10.0
BAR_WIDTH = 30


@dataclass
class Progress:
    """
    Frames done, frames/s and the time left of one run, on stderr.

    On a terminal one bar redrawn in place (carriage returns); anywhere else (a log file, a
    pipe) a whole line every :data:`PLAIN_PERIOD_S` seconds and a last one at the end, so a
    log holds readable lines only. ``total`` 0: unknown (no bar, no time left).
    """

    total: int
    quiet: bool = False
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    terminal: bool | None = None
    started: float = field(default_factory=time.monotonic)
    last_line: float = 0.0
    done: int = 0

    def __post_init__(self) -> None:
        """Find out whether the stream is a terminal."""
        if self.terminal is None:
            self.terminal = self.stream.isatty()

    def tick(self) -> None:
        """Count one frame and show the progress."""
        self.done += 1
        now = time.monotonic()
        if self.quiet or (not self.terminal and now - self.last_line < PLAIN_PERIOD_S):
            return
        self.last_line = now
        self.show(now)

    def text(self, now: float) -> str:
        """Return the counts, the rate and the time left."""
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        total = max(self.total, self.done)
        left = ''
        if rate > 0 and self.total:
            left = f', {_duration((total - self.done) / rate)} left'
        counts = f'{self.done}/{total}' if self.total else f'{self.done}'
        return f'{counts} frames, {rate:.1f} frames/s{left}'

    def show(self, now: float) -> None:
        """Print the progress: redraw the bar, or write one line."""
        if self.terminal:
            total = max(self.total, self.done)
            filled = int(BAR_WIDTH * self.done / total) if self.total else 0
            bar = '#' * filled + '-' * (BAR_WIDTH - filled)
            print(f'\r  [{bar}] {self.text(now)}   ', end='', file=self.stream, flush=True)
        else:
            print(f'  {self.text(now)}', file=self.stream, flush=True)

    def finish(self) -> None:
        """Show the final counts (a log gets its last line too) and end the bar's line."""
        if self.quiet or not self.done:
            return
        self.show(time.monotonic())
        if self.terminal:
            print(file=self.stream, flush=True)


def _duration(seconds: float) -> str:
    """Return ``42 s``, ``3 min 05 s`` or ``1 h 02 min``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f'{seconds} s'
    if seconds < 3600:
        return f'{seconds // 60} min {seconds % 60:02d} s'
    return f'{seconds // 3600} h {seconds % 3600 // 60:02d} min'
