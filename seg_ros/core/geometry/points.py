"""
Depth pixels to labelled 3-D points, and the structured array of a PointCloud2 holding them.

The points are in the camera's optical frame (REP 103: x right, y down, z forward).
"""

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from seg_ros.core.geometry.camera import Intrinsics

#: Bytes per point: x, y, z, rgb (float32), label, instance (uint16): 20, a multiple of 4.
POINT_STEP = 20


def cloud_dtype(with_instance: bool) -> np.dtype:
    """
    Return the little-endian point layout: ``x y z rgb`` float32, ``label`` (``instance``) uint16.

    Without instances the last two bytes are padding, so both layouts are 20 bytes a point.
    """
    names = ['x', 'y', 'z', 'rgb', 'label']
    formats = ['<f4', '<f4', '<f4', '<f4', '<u2']
    offsets = [0, 4, 8, 12, 16]
    if with_instance:
        names.append('instance')
        formats.append('<u2')
        offsets.append(18)
    return np.dtype({'names': names, 'formats': formats, 'offsets': offsets,
                     'itemsize': POINT_STEP})


def pack_rgb(colors_rgb: np.ndarray) -> np.ndarray:
    """
    Return (N, 3) uint8 RGB colours as float32 values whose bits are ``0x00RRGGBB``.

    That is how PCL and rviz2 read a PointCloud2 ``rgb`` field.
    """
    colors = np.asarray(colors_rgb, dtype=np.uint32)
    packed = (colors[..., 0] << 16) | (colors[..., 1] << 8) | colors[..., 2]
    return packed.astype('<u4').view('<f4')


def class_rgb(colors_rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Return the packed ``rgb`` (:func:`pack_rgb`) of each label; ids beyond the colours: 0."""
    # uint8 / uint16 labels: a palette of every id, so no pass over the labels for their max.
    size = 1 << (8 * labels.dtype.itemsize) if labels.dtype in (np.uint8, np.uint16) \
        else int(labels.max(initial=0)) + 1
    palette = np.zeros((max(len(colors_rgb), size), 3), np.uint8)
    palette[:len(colors_rgb)] = colors_rgb
    return np.take(pack_rgb(palette), labels)


def sample_map(label_map: np.ndarray, u: np.ndarray, v: np.ndarray, width: int,
               height: int) -> np.ndarray:
    """
    Return ``label_map`` at pixels (``u``, ``v``) of an image ``width`` x ``height``.

    A map of another size (the model-resolution class map) is sampled at the pixel's centre,
    nearest neighbour: column ``floor((u + 0.5) * map_width / width)``.
    """
    map_height, map_width = label_map.shape[:2]
    if (map_width, map_height) != (width, height):
        u = np.minimum(((u + 0.5) * (map_width / width)).astype(np.intp), map_width - 1)
        v = np.minimum(((v + 0.5) * (map_height / height)).astype(np.intp), map_height - 1)
    return label_map[v, u]


@dataclass(frozen=True)
class LabelledPoints:
    """
    Points with their class and instance, held in the PointCloud2 layout they are sent in.

    ``array`` is the structured array of :func:`cloud_dtype` (``rgb`` is filled by
    :meth:`cloud`, or at once where ``colors`` were given); ``pixels`` the flat index of each
    point in the ``stride`` grid it was taken from (``grid_width`` columns), whence its column
    and row; ``colors`` the (C, 3) class colours ``rgb`` holds, or None; ``columns`` the
    points' x, y and z as three contiguous float32 arrays, where they were kept.
    """

    array: np.ndarray
    pixels: np.ndarray
    grid_width: int
    stride: int
    colors: np.ndarray | None = None
    columns: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        """Return the number of points."""
        return len(self.array)

    @property
    def xyz(self) -> np.ndarray:
        """Return (N, 3) float32 metres: a view of the cloud's ``x y z``."""
        return self.array.view('<f4').reshape(-1, POINT_STEP // 4)[:, :3]

    @property
    def xyz_columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return x, y and z: the contiguous arrays where kept, else strided views."""
        if self.columns is not None:
            return self.columns
        xyz = self.xyz
        return xyz[:, 0], xyz[:, 1], xyz[:, 2]

    @property
    def labels(self) -> np.ndarray:
        """Return (N,) uint16 class ids (a view)."""
        return self.array['label']

    @property
    def instances(self) -> np.ndarray | None:
        """Return (N,) uint16 instance ids (a view), or None without an instance map."""
        return self.array['instance'] if 'instance' in self.array.dtype.names else None

    @property
    def u(self) -> np.ndarray:
        """Return each point's pixel column."""
        return self.pixels % self.grid_width * self.stride

    @property
    def v(self) -> np.ndarray:
        """Return each point's pixel row."""
        return self.pixels // self.grid_width * self.stride

    def select(self, keep: np.ndarray) -> 'LabelledPoints':
        """Return the points where the boolean array ``keep`` is true."""
        return LabelledPoints(self.array[keep], self.pixels[keep], self.grid_width, self.stride,
                              self.colors)

    def cloud(self, colors_rgb: np.ndarray) -> np.ndarray:
        """
        Return the points as a PointCloud2 structured array (:func:`cloud_dtype`).

        Fills ``rgb`` with the class colours (in place, unless it holds these colours already)
        and returns :attr:`array`.

        :param colors_rgb: (C, 3) uint8 class colours by class id; ids beyond it are black.
        """
        if self.colors is None or not np.array_equal(self.colors, colors_rgb):
            self.array['rgb'] = class_rgb(colors_rgb, self.labels)
        return self.array


def stride_pixels(width: int, height: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the columns and rows of a ``stride`` grid (from pixel 0, 0), flattened, row-major."""
    if stride < 1:
        raise ValueError(f'stride={stride!r} must be at least 1')
    v, u = np.mgrid[0:height:stride, 0:width:stride]
    return u.ravel(), v.ravel()


@lru_cache(maxsize=16)
def _offsets(intrinsics: Intrinsics, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``u - cx`` of the grid's columns and ``v - cy`` of its rows, float32."""
    columns = np.arange(0, intrinsics.width, stride).astype(np.float32)
    rows = np.arange(0, intrinsics.height, stride).astype(np.float32)
    return columns - np.float32(intrinsics.cx), rows - np.float32(intrinsics.cy)


@lru_cache(maxsize=16)
def _map_pixels(width: int, height: int, stride: int, map_shape: tuple[int, int]) -> np.ndarray:
    """Return the flat index into a map of ``map_shape`` of each pixel of the stride grid."""
    u, v = stride_pixels(width, height, stride)
    map_height, map_width = map_shape
    if (map_width, map_height) != (width, height):  # the rule of sample_map
        u = np.minimum(((u + 0.5) * (map_width / width)).astype(np.intp), map_width - 1)
        v = np.minimum(((v + 0.5) * (map_height / height)).astype(np.intp), map_height - 1)
    return v * map_width + u


def _sample(label_map: np.ndarray, width: int, height: int, stride: int,
            pixels: np.ndarray) -> np.ndarray:
    """Return ``label_map`` at the stride grid's flat ``pixels`` (:func:`sample_map`'s rule)."""
    flat = np.ascontiguousarray(label_map).reshape(-1)
    if label_map.shape[:2] == (height, width) and stride == 1:
        return np.take(flat, pixels)
    return np.take(flat, np.take(_map_pixels(width, height, stride, label_map.shape[:2]),
                                 pixels))


def labelled_points(depth_m: np.ndarray, intrinsics: Intrinsics, class_map: np.ndarray,
                    stride: int = 1, instance_map: np.ndarray | None = None,
                    colors_rgb: np.ndarray | None = None) -> LabelledPoints:
    """
    Return the 3-D points of the valid pixels of a ``stride`` grid, with their pixel's class.

    ``x = (u - cx) z / fx``, ``y = (v - cy) z / fy`` in float32, as ``depth_image_proc``
    computes them; the points in row-major pixel order.

    :param depth_m: (H, W) float32 metres, NaN where invalid (:func:`.depth.depth_to_metres`).
    :param intrinsics: for the depth image's size.
    :param class_map: (h, w) class ids, at the depth image's size or another (sampled at the
        pixel centre, see :func:`sample_map`): the colour image registered with the depth.
    :param stride: keep every ``stride``-th column and row, starting at 0.
    :param instance_map: (h', w') uint16 instance ids, or None.
    :param colors_rgb: (C, 3) uint8 class colours: ``rgb`` filled now (see
        :meth:`LabelledPoints.cloud`), or None (0 until ``cloud``).
    :raises ValueError: when the intrinsics are for another image size, or a bad stride.
    """
    height, width = depth_m.shape
    if (width, height) != (intrinsics.width, intrinsics.height):
        raise ValueError(f'intrinsics are for {intrinsics.width}x{intrinsics.height}, the '
                         f'depth image is {width}x{height}')
    if stride < 1:
        raise ValueError(f'stride={stride!r} must be at least 1')
    sampled = np.ascontiguousarray(depth_m[::stride, ::stride])
    grid_width = sampled.shape[1]
    valid = ~np.isnan(sampled)
    pixels = np.flatnonzero(valid)
    dtype = cloud_dtype(instance_map is not None)
    if not len(pixels):
        return LabelledPoints(np.zeros(0, dtype), pixels, grid_width, stride)
    colors = None if colors_rgb is None else np.array(colors_rgb, np.uint8)
    column_offsets, row_offsets = _offsets(intrinsics, stride)
    coordinates = []
    for offsets, focal in ((column_offsets[np.newaxis, :], intrinsics.fx),
                           (row_offsets[:, np.newaxis], intrinsics.fy)):
        value = sampled * offsets  # over the whole grid: no index arithmetic a point
        value /= np.float32(focal)
        coordinates.append(value[valid])
    coordinates.append(sampled[valid])
    # The last 4 bytes of a point: label, then instance (or zero padding), little-endian.
    labels = _sample(class_map, width, height, stride, pixels)
    tail = labels.astype('<u4')
    if labels.dtype.itemsize > 2:
        tail &= 0xFFFF  # as a uint16 field keeps it
    if instance_map is not None:
        tail |= _sample(instance_map, width, height, stride, pixels).astype('<u4') << 16
    rgb = np.zeros(len(pixels), np.float32) if colors is None else class_rgb(colors, labels)
    # x y z rgb tail interleaved into 20-byte points in one pass.
    array = cv2.merge(coordinates + [rgb, tail.view('<f4')]).view(dtype).reshape(-1)
    return LabelledPoints(array, pixels, grid_width, stride, colors, tuple(coordinates))


def organized_points(depth_m: np.ndarray, intrinsics: Intrinsics, class_map: np.ndarray,
                     instance_map: np.ndarray | None = None,
                     colors_rgb: np.ndarray | None = None) -> np.ndarray:
    """
    Return the organized cloud pixel-aligned with ``class_map``: (h, w) :func:`cloud_dtype` points.

    The layout Nav2's semantic segmentation layer walks beside the class map: point (row r,
    column c) is class-map pixel (c, r) back-projected with its depth, ``x = (c - cx) z / fx``,
    ``y = (r - cy) z / fy`` (float32, as :func:`labelled_points`) with the intrinsics scaled to
    the class map's size, each axis on its own (:meth:`Intrinsics.resized_to`: the network's
    input stretches the frame); ``x y z`` NaN where the depth is invalid (NaN in ``depth_m``:
    0, NaN or outside ``depth_range``); ``label`` the class map's value, ``instance`` the
    instance map's at the pixel, ``rgb`` the class colour (or 0). A depth image of another
    size (the class map at the network's resolution) is sampled at each class-map pixel's
    centre, nearest (:func:`sample_map`'s rule), never interpolated across an object's edge.

    :param depth_m: (H, W) float32 metres, NaN where invalid (:func:`.depth.depth_to_metres`),
        registered to the colour image.
    :param intrinsics: the colour camera's, at any resolution of it (e.g. its CameraInfo).
    :param class_map: (h, w) class ids: the grid of the cloud.
    :param instance_map: (h', w') uint16 instance ids (sampled at the class map's pixels), or
        None (no ``instance`` field).
    :param colors_rgb: (C, 3) uint8 class colours, or None (``rgb`` 0).
    :raises ValueError: the depth image is another camera's (another aspect than the
        intrinsics').
    """
    height, width = class_map.shape[:2]
    camera = intrinsics.resized_to(width, height)
    intrinsics.scaled_to(depth_m.shape[1], depth_m.shape[0])  # raises for another camera's depth
    depth = map_at_size(depth_m, width, height)
    columns = np.arange(width, dtype=np.float32) - np.float32(camera.cx)
    rows = np.arange(height, dtype=np.float32) - np.float32(camera.cy)
    x = depth * columns[np.newaxis, :]
    x /= np.float32(camera.fx)
    y = depth * rows[:, np.newaxis]
    y /= np.float32(camera.fy)
    labels = np.ascontiguousarray(class_map)
    tail = labels.astype('<u4')
    if labels.dtype.itemsize > 2:
        tail &= 0xFFFF  # as a uint16 field keeps it
    if instance_map is not None:
        tail |= map_at_size(instance_map, width, height).astype('<u4') << 16
    rgb = np.zeros((height, width), np.float32) if colors_rgb is None else \
        class_rgb(np.asarray(colors_rgb, np.uint8), labels)
    dtype = cloud_dtype(instance_map is not None)
    return cv2.merge([x, y, np.ascontiguousarray(depth, np.float32), rgb,
                      tail.view('<f4')]).view(dtype).reshape(height, width)


def map_at_size(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """
    Return ``image`` at (height, width): itself, or sampled at pixel centres (nearest).

    :func:`sample_map`'s rule at every pixel, through a cached index table.
    """
    if image.shape[:2] == (height, width):
        return image
    flat = np.ascontiguousarray(image).reshape(-1)
    return np.take(flat, _map_pixels(width, height, 1, image.shape[:2])).reshape(height, width)
