"""
ByteTracker against the reference: roboflow ``trackers`` 2.6 ``ByteTrackTracker``, frame by frame.

Given the same boxes and scores every frame, both must give every detection the same identity
(ours = theirs + 1; 0 = theirs -1, "no id"). Streams: randomised (hypothesis: objects that move,
vanish, come back, overlap, duplicate, score high and low, with random parameters), a video of
the embedded ENet on an animated synthetic street (cars drive, people walk), and, where
``../shared`` has them, the real ENet Cityscapes on a camera panning and zooming over the two
real street photos. Detections come from the segmenter itself: connected components of
``instance_classes``, each scored by its mean confidence (so both association stages work). The
assignment is checked against SciPy's ``linear_sum_assignment``, ties included.

``trackers`` needs NumPy >= 2 and SciPy (the ``test`` extra installs it where it can): without it
the comparisons are skipped with the reason; our tracker is NumPy only.
"""

import os

import cv2
from hypothesis import given, HealthCheck, settings, strategies as st
import numpy as np
import pytest

from seg_ros.core.segmenter import Segmenter, SegmenterConfig
from seg_ros.core.track import ByteTracker
from seg_ros.core.track.assignment import assign
from seg_ros.core.track.bytetrack import box_iou, instance_ids
from seg_ros.paths import default_label_paths

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES_DIR = os.path.join(os.path.dirname(REPO_ROOT), 'shared', 'images')
EMBEDDED = os.path.join(REPO_ROOT, 'models', 'enet-synth', 'enet-synth.onnx')
MOVING_CLASSES = ('Person', 'Rider', 'Car', 'Truck', 'Bus', 'Motorcycle', 'Bicycle')
# trackers' defaults, and thresholds under the mean confidence a segmenter's components score
# (about 0.4 for the embedded model): many tracks, both association stages at work.
VIDEO_PARAMETERS = ({'frame_rate': 10.0},
                    {'frame_rate': 10.0, 'track_activation_threshold': 0.35,
                     'high_conf_det_threshold': 0.45, 'minimum_consecutive_frames': 1})


def reference_tracker(**parameters):
    trackers = pytest.importorskip('trackers', reason='roboflow trackers (NumPy >= 2) is the '
                                   'reference: pip install trackers')
    return trackers.ByteTrackTracker(**parameters)


def reference_ids(tracker, boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Return the reference's id of each detection, in our convention (its id + 1, 0: none)."""
    import supervision
    detections = supervision.Detections(xyxy=boxes, confidence=scores,
                                        class_id=np.zeros(len(boxes), int),
                                        data={'index': np.arange(len(boxes))})
    tracked = tracker.update(detections)
    ids = np.zeros(len(boxes), np.int64)
    if len(tracked):
        ids[tracked.data['index']] = np.where(tracked.tracker_id >= 0, tracked.tracker_id + 1, 0)
    return ids


def identical_share(frames, **parameters) -> tuple[float, int]:
    """Run both trackers on ``frames`` of (boxes, scores); return (share identical, ids seen)."""
    reference = reference_tracker(**parameters)
    ours = ByteTracker(**parameters)
    same, seen = 0, set()
    for boxes, scores in frames:
        expected = reference_ids(reference, boxes, scores)
        found = ours.update(boxes, scores)
        same += int(np.array_equal(found, expected))
        seen.update(found[found > 0].tolist())
    return same / max(len(frames), 1), len(seen)


# ---- the assignment ----------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(st.integers(0, 7), st.integers(0, 7), st.integers(0, 3), st.booleans(), st.data())
def test_assignment_is_scipys_ties_included(rows, columns, levels, maximize, data):
    optimize = pytest.importorskip('scipy.optimize')
    if levels:   # few distinct values: many equal-cost alternatives
        values = data.draw(st.lists(st.integers(0, levels), min_size=rows * columns,
                                    max_size=rows * columns))
        matrix = np.array(values, float).reshape(rows, columns) / levels
    else:
        values = data.draw(st.lists(st.floats(-1e3, 1e3), min_size=rows * columns,
                                    max_size=rows * columns))
        matrix = np.array(values, float).reshape(rows, columns)
    expected = optimize.linear_sum_assignment(matrix, maximize=maximize)
    found = assign(matrix, maximize)
    assert np.array_equal(found[0], expected[0]) and np.array_equal(found[1], expected[1])


def test_iou_is_supervisions():
    supervision = pytest.importorskip('supervision')
    rng = np.random.default_rng(1)
    corners = rng.uniform(0, 100, (12, 2, 2))
    boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
    first, second = boxes[:7].astype(np.float32), boxes[4:].astype(np.float32)
    second[-1] = (5, 5, 5, 9)                                # no area
    expected = supervision.box_iou_batch(first, second)
    assert box_iou(first, second).dtype == np.float32
    assert np.array_equal(box_iou(first, second), expected)


# ---- randomised streams ----------------------------------------------------------------------
@st.composite
def streams(draw):
    """Return (parameters, frames): objects moving, missing, overlapping, duplicated."""
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    count = draw(st.integers(0, 12))
    length = draw(st.integers(1, 40))
    start = rng.uniform(0, 500, (count, 2))
    velocity = rng.normal(0, draw(st.sampled_from([0.0, 3.0, 15.0])), (count, 2))
    size = rng.uniform(4, 150, (count, 2))
    missing = draw(st.sampled_from([0.0, 0.2, 0.5]))
    low_share = draw(st.sampled_from([0.0, 0.3, 0.7]))
    frames = []
    for index in range(length):
        corner = start + velocity * index + rng.normal(0, 2, (count, 2))
        boxes = np.concatenate([corner, corner + size], axis=1)
        shown = rng.random(count) >= missing
        scores = np.where(rng.random(count) < low_share, rng.uniform(0.05, 0.6, count),
                          rng.uniform(0.6, 1.0, count))
        boxes, scores = boxes[shown], scores[shown]
        if len(boxes) and rng.random() < 0.2:           # a duplicate detection
            boxes = np.concatenate([boxes, boxes[:1]])
            scores = np.concatenate([scores, scores[:1]])
        if rng.random() < 0.1:                          # an empty frame
            boxes, scores = np.zeros((0, 4)), np.zeros(0)
        order = rng.permutation(len(boxes))
        frames.append((np.round(boxes[order], 1).astype(np.float32),
                       scores[order].astype(np.float32)))
    parameters = {
        'lost_track_buffer': draw(st.integers(0, 40)),
        'frame_rate': draw(st.sampled_from([5.0, 10.0, 15.0, 30.0, 60.0])),
        'track_activation_threshold': draw(st.sampled_from([0.25, 0.5, 0.7, 0.9])),
        'minimum_consecutive_frames': draw(st.integers(1, 4)),
        'minimum_iou_threshold': draw(st.sampled_from([0.05, 0.1, 0.3, 0.6])),
        'high_conf_det_threshold': draw(st.sampled_from([0.3, 0.6, 0.8])),
    }
    return parameters, frames


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_randomised_streams_get_the_references_ids(stream):
    parameters, frames = stream
    share, _ = identical_share(frames, **parameters)
    assert share == 1.0


# ---- video -----------------------------------------------------------------------------------
def detections(segmenter: Segmenter, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the frame's instances as boxes and scores (mean confidence of each mask)."""
    result = segmenter.run(frame, encoding='bgr8', color_mask=False, overlay=False,
                           confidence=True)
    instances = result.instances
    confidence = result.confidence_full.astype(np.float64) / 255.0
    scores = np.array([confidence[mask].mean() for mask in instances.masks], np.float32)
    return instances.xyxy, scores.reshape(-1)


def test_embedded_enet_on_an_animated_street_gets_the_references_ids():
    from seg_ros.data.synthetic import SceneAnimation
    classes, colors = default_label_paths(EMBEDDED)
    segmenter = Segmenter(SegmenterConfig(EMBEDDED, input_width=512, input_height=256,
                                          classes_path=classes, colors_path=colors,
                                          instance_classes=MOVING_CLASSES,
                                          min_instance_area=40, confidence=True))
    street = SceneAnimation(640, 320, seed=3)
    frames = [detections(segmenter, street.frame(index / 10.0)[0]) for index in range(40)]
    assert sum(len(boxes) for boxes, _ in frames) > 40, 'the street shows moving objects'
    assert_same_ids_on_video(frames)


def assert_same_ids_on_video(frames: list) -> None:
    for parameters in VIDEO_PARAMETERS:
        share, ids = identical_share(frames, **parameters)
        assert share == 1.0, f'{100 * share:.1f} % of frames with identical ids ({parameters})'
    assert ids > 5, 'objects are tracked'


def camera_over_photos(width: int = 640, height: int = 360, frames_per_photo: int = 20):
    """Yield frames of a camera panning and zooming over each real street photo in turn."""
    for name in sorted(os.listdir(IMAGES_DIR)):
        photo = cv2.imread(os.path.join(IMAGES_DIR, name))
        photo_height, photo_width = photo.shape[:2]
        for index in range(frames_per_photo):
            t = index / max(frames_per_photo - 1, 1)
            zoom = 1.0 + 0.5 * t                           # the window shrinks by a third
            window_w = photo_width / zoom
            window_h = min(window_w * height / width, photo_height)
            x0 = (photo_width - window_w) * (0.2 + 0.6 * t)
            y0 = (photo_height - window_h) * 0.5
            # The window's corners to the frame's corners: a camera's pan and zoom.
            scale_x, scale_y = width / window_w, height / window_h
            affine = np.array([[scale_x, 0.0, -x0 * scale_x], [0.0, scale_y, -y0 * scale_y]])
            yield cv2.warpAffine(photo, affine, (width, height), flags=cv2.INTER_LINEAR)


def test_real_enet_on_a_camera_over_street_photos_gets_the_references_ids(enet_dir):
    net = os.path.join(enet_dir, 'enet-model.net')
    classes, colors = default_label_paths(net)
    segmenter = Segmenter(SegmenterConfig(net, classes_path=classes, colors_path=colors,
                                          instance_classes=MOVING_CLASSES,
                                          min_instance_area=60, confidence=True))
    if not segmenter.makes_confidence:  # the scores are each mask's mean confidence
        pytest.skip(f'the real ENet gives no confidence here: {segmenter.confidence_reason}')
    frames = [detections(segmenter, frame) for frame in camera_over_photos()]
    assert sum(len(boxes) for boxes, _ in frames) > 40, 'the photos show people and cars'
    assert_same_ids_on_video(frames)


# ---- what a node needs beyond the reference ----------------------------------------------------
def test_time_going_back_or_a_gap_starts_tracks_afresh_with_new_ids():
    box = np.array([[10, 10, 50, 50]], np.float32)
    score = np.array([0.9], np.float32)
    tracker = ByteTracker(minimum_consecutive_frames=1, reset_gap=2.0)
    assert tracker.update(box, score, stamp=100.0).tolist() == [0]     # a new track
    assert tracker.update(box, score, stamp=100.1).tolist() == [1]     # confirmed
    assert tracker.update(box, score, stamp=101.5).tolist() == [1]     # 1.4 s: kept
    assert tracker.update(box, score, stamp=104.0).tolist() == [0]     # 2.5 s gap: afresh
    assert tracker.update(box, score, stamp=104.1).tolist() == [2]     # a new id, never 1
    assert tracker.update(box, score, stamp=50.0).tolist() == [0]      # back in time
    assert tracker.update(box, score, stamp=50.1).tolist() == [3]
    assert tracker.resets == 2 and len(tracker) == 1


def test_bad_detections_get_no_id_and_never_stop_the_frame():
    tracker = ByteTracker(minimum_consecutive_frames=1)
    boxes = np.array([[0, 0, 10, 10], [np.nan, 0, 10, 10], [0, 0, np.inf, 5]], np.float32)
    scores = np.array([0.9, 0.9, 0.9], np.float32)
    for _ in range(3):
        ids = tracker.update(boxes, scores)
    assert ids.tolist() == [1, 0, 0]
    assert tracker.update(np.zeros((0, 4)), np.zeros(0)).tolist() == []
    with pytest.raises(ValueError, match='xyxy must be'):
        tracker.update(np.zeros((2, 3)), np.zeros(2))


def test_thousands_of_detections():
    rng = np.random.default_rng(4)
    corners = rng.uniform(0, 4000, (1000, 2))
    boxes = np.concatenate([corners, corners + 20], axis=1).astype(np.float32)
    tracker = ByteTracker(minimum_consecutive_frames=1)
    for step in range(3):
        ids = tracker.update(boxes + step, np.full(len(boxes), 0.9, np.float32))
    assert len(set(ids.tolist())) == len(boxes) and ids.min() > 0


@pytest.mark.parametrize('parameters, name', [
    ({'lost_track_buffer': -1}, 'lost_track_buffer'),
    ({'frame_rate': 0.0}, 'frame_rate'),
    ({'track_activation_threshold': 1.5}, 'track_activation_threshold'),
    ({'minimum_consecutive_frames': 0}, 'minimum_consecutive_frames'),
    ({'minimum_iou_threshold': -0.1}, 'minimum_iou_threshold'),
    ({'high_conf_det_threshold': 2.0}, 'high_conf_det_threshold'),
    ({'reset_gap': 0.0}, 'reset_gap'),
    ({'first_id': 0}, 'first_id'),
])
def test_parameters_are_checked(parameters, name):
    with pytest.raises(ValueError, match=name):
        ByteTracker(**parameters)


def test_track_ids_as_instance_map_values_wrap_past_65535():
    ids = np.array([0, 1, 2, 65535, 65536, 65537, 131071], np.int64)
    assert instance_ids(ids).tolist() == [0, 1, 2, 65535, 1, 2, 1]
    assert instance_ids(ids).dtype == np.uint16


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_first_frame_ids_are_the_same_tracks_identified_a_frame_earlier(stream):
    """
    first_frame_ids (a node's default): the reference's tracks, each with its id from its start.

    Against ByteTracker as trackers numbers (the randomised test above shows it equal to the
    reference): every detection identified there is identified here, one id of ours for one
    of theirs all along; a detection identified only here starts a track (an id never seen
    before) that the plain tracker identifies later under the same mapping, or never.
    """
    parameters, frames = stream
    parameters = {**parameters, 'minimum_consecutive_frames': 1}
    plain, ours = ByteTracker(**parameters), ByteTracker(**parameters, first_frame_ids=True)
    theirs_to_ours, seen = {}, set()
    started = {}   # our id of a track whose first frames the plain tracker left unidentified
    for boxes, scores in frames:
        expected, found = plain.update(boxes, scores), ours.update(boxes, scores)
        assert not np.any((expected > 0) & (found == 0))
        for theirs, mine in zip(expected.tolist(), found.tolist()):
            if theirs:
                assert theirs_to_ours.setdefault(theirs, mine) == mine
                started.pop(mine, None)
            elif mine:
                assert mine not in seen or mine in started, 'an old id on an unidentified one'
                started[mine] = True
            seen.add(mine)
    assert len(set(theirs_to_ours.values())) == len(theirs_to_ours)


def test_first_frame_ids_give_a_new_object_its_id_at_once():
    box = np.array([[10, 10, 50, 50], [60, 60, 90, 90]], np.float32)
    scores = np.array([0.9, 0.95], np.float32)
    tracker = ByteTracker(minimum_consecutive_frames=1, first_frame_ids=True)
    assert tracker.update(box, scores, stamp=1.0).tolist() == [1, 2]   # detection order
    assert tracker.update(box[::-1] + 2, scores[::-1], stamp=1.1).tolist() == [2, 1]
    # Only with minimum_consecutive_frames 1: 2 still waits for a second frame.
    waiting = ByteTracker(minimum_consecutive_frames=2, first_frame_ids=True)
    assert waiting.update(box, scores).tolist() == [0, 0]
    assert waiting.update(box, scores).tolist() == [1, 2]
