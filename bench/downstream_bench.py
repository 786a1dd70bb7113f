"""
Cost at 1280x720 of what downstream autonomy needs: confidence, organized cloud, objects, tracks.

Per row, medians of ``--rounds`` runs, the cases of a row interleaved round by round (the
machine is shared: side by side, never one after the other), wall and CPU milliseconds (the
process's CPU time, every thread's: what the step costs the machine, little moved by the other
processes sharing it, unlike wall time):

* ``confidence``: ``Segmenter.run`` (class map, colour mask and overlay at frame size) with the
  confidence map against without, per model: the embedded ENet (scores out: the softmax in
  NumPy, only on frames that ask) and, where ``../shared/models/enet-cityscapes`` has it, the
  real ENet ``.net`` (its fused conversion on OpenVINO: the probability computed in the graph
  behind the argmax, every frame once ``confidence`` is set). A real street photo resized to
  1280x720;
* ``organized cloud``: :func:`seg_ros.core.geometry.points.organized_points` from 720p depth on
  the class map at 1280x720 and at the network's 1024x512 (``output_resolution: model``);
* ``objects``: :func:`seg_ros.core.geometry.objects.objects_3d` on the 1024x512 cloud, 20 and
  1000 instances; and the node's path for ``~/objects``,
  :func:`seg_ros.core.geometry.objects.instance_points` (every 720p depth pixel of an instance)
  then ``objects_3d``, with 20 instances;
* ``tracks``: :meth:`seg_ros.core.track.ByteTracker.update` with 20 and 100 moving objects a
  frame, and roboflow ``trackers`` 2.6 on the same detections where it is installed; and the
  node's per-frame step, :meth:`seg_ros.frame_tracks.FrameTracks.identify` (tracker and the
  1280x720 instance map rewritten with the track ids), with 20 moving instances.

Usage::

    .venv/bin/python bench/downstream_bench.py [--rounds 15] [--enet PATH]
"""

import argparse
import os
import statistics
import time

import cv2
import numpy as np

from seg_ros.core.decode.instances import Instances
from seg_ros.core.geometry.camera import Intrinsics
from seg_ros.core.geometry.objects import instance_points, objects_3d
from seg_ros.core.geometry.points import organized_points
from seg_ros.core.segmenter import SegmentationResult, Segmenter, SegmenterConfig
from seg_ros.core.track import ByteTracker, TrackSettings
from seg_ros.data import synthetic
from seg_ros.frame_tracks import FrameTracks
from seg_ros.paths import default_label_paths, embedded_model_path

WIDTH, HEIGHT = 1280, 720
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO_ROOT), 'shared')
CAMERA = Intrinsics(910.0, 910.0, 640.0, 360.0, WIDTH, HEIGHT)


def street_frame() -> tuple[np.ndarray, str]:
    """Return a 1280x720 BGR street frame: a real photo where ../shared has one."""
    path = os.path.join(SHARED, 'images', 'leuvenA.jpg')
    if os.path.isfile(path):
        return cv2.resize(cv2.imread(path), (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR), \
            'leuvenA.jpg resized'
    return synthetic.render_scene(np.random.default_rng(2), WIDTH, HEIGHT)[0], 'synthetic'


def interleaved(functions: list, rounds: int) -> list[tuple[float, float]]:
    """
    Return the median wall and CPU milliseconds of each function, called in turn every round.

    CPU: the process's, every thread's (OpenVINO's and OpenCV's too): what a step costs the
    machine, hardly moved by the other processes that share it (wall time is).
    """
    times = [([], []) for _ in functions]
    for _ in range(rounds):
        for function, (wall, cpu) in zip(functions, times):
            started, started_cpu = time.perf_counter(), time.process_time()
            function()
            wall.append((time.perf_counter() - started) * 1e3)
            cpu.append((time.process_time() - started_cpu) * 1e3)
    return [(statistics.median(wall), statistics.median(cpu)) for wall, cpu in times]


def confidence_rows(model: str, name: str, frame: np.ndarray, rounds: int) -> None:
    classes, colors = default_label_paths(model)
    plain = Segmenter(SegmenterConfig(model, classes_path=classes, colors_path=colors))
    asked = Segmenter(SegmenterConfig(model, classes_path=classes, colors_path=colors,
                                      confidence=True))
    if asked.confidence_reason:
        print(f'| {name} | no confidence: {asked.confidence_reason} |')
        return
    (wall, cpu), (wall_asked, cpu_asked) = interleaved(
        [lambda: plain.run(frame, encoding='bgr8'), lambda: asked.run(frame, encoding='bgr8')],
        rounds)
    where = 'in the graph' if 'seg_ros_confidence' in asked.backend.output_names else 'NumPy'
    print(f'| {name} ({asked.backend.describe()}; confidence {where}) | {wall:.1f} | '
          f'{wall_asked:.1f} | {wall_asked - wall:.1f} | {cpu:.1f} | {cpu_asked:.1f} | '
          f'{cpu_asked - cpu:.1f} | {100 * (cpu_asked - cpu) / cpu:.1f} % |')


def depth_720p(rng: np.random.Generator) -> np.ndarray:
    """Return metres at 720p: flat ground 1 m below the camera, 2 % holes (NaN)."""
    v = np.arange(HEIGHT, dtype=np.float32)[:, None] - np.float32(CAMERA.cy)
    with np.errstate(divide='ignore'):
        depth = np.where(v > 0, CAMERA.fy / np.maximum(v, 1e-6), np.nan).astype(np.float32)
    depth = np.broadcast_to(depth, (HEIGHT, WIDTH)).copy()
    depth[(depth > 20) | (rng.random(depth.shape) < 0.02)] = np.nan
    return depth


def moving_objects(count: int, frames: int, rng: np.random.Generator) -> list:
    """Return ``frames`` of (boxes, scores): ``count`` objects drifting across a 720p frame."""
    corner = rng.uniform(0, 1100, (count, 2))
    velocity = rng.normal(0, 4, (count, 2))
    size = rng.uniform(20, 120, (count, 2))
    stream = []
    for index in range(frames):
        top_left = corner + velocity * index
        boxes = np.concatenate([top_left, top_left + size], axis=1).astype(np.float32)
        stream.append((boxes, rng.uniform(0.3, 1.0, count).astype(np.float32)))
    return stream


def track_rows(rounds: int, rng: np.random.Generator) -> None:
    try:
        import supervision
        from trackers import ByteTrackTracker
    except ImportError:
        ByteTrackTracker = None
    for count in (20, 100):
        stream = moving_objects(count, rounds, rng)
        ours, spent = ByteTracker(), []
        reference, reference_spent = (ByteTrackTracker() if ByteTrackTracker else None), []
        for boxes, scores in stream:  # the two trackers side by side, frame by frame (CPU)
            started = time.process_time()
            ours.update(boxes, scores)
            spent.append((time.process_time() - started) * 1e3)
            if reference is not None:
                detections = supervision.Detections(xyxy=boxes, confidence=scores)
                started = time.process_time()
                reference.update(detections)
                reference_spent.append((time.process_time() - started) * 1e3)
        other = f'{statistics.median(reference_spent):.2f}' if reference_spent else \
            'not installed'
        print(f'| tracks: ByteTracker.update, {count} objects | {statistics.median(spent):.2f} '
              f'| trackers 2.6 on the same detections: {other} |')


def instances_of(boxes: np.ndarray, scores: np.ndarray) -> tuple[Instances, np.ndarray]:
    """Return 720p instances (ids 1..N) filling their boxes, and their instance map."""
    masks = np.zeros((len(boxes), HEIGHT, WIDTH), bool)
    for mask, (x0, y0, x1, y1) in zip(masks, np.clip(boxes, 0, [WIDTH, HEIGHT] * 2).astype(int)):
        mask[y0:y1, x0:x1] = True
    instances = Instances.numbered(boxes, masks, np.zeros(len(boxes)), scores)
    return instances, instances.instance_map()


def node_step_rows(depth: np.ndarray, rounds: int, rng: np.random.Generator) -> None:
    """Print the node's per-frame steps behind ~/objects and track ids, 20 instances at 720p."""
    stream = moving_objects(20, rounds, rng)
    frames = []
    for index, (boxes, scores) in enumerate(stream):
        instances, instance_map = instances_of(boxes, scores)
        frames.append(SegmentationResult(
            class_map=np.zeros((512, 1024), np.uint8), class_map_full=None, color_mask=None,
            overlay=None, inference_ms=0.0, total_ms=0.0, encoding='rgb8', instances=instances,
            instance_map=instance_map))
    tracks, spent = FrameTracks(TrackSettings()), []
    for index, result in enumerate(frames):
        started = time.process_time()
        tracked = tracks.identify(result, index / 30.0)
        spent.append((time.process_time() - started) * 1e3)
    points = int((frames[-1].instance_map > 0).sum())
    print(f'| tracks in the node: FrameTracks.identify, 20 instances, 720p map | '
          f'{statistics.median(spent):.2f} | {len(set(tracked.instances.ids.tolist()))} ids |')
    instances, instance_map = tracked.instances, tracked.instance_map

    def objects() -> None:
        xyz, owners = instance_points(depth, CAMERA, instance_map)
        objects_3d(xyz, owners, instances.ids, instances.class_id, instances.score, 10)
    [(_, cpu)] = interleaved([objects], rounds)
    print(f'| objects in the node: instance_points + objects_3d, 20 instances ({points} '
          f'points) | {cpu:.2f} | |')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=15)
    parser.add_argument('--enet', default=os.path.join(SHARED, 'models', 'enet-cityscapes',
                                                       'enet-model.net'))
    args = parser.parse_args()
    frame, source = street_frame()
    print(f'frame: {WIDTH}x{HEIGHT} ({source}), medians of {args.rounds} rounds, interleaved\n')
    print('| model | frame ms | with confidence ms | difference ms | frame CPU ms | with '
          'confidence CPU ms | confidence CPU ms | % of frame CPU |\n'
          '|---|---:|---:|---:|---:|---:|---:|---:|')
    confidence_rows(embedded_model_path(), 'embedded ENet', frame, args.rounds)
    if os.path.isfile(args.enet):
        confidence_rows(args.enet, 'real ENet .net', frame, args.rounds)
    else:
        print(f'| real ENet .net | not found at {args.enet} |')
    rng = np.random.default_rng(3)
    depth = depth_720p(rng)
    class_720p = rng.integers(0, 20, (HEIGHT, WIDTH)).astype(np.uint8)
    class_model = cv2.resize(class_720p, (1024, 512), interpolation=cv2.INTER_NEAREST_EXACT)
    instances = np.zeros((HEIGHT, WIDTH), np.uint16)
    colours = np.zeros((20, 3), np.uint8)
    print('\n| step | ms | CPU ms |\n|---|---:|---:|')
    for name, class_map in (('1280x720', class_720p), ('1024x512', class_model)):
        [(spent, cpu)] = interleaved([lambda: organized_points(depth, CAMERA, class_map,
                                                               instances, colours)], args.rounds)
        print(f'| organized cloud, class map {name} | {spent:.1f} | {cpu:.1f} |')
    cloud = organized_points(depth, CAMERA, class_model, instances, colours)
    xyz = np.stack([cloud['x'], cloud['y'], cloud['z']], axis=-1)
    for count in (20, 1000):
        owners = np.zeros(cloud.shape, np.uint16)
        side = int(np.ceil(np.sqrt(count)))
        rows, columns = np.divmod(np.arange(count), side)
        for index, (row, column) in enumerate(zip(rows, columns)):  # a patch each, 1/3 of frame
            top, left = 256 + row * (256 // side), column * (1024 // side)
            owners[top:top + 256 // side - 2, left:left + 1024 // side - 2] = index + 1
        ids = np.arange(1, count + 1)
        [(spent, cpu)] = interleaved([lambda: objects_3d(xyz, owners, ids, np.zeros(count),
                                                         np.ones(count), 10)], args.rounds)
        print(f'| objects, {count} instances ({int((owners > 0).sum())} points) | {spent:.1f} | '
              f'{cpu:.1f} |')
    print('\n| tracks | CPU ms a frame | reference CPU ms |\n|---|---:|---|')
    track_rows(max(args.rounds, 30), rng)
    node_step_rows(depth, max(args.rounds, 30), rng)


if __name__ == '__main__':
    main()
