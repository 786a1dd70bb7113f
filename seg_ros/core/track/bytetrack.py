"""
ByteTrack association: object identities that last across frames.

API::

    tracker = ByteTracker(lost_track_buffer=30, frame_rate=30.0, ...)
    ids = tracker.update(xyxy, scores, stamp=None)   # (N,) int64: 1, 2, ... or 0 (no id yet)
    tracker.reset()
    instance_ids(ids) -> (N,) uint16                 # as ~/instance_map holds them

The algorithm and its parameters are those of roboflow ``trackers`` 2.6's ``ByteTrackTracker``
in its fixed-rate mode (one Kalman step a call), and its identities are the same given the same
boxes and scores frame by frame (``test/test_core_track.py`` measures it), offset by one: ids
start at 1 here, 0 meaning "no id" (the instance map's background):

1. every track's Kalman filter predicts its box (a constant-velocity model of the four corners);
2. detections scoring at least ``high_conf_det_threshold`` are matched to all tracks by IoU
   (an optimal assignment, :func:`.assignment.assign`; a pair needs IoU >=
   ``minimum_iou_threshold``);
3. the lower-scoring detections are matched, the same way, to the tracks still unmatched;
4. a high-scoring detection left over starts a new track when it scores at least
   ``track_activation_threshold``; a track gets its id once matched on
   ``minimum_consecutive_frames`` consecutive frames (its first frame counts: ``trackers``
   gives an id at the earliest on a track's second frame, whatever the value; with
   ``first_frame_ids`` and ``minimum_consecutive_frames`` 1, a track has its id on the frame
   it starts, what a node publishing every frame's objects needs: the tracks are the same,
   each identified a frame earlier);
5. a track unmatched for more than ``ceil(frame_rate / 30 * lost_track_buffer)`` calls is
   dropped (``lost_track_buffer`` counts frames of a 30 fps video), and an unconfirmed one
   at its first miss.

What ``trackers`` does not do, a node needs: with a ``stamp`` (seconds), time going backwards or
a gap longer than ``reset_gap`` starts the tracks afresh (a bag played again, a camera that
stopped) rather than matching objects seen seconds ago; ids keep counting up across such a
reset (an id is never given twice by one tracker). Detections whose box is not finite get no id
and never reach a track. NumPy only (1.24 to 2.x): the node's runtime, where ``trackers``
(NumPy >= 2) does not install.
"""

from __future__ import annotations

import math

import numpy as np

from seg_ros.core.track.assignment import assign

# The Kalman filter of trackers' ByteTrack tracklets (XYXY state: corners and their velocities):
# identity initial covariance, measurement noise 0.1, process noise 0.01 a frame.
STATE_SIZE = 8
_TRANSITION = np.eye(STATE_SIZE)
_TRANSITION[:4, 4:] = np.eye(4)
_OBSERVATION = np.eye(4, STATE_SIZE)
_IDENTITY = np.eye(STATE_SIZE)
_MEASUREMENT_NOISE = np.eye(4) * 0.1
_PROCESS_NOISE = np.eye(STATE_SIZE) * 0.01
#: A gap between two stamps longer than this (seconds) starts the tracks afresh by default.
DEFAULT_RESET_GAP = 2.0


def box_iou(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """
    Return the (N, M) float32 IoU of two sets of ``x_min, y_min, x_max, y_max`` boxes.

    Computed in float64 and stored as float32, 0 where the union is empty (supervision's
    ``box_iou_batch``, which ``trackers`` uses: the same values).
    """
    first = np.asarray(first, np.float64).reshape(-1, 4)
    second = np.asarray(second, np.float64).reshape(-1, 4)
    if not len(first) or not len(second):
        return np.zeros((len(first), len(second)), np.float32)
    x0 = np.maximum(first[:, None, 0], second[None, :, 0])
    y0 = np.maximum(first[:, None, 1], second[None, :, 1])
    width = np.clip(np.minimum(first[:, None, 2], second[None, :, 2]) - x0, 0.0, None)
    height = np.clip(np.minimum(first[:, None, 3], second[None, :, 3]) - y0, 0.0, None)
    inter = width * height
    area_first = (first[:, 2] - first[:, 0]) * (first[:, 3] - first[:, 1])
    area_second = (second[:, 2] - second[:, 0]) * (second[:, 3] - second[:, 1])
    union = area_first[:, None] + area_second[None, :] - inter
    iou = np.zeros(inter.shape, np.float32)
    np.divide(inter, union, out=iou, where=union > 0)
    return iou


def instance_ids(track_ids: np.ndarray) -> np.ndarray:
    """
    Return track ids as mono16 instance-map values: 1 to 65535, wrapping; 0 stays 0 (no id).

    A node running for hours gives more than 65535 tracks: id 65536 is shown as 1 again, long
    after track 1 ended (at most 65535 tracks live at once in any case).
    """
    track_ids = np.asarray(track_ids, np.int64)
    return np.where(track_ids > 0, (track_ids - 1) % 65535 + 1, 0).astype(np.uint16)


class ByteTracker:
    """
    ByteTrack over one stream of detections (see the module). Not thread-safe.

    :ivar frames: calls since the last reset.
    :ivar resets: how many times the tracks started afresh on a stamp (backwards or a gap).
    """

    def __init__(self, lost_track_buffer: int = 30, frame_rate: float = 30.0,
                 track_activation_threshold: float = 0.7, minimum_consecutive_frames: int = 2,
                 minimum_iou_threshold: float = 0.1, high_conf_det_threshold: float = 0.6,
                 reset_gap: float = DEFAULT_RESET_GAP, first_frame_ids: bool = False,
                 first_id: int = 1) -> None:
        """
        Check and keep the parameters (``trackers`` 2.6's names and defaults).

        :param lost_track_buffer: frames (of a 30 fps video) a lost track is kept, >= 0.
        :param frame_rate: the stream's frames a second, > 0: scales ``lost_track_buffer``.
        :param track_activation_threshold: lowest score that starts a track, 0 to 1.
        :param minimum_consecutive_frames: consecutive matched frames before a track gets an
            id, >= 1.
        :param minimum_iou_threshold: lowest IoU of a match, 0 to 1.
        :param high_conf_det_threshold: score splitting the first and second association,
            0 to 1.
        :param reset_gap: seconds between two stamps beyond which the tracks start afresh, > 0.
        :param first_frame_ids: with ``minimum_consecutive_frames`` 1, give a new track its id
            on the frame it starts (False: at its first match, as ``trackers`` does).
        :param first_id: the first id given, >= 1 (a tracker that replaces another on the same
            stream carries on from its :attr:`next_id`: no id is given twice).
        :raises ValueError: naming the parameter.
        """
        if isinstance(lost_track_buffer, bool) or int(lost_track_buffer) != lost_track_buffer \
                or lost_track_buffer < 0:
            raise ValueError(f'lost_track_buffer={lost_track_buffer!r} must be an integer >= 0')
        if not (math.isfinite(frame_rate) and frame_rate > 0):
            raise ValueError(f'frame_rate={frame_rate!r} must be a positive number')
        for name, value in (('track_activation_threshold', track_activation_threshold),
                            ('minimum_iou_threshold', minimum_iou_threshold),
                            ('high_conf_det_threshold', high_conf_det_threshold)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f'{name}={value!r} must be between 0 and 1')
        if int(minimum_consecutive_frames) != minimum_consecutive_frames \
                or minimum_consecutive_frames < 1:
            raise ValueError(f'minimum_consecutive_frames={minimum_consecutive_frames!r} must '
                             'be an integer >= 1')
        if isinstance(first_id, bool) or int(first_id) != first_id or first_id < 1:
            raise ValueError(f'first_id={first_id!r} must be an integer >= 1')
        if not (math.isfinite(reset_gap) and reset_gap > 0):
            raise ValueError(f'reset_gap={reset_gap!r} must be a positive number of seconds')
        scaled = frame_rate / 30.0 * lost_track_buffer
        self.maximum_frames_without_update = 0 if lost_track_buffer == 0 \
            else max(1, math.ceil(scaled))
        self.track_activation_threshold = float(track_activation_threshold)
        self.minimum_consecutive_frames = int(minimum_consecutive_frames)
        self.minimum_iou_threshold = float(minimum_iou_threshold)
        self.high_conf_det_threshold = float(high_conf_det_threshold)
        self.reset_gap = float(reset_gap)
        self.first_frame_ids = bool(first_frame_ids) and self.minimum_consecutive_frames == 1
        self._next_id = int(first_id)
        self.resets = 0
        self.reset()

    def reset(self) -> None:
        """Forget every track (ids keep counting up)."""
        self._state = np.zeros((0, STATE_SIZE, 1))
        self._covariance = np.zeros((0, STATE_SIZE, STATE_SIZE))
        self._ids = np.zeros(0, np.int64)            # 0 until confirmed (or first_frame_ids)
        self._confirmed = np.zeros(0, bool)          # confirmed as trackers confirms a track
        self._misses = np.zeros(0, np.int64)         # calls since the last match
        self._streak = np.zeros(0, np.int64)         # consecutive matched calls
        self._last_stamp: float | None = None
        self.frames = 0

    @property
    def next_id(self) -> int:
        """Return the id the next identified track will get."""
        return self._next_id

    def __len__(self) -> int:
        """Return the number of live tracks (confirmed or not)."""
        return len(self._ids)

    def update(self, xyxy: np.ndarray, scores: np.ndarray,
               stamp: float | None = None) -> np.ndarray:
        """
        Associate one frame's detections with the tracks; return each detection's id.

        :param xyxy: (N, 4) boxes ``x_min, y_min, x_max, y_max`` (pixels).
        :param scores: (N,) detection scores, 0 to 1.
        :param stamp: the frame's time in seconds, or None (no reset on time).
        :return: (N,) int64, in the detections' order: the track's id, or 0 for a detection
            without one (a track not confirmed yet, a low score left unmatched, a box with
            NaN or infinity).
        :raises ValueError: arrays of the wrong shape.
        """
        boxes = np.asarray(xyxy, np.float64)
        confidences = np.asarray(scores).reshape(-1)
        if confidences.dtype.kind != 'f':
            confidences = confidences.astype(np.float64)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4 or len(boxes) != len(confidences):
            raise ValueError(f'xyxy must be (N, 4) and scores (N,), got {boxes.shape} and '
                             f'{confidences.shape}')
        self._check_time(stamp)
        ids = np.zeros(len(boxes), np.int64)
        usable = np.flatnonzero(np.all(np.isfinite(boxes), axis=1) & np.isfinite(confidences))
        if not len(self._ids) and not len(usable):
            return ids
        self.frames += 1
        self._predict()
        predicted = self._state[:, :4, 0].copy()
        # Scores compared in their own precision (float32 scores against float32(threshold)),
        # as NumPy compares an array with a Python number.
        split = confidences.dtype.type(self.high_conf_det_threshold)
        high = usable[confidences[usable] >= split]
        low = usable[confidences[usable] < split]
        tracks = np.arange(len(self._ids))
        matched, unmatched_tracks, unmatched_high = self._associate(predicted, tracks, boxes,
                                                                    high)
        self._apply(matched, boxes, ids)
        matched, _, _ = self._associate(predicted, unmatched_tracks, boxes, low)
        self._apply(matched, boxes, ids)
        # ... but the activation threshold in float64, as trackers compares float(score).
        spawned = unmatched_high[confidences[unmatched_high].astype(np.float64)
                                 >= self.track_activation_threshold]
        self._spawn(boxes[spawned])
        if self.first_frame_ids and len(spawned):
            # New tracks come last, in the detections' order: numbered as they start.
            new_ids = np.arange(self._next_id, self._next_id + len(spawned))
            self._ids[len(self._ids) - len(spawned):] = new_ids
            self._next_id += len(spawned)
            ids[spawned] = new_ids
        self._prune()
        return ids

    # ---- steps ---------------------------------------------------------------------------------
    def _check_time(self, stamp: float | None) -> None:
        if stamp is None:
            return
        stamp = float(stamp)
        if self._last_stamp is not None and (stamp < self._last_stamp
                                             or stamp - self._last_stamp > self.reset_gap):
            self.reset()
            self.resets += 1
        if math.isfinite(stamp):
            self._last_stamp = stamp

    def _predict(self) -> None:
        """Every track one constant-velocity step ahead (x = F x, P = F P F' + Q)."""
        self._state = _TRANSITION @ self._state
        self._covariance = _TRANSITION @ self._covariance @ _TRANSITION.T + _PROCESS_NOISE
        # A track unmatched at the last call breaks its streak of consecutive matches.
        self._streak[self._misses > 0] = 0
        self._misses += 1

    def _associate(self, predicted: np.ndarray, tracks: np.ndarray, boxes: np.ndarray,
                   detections: np.ndarray) -> tuple[list, np.ndarray, np.ndarray]:
        """
        Match ``tracks`` to ``detections`` (indices) by IoU.

        :return: (track, detection) pairs in ascending track order, the unmatched tracks and
            the unmatched detections (ascending).
        """
        if not len(tracks) or not len(detections):
            return [], tracks, detections
        iou = box_iou(predicted[tracks], boxes[detections])
        rows, columns = assign(iou, maximize=True)
        keep = iou[rows, columns] >= np.float32(self.minimum_iou_threshold)
        rows, columns = rows[keep], columns[keep]
        matched = list(zip(tracks[rows].tolist(), detections[columns].tolist()))
        return (matched, np.delete(tracks, rows), np.delete(detections, columns))

    def _apply(self, matched: list, boxes: np.ndarray, ids: np.ndarray) -> None:
        """Update the matched tracks with their boxes; confirm those with a long streak."""
        if not matched:
            return
        tracks = np.array([track for track, _ in matched])
        measured = boxes[[detection for _, detection in matched]][:, :, None]
        state, covariance = self._state[tracks], self._covariance[tracks]
        # The Kalman update, in trackers' order of operations (Joseph form).
        innovation = measured - _OBSERVATION @ state
        gain_part = covariance @ _OBSERVATION.T
        innovation_covariance = _OBSERVATION @ gain_part + _MEASUREMENT_NOISE
        gain = gain_part @ np.linalg.inv(innovation_covariance)
        self._state[tracks] = state + gain @ innovation
        correction = _IDENTITY - gain @ _OBSERVATION
        self._covariance[tracks] = (correction @ covariance @ np.swapaxes(correction, 1, 2)
                                    + gain @ _MEASUREMENT_NOISE @ np.swapaxes(gain, 1, 2))
        self._misses[tracks] = 0
        self._streak[tracks] += 1
        self._confirmed[tracks] |= self._streak[tracks] >= self.minimum_consecutive_frames
        for track, detection in matched:  # ids in match order, as trackers gives them
            if not self._ids[track] and self._confirmed[track]:
                self._ids[track] = self._next_id
                self._next_id += 1
            ids[detection] = self._ids[track]

    def _spawn(self, boxes: np.ndarray) -> None:
        """Start a track (unconfirmed, one match so far) at each box."""
        count = len(boxes)
        if not count:
            return
        state = np.zeros((count, STATE_SIZE, 1))
        state[:, :4, 0] = boxes
        self._state = np.concatenate([self._state, state])
        self._covariance = np.concatenate([self._covariance,
                                           np.broadcast_to(_IDENTITY, (count, 8, 8))])
        self._ids = np.concatenate([self._ids, np.zeros(count, np.int64)])
        self._confirmed = np.concatenate([self._confirmed, np.zeros(count, bool)])
        self._misses = np.concatenate([self._misses, np.zeros(count, np.int64)])
        self._streak = np.concatenate([self._streak, np.ones(count, np.int64)])

    def _prune(self) -> None:
        """Drop tracks lost too long, and unconfirmed ones not matched at this call."""
        # An unconfirmed track goes at its first miss, identified at its start or not: the
        # tracks stay the reference's.
        confirmed = self._confirmed | (self._streak >= self.minimum_consecutive_frames)
        keep = (self._misses <= self.maximum_frames_without_update) \
            & (confirmed | (self._misses == 0))
        if np.all(keep):
            return
        self._state, self._covariance = self._state[keep], self._covariance[keep]
        self._confirmed = self._confirmed[keep]
        self._ids, self._misses, self._streak = (self._ids[keep], self._misses[keep],
                                                 self._streak[keep])
