"""
Depth pixels to labelled 3-D points, and the structured array of a PointCloud2 holding them.

The points are in the camera's optical frame (REP 103: x right, y down, z forward).
"""

from dataclasses import dataclass

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
    Points with their pixel, class and instance: parallel arrays, one entry a point.

    ``xyz`` (N, 3) float32 metres; ``u``, ``v`` (N,) the pixel's column and row; ``labels``
    (N,) uint16 class ids; ``instances`` (N,) uint16 instance ids or None.
    """

    xyz: np.ndarray
    u: np.ndarray
    v: np.ndarray
    labels: np.ndarray
    instances: np.ndarray | None = None

    def __len__(self) -> int:
        """Return the number of points."""
        return len(self.labels)

    def select(self, keep: np.ndarray) -> 'LabelledPoints':
        """Return the points where the boolean array ``keep`` is true."""
        return LabelledPoints(self.xyz[keep], self.u[keep], self.v[keep], self.labels[keep],
                              None if self.instances is None else self.instances[keep])

    def cloud(self, colors_rgb: np.ndarray) -> np.ndarray:
        """
        Return the points as a PointCloud2 structured array (:func:`cloud_dtype`).

        :param colors_rgb: (C, 3) uint8 class colours by class id; ids beyond it are black.
        """
        array = np.zeros(len(self), cloud_dtype(self.instances is not None))
        array['x'], array['y'], array['z'] = self.xyz[:, 0], self.xyz[:, 1], self.xyz[:, 2]
        palette = np.zeros((max(len(colors_rgb), int(self.labels.max(initial=0)) + 1), 3),
                           np.uint8)
        palette[:len(colors_rgb)] = colors_rgb
        array['rgb'] = pack_rgb(palette)[self.labels]
        array['label'] = self.labels
        if self.instances is not None:
            array['instance'] = self.instances
        return array


def stride_pixels(width: int, height: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the columns and rows of a ``stride`` grid (from pixel 0, 0), flattened, row-major."""
    if stride < 1:
        raise ValueError(f'stride={stride!r} must be at least 1')
    v, u = np.mgrid[0:height:stride, 0:width:stride]
    return u.ravel(), v.ravel()


def project_depth(depth_m: np.ndarray, intrinsics: Intrinsics, stride: int = 1
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Return the 3-D points of the valid pixels of a ``stride`` grid of a metric depth image.

    ``x = (u - cx) z / fx``, ``y = (v - cy) z / fy``, as ``depth_image_proc`` computes them.

    :param depth_m: (H, W) float32 metres, NaN where invalid (:func:`.depth.depth_to_metres`).
    :param intrinsics: for the depth image's size.
    :param stride: keep every ``stride``-th column and row, starting at 0.
    :return: ``xyz`` (N, 3) float32, ``u`` and ``v`` (N,) pixel indices, row-major order.
    :raises ValueError: when the intrinsics are for another image size.
    """
    height, width = depth_m.shape
    if (width, height) != (intrinsics.width, intrinsics.height):
        raise ValueError(f'intrinsics are for {intrinsics.width}x{intrinsics.height}, the '
                         f'depth image is {width}x{height}')
    if stride < 1:
        raise ValueError(f'stride={stride!r} must be at least 1')
    sampled = depth_m[::stride, ::stride]
    rows, cols = np.nonzero(~np.isnan(sampled))
    z = sampled[rows, cols].astype(np.float32, copy=False)
    u, v = cols * stride, rows * stride
    # float32 throughout, as depth_image_proc computes (a few ulp from a float64 result).
    xyz = np.empty((len(z), 3), np.float32)
    np.multiply(u.astype(np.float32) - np.float32(intrinsics.cx), z, out=xyz[:, 0])
    xyz[:, 0] /= np.float32(intrinsics.fx)
    np.multiply(v.astype(np.float32) - np.float32(intrinsics.cy), z, out=xyz[:, 1])
    xyz[:, 1] /= np.float32(intrinsics.fy)
    xyz[:, 2] = z
    return xyz, u, v


def labelled_points(depth_m: np.ndarray, intrinsics: Intrinsics, class_map: np.ndarray,
                    stride: int = 1, instance_map: np.ndarray | None = None) -> LabelledPoints:
    """
    Return the points of :func:`project_depth` with the class (and instance) of their pixel.

    :param class_map: (h, w) class ids, at the depth image's size or another (sampled at the
        pixel centre, see :func:`sample_map`): the colour image registered with the depth.
    :param instance_map: (h', w') uint16 instance ids, or None.
    """
    xyz, u, v = project_depth(depth_m, intrinsics, stride)
    height, width = depth_m.shape
    labels = sample_map(class_map, u, v, width, height).astype(np.uint16)
    instances = None
    if instance_map is not None:
        instances = sample_map(instance_map, u, v, width, height).astype(np.uint16)
    return LabelledPoints(xyz, u, v, labels, instances)
