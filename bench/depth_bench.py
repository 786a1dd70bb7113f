"""
Cost of the 3-D outputs at 1280x720 (stride 1 and 2), against the frame time.

A synthetic registered depth image (a camera 1 m above flat ground, a box 4 m ahead, 2 % of the
pixels invalid) in both encodings, the class map of the embedded ENet on a synthetic street
frame. Per case, medians of ``--rounds`` runs:

* ``decode``: :func:`seg_ros.core.geometry.depth.depth_to_metres` (units, invalid depth);
* ``points``: :func:`seg_ros.core.geometry.points.labelled_points` (projection, labels,
  class colours);
* ``cloud``: the structured array and the ``sensor_msgs/PointCloud2`` message
  (:func:`seg_ros.ros.depth_outputs.point_cloud`), what ``~/points`` publishes;
* ``grid``: the points transformed into ``base_link`` and binned
  (:func:`seg_ros.core.geometry.grid.points_occupancy`, 0.1 m cells, 10 x 10 m);
* ``rays``: the grid without depth (:func:`seg_ros.core.geometry.grid.ground_hits`, binned),
  and with the pixel-to-cell table the node keeps while the camera pose stays the same
  (:class:`seg_ros.core.geometry.grid.GroundProjection`).

The frame time is ``Segmenter.run`` of the embedded ENet on the 1280x720 frame (every output),
measured in the same run; the goal is at most 10 % of it for cloud and grid together.

Usage::

    .venv/bin/python bench/depth_bench.py [--rounds 30]
"""

import numpy as np
from timing import frame_time_setup, median_ms

from seg_ros.core.geometry.camera import Intrinsics
from seg_ros.core.geometry.depth import depth_to_metres
from seg_ros.core.geometry.grid import GridSpec, ground_hits, GroundProjection, occupancy, \
    points_occupancy, RigidTransform
from seg_ros.core.geometry.points import labelled_points
from seg_ros.ros.depth_outputs import point_cloud

WIDTH, HEIGHT = 1280, 720
CAMERA = Intrinsics(910.0, 910.0, 640.0, 360.0, WIDTH, HEIGHT)
# base_link -> camera optical frame: 1 m up, looking along x.
POSE = RigidTransform.from_quaternion((0.2, 0.0, 1.0), (-0.5, 0.5, -0.5, 0.5))
GRID = GridSpec(0.1, 10.0, 10.0)
DEPTH_RANGE = (0.1, 20.0)


def depth_scene(encoding: str, rng: np.random.Generator) -> np.ndarray:
    """Return the ground-and-box depth at 720p as a driver sends it (mm or m, 0/NaN unseen)."""
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    ray_y = (v - CAMERA.cy) / CAMERA.fy
    with np.errstate(divide='ignore'):
        depth = np.where(ray_y > 0, 1.0 / ray_y, np.inf)
    box = (np.abs(u - CAMERA.cx) < 200) & (ray_y * 4.0 > 0.2) & (ray_y * 4.0 < 1.0)
    depth[box & (depth > 4.0)] = 4.0
    holes = rng.random(depth.shape) < 0.02
    depth[holes] = np.inf
    if encoding == '16UC1':
        return np.where(np.isfinite(depth), np.minimum(depth * 1000, 65535), 0).astype(np.uint16)
    return np.where(np.isfinite(depth), depth, np.nan).astype(np.float32)


def main() -> None:
    args, segmenter, frame_ms, result = frame_time_setup(__doc__.split('\n\n')[0], WIDTH,
                                                         HEIGHT)
    rng = np.random.default_rng(1)
    class_map = result.class_map_full
    colours = segmenter.labels.colors_rgb
    free = np.array([0, 1])  # road, sidewalk
    print(f'frame: embedded ENet Segmenter.run at {WIDTH}x{HEIGHT} ({segmenter.backend.describe()}'
          f'): {frame_ms:.1f} ms median of {args.rounds}')
    print('\n| depth | stride | points | decode ms | points ms | cloud ms | grid ms | '
          'cloud + grid ms | % of frame | rays grid ms | rays grid, pose cached, ms |\n'
          '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    from std_msgs.msg import Header
    header = Header(frame_id='camera_optical_frame')
    for encoding in ('16UC1', '32FC1'):
        raw = depth_scene(encoding, rng)
        for stride in (1, 2):
            decode_ms, metres = median_ms(lambda: depth_to_metres(raw, DEPTH_RANGE),
                                          args.rounds)
            # As the node runs it: the class colours filled in as the points are made.
            points_ms, points = median_ms(
                lambda: labelled_points(metres, CAMERA, class_map, stride, None, colours),
                args.rounds)
            cloud_ms, _ = median_ms(lambda: point_cloud(header, points.cloud(colours)),
                                    args.rounds)
            grid_ms, _ = median_ms(lambda: points_occupancy(points.xyz_columns, POSE,
                                                            points.labels, free, GRID),
                                   args.rounds)
            rays_ms, _ = median_ms(lambda: occupancy(*ground_hits(CAMERA, POSE, class_map,
                                                                  stride), free, GRID),
                                   args.rounds)
            projection = GroundProjection.build(CAMERA, POSE, class_map.shape, stride, GRID)
            cached_ms, _ = median_ms(lambda: projection.cells(class_map, free), args.rounds)
            total = decode_ms + points_ms + cloud_ms + grid_ms
            print(f'| {encoding} | {stride} | {len(points)} | {decode_ms:.2f} | '
                  f'{points_ms:.2f} | {cloud_ms:.2f} | {grid_ms:.2f} | {total:.2f} | '
                  f'{100 * total / frame_ms:.1f} % | {rays_ms:.2f} | {cached_ms:.2f} |')


if __name__ == '__main__':
    main()
