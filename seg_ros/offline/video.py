"""
Videos for ``seg-ros segment``: which frames, and an output named only once complete.

The frames: ``--start``, ``--end``, ``--every`` as ``seg-ros bag`` selects them, and
``--max-frames``. The overlay video is written as ``.<name>.partial.mp4`` beside its final name
and renamed when complete; an interruption or an error removes it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
import os

import cv2
import numpy as np

from seg_ros.offline.progress import Progress

# What a container that states no frame rate is read at (frame times, the output's rate).
FALLBACK_FPS = 30.0


class VideoError(Exception):
    """The video cannot be read or its overlay cannot be written; the message says which."""


@dataclass(frozen=True)
class FrameSelection:
    """
    The frames of a video to segment, as ``seg-ros bag`` selects a topic's frames.

    A frame's time is its index over the frame rate, from 0 at the first frame. Frames from
    ``start`` to ``end`` seconds are taken, of those the first and every ``every``-th after
    it, and at most ``max_frames`` of them.
    """

    start: float = 0.0
    end: float | None = None
    every: int = 1
    max_frames: int | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> FrameSelection:
        """Return the selection of ``--start``, ``--end``, ``--every`` and ``--max-frames``."""
        return cls(args.start, args.end, args.every, args.max_frames)

    def problem(self) -> str | None:
        """Return why the selection is empty whatever the video, or None."""
        if self.end is not None and self.end <= self.start:
            return f'--end {self.end:g} is not after --start {self.start:g}'
        return None

    def expected(self, frame_count: int, fps: float) -> int:
        """Return how many frames a video of ``frame_count`` frames gives (0: unknown)."""
        if frame_count <= 0:
            return 0
        first = min(frame_count, int(np.ceil(self.start * fps - 1e-9)))
        last = frame_count if self.end is None else min(frame_count,
                                                        int(np.floor(self.end * fps)) + 1)
        count = -(-max(0, last - first) // self.every)
        return count if self.max_frames is None else min(count, self.max_frames)


def partial_path(path: str) -> str:
    """Return where ``path`` is written until complete: ``.<name>.partial<suffix>`` beside it."""
    folder, name = os.path.split(path)
    stem, suffix = os.path.splitext(name)
    return os.path.join(folder, f'.{stem}.partial{suffix}')


def selected_frames(capture: cv2.VideoCapture, selection: FrameSelection,
                    fps: float) -> Iterator[tuple[int, np.ndarray]]:
    """
    Yield (index, BGR frame) of the selected frames; the others are only grabbed, not decoded.

    :param capture: a capture whose first frame is grabbed (:func:`open_video`).
    """
    first = int(np.ceil(selection.start * fps - 1e-9))
    index, grabbed = 0, True  # open_video grabbed the first frame
    if first > 0 and capture.set(cv2.CAP_PROP_POS_FRAMES, first) and \
            int(capture.get(cv2.CAP_PROP_POS_FRAMES)) == first:
        index, grabbed = first, False  # the container seeks exactly; else frames are grabbed
    taken = 0
    while selection.max_frames is None or taken < selection.max_frames:
        if selection.end is not None and index / fps > selection.end + 1e-9:
            return
        if not grabbed and not capture.grab():
            return
        grabbed = False
        in_window = index - first
        index += 1
        if in_window < 0 or in_window % selection.every:
            continue
        ok, frame = capture.retrieve()
        if ok:
            taken += 1
            yield index - 1, frame


class VideoOutput:
    """
    The overlay video, written under its partial name and renamed by :meth:`finish`.

    Opened on the first frame (its size is the overlay's); :meth:`abandon` removes it.
    """

    def __init__(self, path: str, fps: float) -> None:
        """Remember where it goes and at which frame rate."""
        self.path = path
        self.partial = partial_path(path)
        self.fps = fps
        self.writer: cv2.VideoWriter | None = None
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        """Append one frame; the first opens the file."""
        if self.writer is None:
            height, width = image.shape[:2]
            self.writer = cv2.VideoWriter(self.partial, cv2.VideoWriter_fourcc(*'mp4v'),
                                          self.fps, (width, height))
            if not self.writer.isOpened():
                self.abandon()
                raise VideoError(f'{self.path}: cannot be written')
        self.writer.write(image)
        self.frames += 1

    def finish(self) -> None:
        """Close the file and give it its name."""
        self.writer.release()
        os.replace(self.partial, self.path)

    def abandon(self) -> None:
        """Close and remove the unfinished file."""
        if self.writer is not None:
            self.writer.release()
        if os.path.exists(self.partial):
            os.remove(self.partial)


def open_video(path: str) -> tuple[cv2.VideoCapture, float, int]:
    """
    Open a video and grab its first frame: the capture, its frame rate, its frame count.

    The frame count is 0 where the container does not state it.

    :raises VideoError: neither an image nor a video OpenCV can read.
    """
    capture = cv2.VideoCapture(path)
    if not capture.isOpened() or not capture.grab():
        capture.release()
        raise VideoError(f'{path}: not a readable image or video')
    fps = capture.get(cv2.CAP_PROP_FPS)
    if not 0.0 < fps < 1000.0:  # none stated, or a container's placeholder
        fps = FALLBACK_FPS
    return capture, fps, max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0))


def run_video(path: str, out_path: str, selection: FrameSelection, output_fps: float,
              segment: Callable[[np.ndarray], np.ndarray | None],
              progress: Progress | None = None) -> tuple[int, int]:
    """
    Segment a video's selected frames into an overlay video at ``out_path``.

    :param output_fps: the written video's frame rate, 0: the input's over ``every``.
    :param segment: frame -> overlay, or None to skip the frame.
    :param progress: told the frames expected and each frame written.
    :return: (frames written, frames skipped by ``segment``).
    :raises VideoError: unreadable, nothing selected, or not writable; nothing left behind.
    :raises KeyboardInterrupt: as it comes, the partial file removed.
    """
    capture, fps, frame_count = open_video(path)
    output = VideoOutput(out_path, output_fps or fps / selection.every)
    if progress is not None:
        progress.total = selection.expected(frame_count, fps)
    skipped = 0
    try:
        for _, frame in selected_frames(capture, selection, fps):
            overlay = segment(frame)
            if overlay is None:
                skipped += 1
                continue
            output.write(overlay)
            if progress is not None:
                progress.tick()
        if output.frames == 0 and skipped == 0:
            duration = f'{frame_count / fps:.1f} s' if frame_count else 'unknown length'
            raise VideoError(f'{path}: no frame in the selection (the video: {duration} at '
                             f'{fps:g} frames/s)')
        if output.frames:
            output.finish()
    except BaseException:
        output.abandon()
        raise
    finally:
        capture.release()
        if progress is not None:
            progress.finish()
    return output.frames, skipped
