"""
Object identities across one camera's frames, for the node and ``seg-ros bag`` (no ROS import).

:class:`FrameTracks` holds one camera's
:class:`~seg_ros.core.track.ByteTracker` and turns a segmented frame's instances, numbered
1..N by the segmenter, into track ids: ``Instances.ids`` and the instance map's values become
the tracks' (:func:`~seg_ros.core.track.bytetrack.instance_ids`: 1-65535, wrapping), an
instance the tracker gives no id (a score below ``track_activation_threshold`` that continues no
track, a track not yet seen on ``minimum_consecutive_frames`` frames) keeps its place in the
instances with id 0 and leaves the instance map (0 there). The tracker never stops a frame: an
exception in it is counted, the tracks start afresh, and that frame keeps the segmenter's ids.
The options and their values: :mod:`seg_ros.core.track.settings`.
"""

from __future__ import annotations

from dataclasses import replace
import pickle
import threading

import numpy as np

from seg_ros.core.decode.instances import Instances
from seg_ros.core.segmenter import SegmentationResult
from seg_ros.core.track.bytetrack import instance_ids
from seg_ros.core.track.settings import TrackSettings


def relabel(result: SegmentationResult, ids: np.ndarray) -> SegmentationResult:
    """
    Return ``result`` with its instances' ids replaced by ``ids`` (uint16, 0: none).

    The instance map is rewritten through a table from the segmenter's ids to the new ones; an
    instance with id 0 leaves it.
    """
    instances = result.instances
    if np.array_equal(ids, instances.ids):
        return result
    table = np.zeros(int(instances.ids.max(initial=0)) + 1, np.uint16)
    table[instances.ids] = ids
    instance_map = None if result.instance_map is None else np.take(table, result.instance_map)
    renumbered = Instances(instances.xyxy, instances.masks, instances.class_id, instances.score,
                           ids.astype(np.uint16))
    return replace(result, instances=renumbered, instance_map=instance_map)


class FrameTracks:
    """
    One camera's tracks: its frames' instances in, track ids out (see the module).

    Frames come one at a time (a camera has one frame in hand); :meth:`configure` may be called
    from another thread between them.
    """

    def __init__(self, settings: TrackSettings) -> None:
        """Start with no track."""
        self._lock = threading.Lock()
        self.failures = 0
        self.last_failure = ''
        self._earlier_resets = 0
        self.configure(settings)

    def configure(self, settings: TrackSettings) -> None:
        """Take new settings: the tracks start afresh (ids keep counting up)."""
        with self._lock:
            self.settings = settings
            self._start(settings)

    def _start(self, settings: TrackSettings) -> None:
        previous = getattr(self, '_tracker', None)
        if previous is not None:
            self._earlier_resets += previous.resets
        # An id is never given twice on one camera: the new tracker carries on the numbering.
        self._tracker = settings.tracker(previous.next_id if previous is not None else 1)

    def snapshot(self) -> bytes:
        """
        Return the tracks as they stand, for :meth:`restore` in another process.

        ``seg-ros fleet`` hands a bag's tracks from one chunk of frames to the next this way
        (the chunks may run on different workers), so its ids are those of ``seg-ros bag``.
        """
        with self._lock:
            return pickle.dumps((self._tracker, self._earlier_resets, self.failures,
                                 self.last_failure), protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, snapshot: bytes) -> None:
        """Carry on from the tracks of :meth:`snapshot` (the settings stay this object's)."""
        tracker, earlier_resets, failures, last_failure = pickle.loads(snapshot)
        with self._lock:
            self._tracker, self._earlier_resets = tracker, earlier_resets
            self.failures, self.last_failure = failures, last_failure

    @property
    def resets(self) -> int:
        """Return how often time went back or jumped and the tracks started afresh."""
        return self._earlier_resets + self._tracker.resets

    @property
    def live(self) -> int:
        """Return how many tracks are alive, identified or not."""
        return len(self._tracker)

    def identify(self, result: SegmentationResult, stamp_s: float | None) -> SegmentationResult:
        """
        Return ``result`` with track ids, or as it is (no instances, tracking off, a failure).

        :param result: a segmented frame (instances numbered 1..N by the segmenter).
        :param stamp_s: the frame's time in seconds (header stamp), or None.
        """
        instances = result.instances
        if instances is None or not self.settings.tracking:
            return result
        with self._lock:
            try:
                ids = instance_ids(self._tracker.update(instances.xyxy, instances.score,
                                                        stamp_s))
                return relabel(result, ids)
            except Exception as error:  # never lose a frame to the tracker
                self.failures += 1
                self.last_failure = f'{type(error).__name__}: {error}'
                self._start(self.settings)
                return result
