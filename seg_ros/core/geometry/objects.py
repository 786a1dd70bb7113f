"""
Objects in 3-D: each instance's points to a centre and an extent, in the image's frame.

API::

    instance_points(depth_m, intrinsics, instance_map) -> (xyz, point_instance)
    objects_3d(xyz, point_instance, ids, class_id, score, min_object_points) -> Objects3D

Per instance with at least ``min_object_points`` valid points (finite ``x y z``): the centre is
the median of its points' x, y and z, the size their 5th to 95th percentile extent per axis
(NumPy's default ``linear`` percentile: robust to the few depth pixels of the background that an
instance mask's edge always catches). An instance without enough valid points (NaN depth, an
object beyond ``depth_range``, a mask on the frame's edge with nothing behind it) has no entry:
no error. Vectorised over objects (one sort of the points a coordinate): thousands of objects
cost about what one does, the cost is the points'.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seg_ros.core.geometry.camera import Intrinsics
from seg_ros.core.geometry.points import map_at_size

#: The percentiles bounding an object's extent.
EXTENT_PERCENTILES = (5.0, 95.0)


@dataclass(frozen=True)
class Objects3D:
    """
    K objects, as parallel arrays, in the order of the ``ids`` given.

    :ivar ids: (K,) int64 instance (or track) ids.
    :ivar class_id: (K,) int32 class ids.
    :ivar score: (K,) float32 scores.
    :ivar center: (K, 3) float64 median x, y, z (metres, the points' frame).
    :ivar size: (K, 3) float64 5th-95th percentile extent per axis (metres, >= 0).
    :ivar point_count: (K,) int64 valid points behind each object.
    """

    ids: np.ndarray
    class_id: np.ndarray
    score: np.ndarray
    center: np.ndarray
    size: np.ndarray
    point_count: np.ndarray

    def __len__(self) -> int:
        """Return the number of objects."""
        return len(self.ids)


def instance_points(depth_m: np.ndarray, intrinsics: Intrinsics,
                    instance_map: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    Return the 3-D points of the depth pixels an instance covers, and each one's instance id.

    Every depth pixel (no stride) whose instance-map value is not 0, in row-major order:
    ``x = (u - cx) z / fx``, ``y = (v - cy) z / fy`` in float32 as :func:`.points.labelled_points`
    computes them, NaN where the depth is invalid. Only those pixels are touched: the cost is
    the objects' area, not the frame's.

    :param depth_m: (H, W) float32 metres, NaN where invalid (:func:`.depth.depth_to_metres`).
    :param intrinsics: for the depth image's size.
    :param instance_map: (h, w) uint16 instance ids at the depth image's size or another (the
        colour image registered with the depth: sampled at each depth pixel's centre, nearest,
        :func:`.points.map_at_size`).
    :return: (N, 3) float32 points and (N,) uint16 instance ids.
    :raises ValueError: intrinsics for another image size.
    """
    height, width = depth_m.shape
    if (width, height) != (intrinsics.width, intrinsics.height):
        raise ValueError(f'intrinsics are for {intrinsics.width}x{intrinsics.height}, the '
                         f'depth image is {width}x{height}')
    owners = np.ascontiguousarray(map_at_size(instance_map, width, height)).reshape(-1)
    pixels = np.flatnonzero(owners)
    owners = owners[pixels]
    z = np.ascontiguousarray(depth_m, np.float32).reshape(-1)[pixels]
    u = (pixels % width).astype(np.float32)
    v = (pixels // width).astype(np.float32)
    x = z * (u - np.float32(intrinsics.cx))
    x /= np.float32(intrinsics.fx)
    y = z * (v - np.float32(intrinsics.cy))
    y /= np.float32(intrinsics.fy)
    return np.stack([x, y, z], axis=1), owners.astype(np.uint16)


def objects_3d(xyz: np.ndarray, point_instance: np.ndarray, ids: np.ndarray,
               class_id: np.ndarray, score: np.ndarray, min_object_points: int) -> Objects3D:
    """
    Return the 3-D centre and extent of each instance with enough valid points.

    :param xyz: (N, 3) (or (h, w, 3), an organized cloud) point coordinates, NaN where none.
    :param point_instance: (N,) (or (h, w)) instance id of each point, 0 for none.
    :param ids: (M,) the instances' ids (the values ``point_instance`` holds), e.g.
        :attr:`seg_ros.core.decode.instances.Instances.ids` or track ids.
    :param class_id: (M,) their classes.
    :param score: (M,) their scores.
    :param min_object_points: an instance needs at least this many valid points, >= 1.
    :return: the objects that have them, in the order of ``ids``.
    :raises ValueError: arrays of mismatched shapes, or ``min_object_points`` < 1.
    """
    if min_object_points < 1:
        raise ValueError(f'min_object_points={min_object_points!r} must be at least 1')
    coordinates = np.asarray(xyz).reshape(-1, 3)
    owners = np.asarray(point_instance).reshape(-1)
    ids = np.asarray(ids, np.int64).reshape(-1)
    if len(owners) != len(coordinates) or not len(ids) == len(class_id) == len(score):
        raise ValueError(f'{len(coordinates)} points with {len(owners)} instance ids, and '
                         f'{len(ids)} ids with {len(class_id)} classes and {len(score)} scores: '
                         'the arrays must be parallel')
    valid = (owners > 0) & np.all(np.isfinite(coordinates), axis=1)
    owners = owners[valid].astype(np.int64)
    coordinates = coordinates[valid]
    # Each point's object, its index in ids, by a table over the ids the points hold (an
    # instance map's, < 65536); points of an id not listed are dropped.
    table = np.full(int(owners.max(initial=0)) + 1, -1, np.int64)
    usable = np.flatnonzero((ids > 0) & (ids < len(table)))
    table[ids[usable[::-1]]] = usable[::-1]  # a repeated id: its first entry
    objects = table[owners]
    listed = objects >= 0
    objects, coordinates = objects[listed], coordinates[listed]
    counts = np.bincount(objects, minlength=len(ids))
    kept = np.flatnonzero(counts >= min_object_points)
    statistics = np.zeros((3, len(kept), 3))  # (median, low, high) x object x axis
    if len(kept):
        # Objects renumbered 0..K-1 in the order of ids; the points of the others dropped.
        rank = np.full(len(ids), -1, np.int64)
        rank[kept] = np.arange(len(kept))
        objects = rank[objects]
        enough = objects >= 0
        objects, coordinates = objects[enough], coordinates[enough]
        for axis in range(3):
            statistics[:, :, axis] = _grouped_percentiles(
                objects, coordinates[:, axis].astype(np.float64), len(kept),
                (50.0, *EXTENT_PERCENTILES))
    return Objects3D(ids[kept], np.asarray(class_id, np.int32)[kept],
                     np.asarray(score, np.float32)[kept], statistics[0],
                     statistics[2] - statistics[1], counts[kept].astype(np.int64))


def _grouped_percentiles(groups: np.ndarray, values: np.ndarray, count: int,
                         percentiles: tuple[float, ...]) -> np.ndarray:
    """
    Return (len(percentiles), count) percentiles of ``values`` per group 0..count-1.

    NumPy's ``linear`` method on each group: the sorted values at ``q (n - 1)``, interpolated
    between the two neighbours. Every group must hold a value.
    """
    # One sort of "group + value scaled into [0, 0.5)": each group's values in ascending order,
    # read back from the sorted keys (to 1e-10 of the values' range: NumPy sorts floats twice
    # as fast as it sorts their indices).
    smallest = float(values.min())
    spread = float(values.max()) - smallest
    scale = 0.4999 / spread if spread > 0 else 0.0
    keys = np.sort(groups + (values - smallest) * scale)
    ordered = (keys - np.floor(keys)) / scale + smallest if scale else \
        np.full(len(keys), smallest)
    sizes = np.bincount(groups, minlength=count)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    result = np.empty((len(percentiles), count))
    for index, percentile in enumerate(percentiles):
        position = (percentile / 100.0) * (sizes - 1)
        below = np.floor(position).astype(np.int64)
        above = np.minimum(below + 1, sizes - 1)
        fraction = position - below
        low, high = ordered[starts + below], ordered[starts + above]
        result[index] = low + (high - low) * fraction
    return result
