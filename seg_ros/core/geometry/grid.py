"""
Points in a robot frame and the ground plane to a ``nav_msgs/OccupancyGrid``'s cells.

The grid frame's ground is z = 0 (``base_link`` on flat ground). The grid is axis-aligned with
it (identity orientation); its origin (the corner of cell 0, 0) is at x = 0 (the robot) and
y = -size_y / 2, so it reaches ``size_x`` metres ahead and ``size_y / 2`` to each side.
"""

from dataclasses import dataclass
from functools import lru_cache
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

    def apply(self, points: np.ndarray, axes: int = 3) -> np.ndarray:
        """
        Return (N, 3) points transformed, float64: their first ``axes`` coordinates (x, y, z).

        Column by column: a (N, 3) @ (3, 3) matmul is many times slower on large N.
        """
        points = np.asarray(points)
        out = np.empty((len(points), axes), np.float64)
        term = np.empty(len(points), np.float64)
        for axis in range(axes):
            column = out[:, axis]
            np.multiply(points[:, 0], self.rotation[axis, 0], out=column)
            column += np.multiply(points[:, 1], self.rotation[axis, 1], out=term)
            column += np.multiply(points[:, 2], self.rotation[axis, 2], out=term)
            column += self.translation[axis]
        return out


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


def cell_indices(xy: np.ndarray, spec: GridSpec) -> np.ndarray:
    """Return the flat cell index (row * width + column) of each (x, y), -1 outside the grid."""
    return _cell_index(xy[:, 0], xy[:, 1], spec, -1)


def _cell_index(x: np.ndarray, y: np.ndarray, spec: GridSpec, outside: int) -> np.ndarray:
    origin_x, origin_y = spec.origin
    scale = 1.0 / spec.resolution
    columns = x - origin_x
    columns *= scale
    np.floor(columns, out=columns)
    rows = y - origin_y
    rows *= scale
    np.floor(rows, out=rows)
    inside = (columns >= 0) & (columns < spec.width) & (rows >= 0) & (rows < spec.height)
    rows *= spec.width
    rows += columns  # exact: whole numbers below 2**53
    rows[~inside] = outside
    return rows.astype(np.intp)


def _free_lookup(free_classes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    if labels.dtype in (np.uint8, np.uint16):  # every id has a place: no pass for the max
        return _id_lookup(np.asarray(free_classes, np.int64).tobytes())
    size = max(int(labels.max(initial=0)), int(np.max(free_classes, initial=0))) + 1
    lookup = np.zeros(size, bool)
    lookup[np.asarray(free_classes, np.intp)] = True
    return lookup


@lru_cache(maxsize=32)
def _id_lookup(free_bytes: bytes) -> np.ndarray:
    """Return whether each uint16 class id is free (``free_bytes``: the free ids, int64)."""
    lookup = np.zeros(1 << 16, bool)
    free = np.frombuffer(free_bytes, np.int64)
    lookup[free[(free >= 0) & (free < 1 << 16)]] = True
    lookup.setflags(write=False)
    return lookup


def bin_cells(index: np.ndarray, labels: np.ndarray, free_classes: np.ndarray,
              spec: GridSpec) -> np.ndarray:
    """
    Return the grid's cells from each point's cell index (-1: outside) and class.

    A cell holding a point of a class outside ``free_classes`` is 100 (it wins), else a cell
    holding a point of a free class is 0, else -1 (unseen). (height, width) int8, row = y index,
    column = x index.
    """
    count = spec.width * spec.height
    return _bin(np.where(index >= 0, index, count), labels, free_classes, spec)


def _bin(index: np.ndarray, labels: np.ndarray, free_classes: np.ndarray,
         spec: GridSpec) -> np.ndarray:
    """:func:`bin_cells` of indices where ``width * height`` (one cell more) is outside."""
    count = spec.width * spec.height
    # One count per cell and kind: 2 * cell for a free class, 2 * cell + 1 for any other.
    key = np.left_shift(index, 1)
    key += ~np.take(_free_lookup(free_classes, labels), labels)
    counts = np.bincount(key, minlength=2 * count + 2)[:2 * count].reshape(count, 2) > 0
    cells = np.where(counts[:, 1], np.int8(OCCUPIED),
                     np.where(counts[:, 0], np.int8(FREE), np.int8(UNKNOWN)))
    return cells.reshape(spec.height, spec.width)


def occupancy(xy: np.ndarray, labels: np.ndarray, free_classes: np.ndarray,
              spec: GridSpec) -> np.ndarray:
    """
    Return the grid of points at ``xy`` (N, 2) in the grid frame with classes ``labels``.

    See :func:`bin_cells` for the cell values.
    """
    return bin_cells(cell_indices(xy, spec), labels, free_classes, spec)


def points_occupancy(xyz, camera_to_grid: RigidTransform, labels: np.ndarray,
                     free_classes: np.ndarray, spec: GridSpec) -> np.ndarray:
    """
    Return the grid of camera-frame points ``xyz`` moved into the grid frame.

    ``xyz`` is an (N, 3) array, or its three columns (:attr:`.LabelledPoints.xyz_columns`:
    contiguous columns are read faster than a cloud's strided ones).

    The cells of :func:`occupancy` of ``camera_to_grid.apply(xyz, axes=2)``, computed in
    float32 with the grid's scale and origin folded into the transform: each point's
    continuous cell coordinates are ``(rotation[:2] / resolution) @ p + (translation[:2] -
    origin) / resolution``, in a third of the passes over the points. A point within float32
    rounding (about 1e-6 of its distance) of a cell border may land in the neighbouring cell.
    """
    origin = np.asarray(spec.origin, np.float64)
    scale = 1.0 / spec.resolution
    factors = (camera_to_grid.rotation[:2] * scale).astype(np.float32)
    offsets = ((camera_to_grid.translation[:2] - origin) * scale).astype(np.float32)
    x, y, z = (xyz[:, 0], xyz[:, 1], xyz[:, 2]) if isinstance(xyz, np.ndarray) else xyz
    term = np.empty(len(x), np.float32)
    cells = []
    for axis in range(2):
        value = np.multiply(x, factors[axis, 0])
        value += np.multiply(y, factors[axis, 1], out=term)
        value += np.multiply(z, factors[axis, 2], out=term)
        value += offsets[axis]
        np.floor(value, out=value)
        cells.append(value)
    columns, rows = cells
    inside = (columns >= 0) & (columns < spec.width) & (rows >= 0) & (rows < spec.height)
    rows *= np.float32(spec.width)
    rows += columns  # exact: whole numbers below MAX_GRID_CELLS < 2**24
    rows[~inside] = spec.width * spec.height
    return _bin(rows.astype(np.intp), labels, free_classes, spec)


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
    u, v, xy = _ground_points(intrinsics, camera_to_grid, stride)
    return xy, sample_map(class_map, u, v, intrinsics.width, intrinsics.height)


def _ground_points(intrinsics: Intrinsics, camera_to_grid: RigidTransform, stride: int):
    u, v = stride_pixels(intrinsics.width, intrinsics.height, stride)
    rays = np.stack([(u - intrinsics.cx) / intrinsics.fx, (v - intrinsics.cy) / intrinsics.fy,
                     np.ones(len(u))], axis=1)
    origin = camera_to_grid.translation
    directions = RigidTransform(camera_to_grid.rotation, np.zeros(3)).apply(rays)
    down = directions[:, 2] < 0
    if origin[2] <= 0 or not down.any():
        return u[:0], v[:0], np.empty((0, 2))
    directions, u, v = directions[down], u[down], v[down]
    reach = -origin[2] / directions[:, 2]
    return u, v, origin[:2] + directions[:, :2] * reach[:, None]


@dataclass(frozen=True)
class GroundProjection:
    """
    Which class-map pixel lands in which cell, for one camera pose and grid.

    Built once for a static camera, the no-depth grid then costs a lookup and a scatter a frame.
    """

    key: tuple
    map_index: np.ndarray
    cell_index: np.ndarray
    spec: GridSpec

    @classmethod
    def build(cls, intrinsics: Intrinsics, camera_to_grid: RigidTransform,
              map_shape: tuple[int, int], stride: int, spec: GridSpec) -> 'GroundProjection':
        """Intersect the rays once (:func:`ground_hits`) and keep the pixels inside the grid."""
        u, v, xy = _ground_points(intrinsics, camera_to_grid, stride)
        index = cell_indices(xy, spec)
        inside = index >= 0
        u, v = u[inside], v[inside]
        height, width = map_shape
        if (width, height) != (intrinsics.width, intrinsics.height):
            u = np.minimum(((u + 0.5) * (width / intrinsics.width)).astype(np.intp), width - 1)
            v = np.minimum(((v + 0.5) * (height / intrinsics.height)).astype(np.intp),
                           height - 1)
        return cls(cls.key_of(intrinsics, camera_to_grid, map_shape, stride, spec),
                   v * width + u, index[inside], spec)

    @staticmethod
    def key_of(intrinsics: Intrinsics, camera_to_grid: RigidTransform,
               map_shape: tuple[int, int], stride: int, spec: GridSpec) -> tuple:
        """Return what the projection depends on, to know when to build it again."""
        return (intrinsics, camera_to_grid.rotation.tobytes(),
                camera_to_grid.translation.tobytes(), tuple(map_shape), stride, spec)

    def cells(self, class_map: np.ndarray, free_classes: np.ndarray) -> np.ndarray:
        """Return the grid of this frame's class map (see :func:`bin_cells`)."""
        labels = class_map.reshape(-1)[self.map_index]
        return bin_cells(self.cell_index, labels, free_classes, self.spec)
