"""
Points in a robot frame and the ground plane to a ``nav_msgs/OccupancyGrid``'s cells.

The grid frame's ground is z = 0 (``base_link`` on flat ground). The grid is axis-aligned with
it (identity orientation); its origin (the corner of cell 0, 0) is at x = 0 (the robot) and
y = -size_y / 2, so it reaches ``size_x`` metres ahead and ``size_y / 2`` to each side.
"""

from dataclasses import dataclass
import math

import numpy as np

from seg_ros.core.geometry.camera import Intrinsics
from seg_ros.core.geometry.points import sample_map, stride_pixels

FREE, OCCUPIED, UNKNOWN = 0, 100, -1
MAX_GRID_CELLS = 16_000_000
# A rotation from tf whose quaternion is this far from unit length is refused.
QUATERNION_NORM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class RigidTransform:
    """``p_target = rotation @ p_source + translation``: a pose from tf, in NumPy."""

    rotation: np.ndarray
    translation: np.ndarray

    @classmethod
    def from_quaternion(cls, translation, quaternion) -> 'RigidTransform':
        """
        Return the transform of a translation (x, y, z) and a quaternion (x, y, z, w).

        :raises ValueError: a value that is not finite, or a quaternion not of unit length.
        """
        t = np.asarray(translation, np.float64)
        x, y, z, w = (float(value) for value in quaternion)
        norm = math.sqrt(x * x + y * y + z * z + w * w)
        if not (np.isfinite(t).all() and math.isfinite(norm)):
            raise ValueError(f'transform is not finite: t={t.tolist()}, q={[x, y, z, w]}')
        if abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE:
            raise ValueError(f'transform rotation q={[x, y, z, w]} is not a unit quaternion '
                             f'(norm {norm:.4f})')
        x, y, z, w = x / norm, y / norm, z / norm, w / norm
        rotation = np.array([
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
        return cls(rotation, t)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Return (N, 3) points transformed, float64."""
        return np.asarray(points, np.float64) @ self.rotation.T + self.translation


@dataclass(frozen=True)
class GridSpec:
    """An occupancy grid: ``resolution`` metres a cell, ``size_x`` by ``size_y`` metres."""

    resolution: float
    size_x: float
    size_y: float

    def __post_init__(self) -> None:
        """Check the sizes and the number of cells."""
        if not (math.isfinite(self.resolution) and self.resolution > 0):
            raise ValueError(f'grid_resolution={self.resolution!r} must be positive')
        for name, value in (('size_x', self.size_x), ('size_y', self.size_y)):
            if not (math.isfinite(value) and value >= self.resolution):
                raise ValueError(f'grid_size {name}={value!r} must be at least one cell '
                                 f'({self.resolution} m)')
        if self.width * self.height > MAX_GRID_CELLS:
            raise ValueError(f'grid of {self.width}x{self.height} cells is larger than '
                             f'{MAX_GRID_CELLS} cells: raise grid_resolution or shrink grid_size')

    @property
    def width(self) -> int:
        """Return the number of cells along x."""
        return int(round(self.size_x / self.resolution))

    @property
    def height(self) -> int:
        """Return the number of cells along y."""
        return int(round(self.size_y / self.resolution))

    @property
    def origin(self) -> tuple[float, float]:
        """Return the (x, y) of the corner of cell (0, 0) in the grid frame."""
        return 0.0, -self.height * self.resolution / 2


def occupancy(xy: np.ndarray, labels: np.ndarray, free_classes: np.ndarray,
              spec: GridSpec) -> np.ndarray:
    """
    Return the grid's cells, (height, width) int8, row = y index, column = x index.

    A cell holding a point of a class outside ``free_classes`` is 100 (it wins), else a cell
    holding a point of a free class is 0, else -1 (unseen).

    :param xy: (N, 2) point coordinates in the grid frame, metres.
    :param labels: (N,) class ids.
    :param free_classes: class ids that are free space.
    """
    cells = np.full(spec.width * spec.height, UNKNOWN, np.int8)
    origin_x, origin_y = spec.origin
    columns = np.floor((xy[:, 0] - origin_x) / spec.resolution)
    rows = np.floor((xy[:, 1] - origin_y) / spec.resolution)
    inside = (columns >= 0) & (columns < spec.width) & (rows >= 0) & (rows < spec.height)
    index = rows[inside].astype(np.intp) * spec.width + columns[inside].astype(np.intp)
    free = np.isin(labels[inside], free_classes)
    cells[index[free]] = FREE
    cells[index[~free]] = OCCUPIED
    return cells.reshape(spec.height, spec.width)


def ground_hits(intrinsics: Intrinsics, camera_to_grid: RigidTransform, class_map: np.ndarray,
                stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """
    Intersect each pixel's ray with the ground (z = 0 of the grid frame): no depth needed.

    Flat ground: a pixel whose ray points down, from a camera above the ground, sees the
    ground where the ray meets it; the others (sky, horizon, a camera below z = 0) see none.

    :param intrinsics: the camera's, for the image the pixels are taken from.
    :param camera_to_grid: pose of the camera's optical frame in the grid frame.
    :param class_map: the class map, at the intrinsics' size or another (sampled).
    :param stride: rays of every ``stride``-th column and row.
    :return: ``xy`` (N, 2) float64 ground points in the grid frame and their ``labels`` (N,).
    """
    u, v = stride_pixels(intrinsics.width, intrinsics.height, stride)
    rays = np.stack([(u - intrinsics.cx) / intrinsics.fx, (v - intrinsics.cy) / intrinsics.fy,
                     np.ones(len(u))], axis=1)
    directions = rays @ camera_to_grid.rotation.T
    origin = camera_to_grid.translation
    down = directions[:, 2] < 0
    if origin[2] <= 0 or not down.any():
        return np.empty((0, 2)), np.empty(0, np.uint16)
    directions, u, v = directions[down], u[down], v[down]
    reach = -origin[2] / directions[:, 2]
    xy = origin[:2] + directions[:, :2] * reach[:, None]
    labels = sample_map(class_map, u, v, intrinsics.width, intrinsics.height)
    return xy, labels
