"""Pinhole intrinsics of the colour camera, and their scaling to an image of another size."""

from dataclasses import dataclass
import math
from typing import Any, Sequence

# Two sizes are one camera at two resolutions when their scale factors differ by less than this.
ASPECT_TOLERANCE = 0.01


@dataclass(frozen=True)
class Intrinsics:
    """
    Focal lengths and principal point (pixels) of an image ``width`` x ``height``.

    The projection of ``sensor_msgs/CameraInfo``'s ``k``: ``fx = k[0]``, ``cx = k[2]``,
    ``fy = k[4]``, ``cy = k[5]``.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        """Check that the values describe a camera."""
        for name in ('fx', 'fy'):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f'intrinsics {name}={value!r} must be a positive number')
        for name in ('cx', 'cy'):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ValueError(f'intrinsics {name}={value!r} must be a finite number')
        for name in ('width', 'height'):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f'intrinsics {name}={value!r} must be a positive integer')

    @classmethod
    def from_k(cls, k: Sequence[float], width: int, height: int) -> 'Intrinsics':
        """Return the intrinsics of a CameraInfo's 3x3 row-major ``k`` for its image size."""
        values = [float(value) for value in k]
        if len(values) != 9:
            raise ValueError(f'camera matrix k must hold 9 values, got {len(values)}')
        return cls(values[0], values[4], values[2], values[5], int(width), int(height))

    @classmethod
    def parse(cls, text: str, width: int, height: int) -> 'Intrinsics':
        """
        Return the intrinsics written ``fx,fy,cx,cy`` for an image ``width`` x ``height``.

        :raises ValueError: naming the text when it is not four numbers.
        """
        try:
            values = [float(part) for part in text.split(',')]
        except ValueError:
            values = []
        if len(values) != 4:
            raise ValueError(f'intrinsics {text!r} must be four numbers fx,fy,cx,cy')
        return cls(*values, int(width), int(height))

    @classmethod
    def from_camera_info(cls, info: dict[str, Any]) -> 'Intrinsics':
        """
        Return the intrinsics of a camera_info mapping, as a YAML file holds it.

        Two layouts are read: camera_calibration's (``image_width``, ``image_height``,
        ``camera_matrix: {data: [...]}``) and a CameraInfo message's (``width``, ``height``,
        ``k``), e.g. from ``ros2 topic echo --once``.

        :raises ValueError: naming the missing or malformed key.
        """
        if not isinstance(info, dict):
            raise ValueError('camera_info must be a mapping with a camera matrix and a size')
        if 'camera_matrix' in info:
            matrix = info['camera_matrix']
            k = matrix.get('data') if isinstance(matrix, dict) else matrix
            width, height = info.get('image_width'), info.get('image_height')
        else:
            k, width, height = info.get('k', info.get('K')), info.get('width'), info.get('height')
        if k is None or width is None or height is None:
            raise ValueError('camera_info needs camera_matrix.data, image_width and image_height '
                             '(camera_calibration) or k, width and height (CameraInfo)')
        try:
            return cls.from_k(k, int(width), int(height))
        except TypeError as error:
            raise ValueError(f'camera_info: malformed camera matrix or size ({error})') from None

    def scaled_to(self, width: int, height: int) -> 'Intrinsics':
        """
        Return these intrinsics for the same camera at ``width`` x ``height``.

        :raises ValueError: when that size has another aspect ratio (not the same camera).
        """
        if (width, height) == (self.width, self.height):
            return self
        scale_x, scale_y = width / self.width, height / self.height
        if abs(scale_x - scale_y) > ASPECT_TOLERANCE * max(scale_x, scale_y):
            raise ValueError(
                f'an image of {width}x{height} is not the {self.width}x{self.height} camera at '
                f'another resolution (scales {scale_x:.3f} and {scale_y:.3f} differ)')
        return self.resized_to(width, height)

    def resized_to(self, width: int, height: int) -> 'Intrinsics':
        """
        Return these intrinsics for this image resized to ``width`` x ``height``, any aspect.

        Each axis on its own scale (``fx``, ``cx`` by ``width / self.width``; ``fy``, ``cy`` by
        ``height / self.height``), as the node scales ``~/camera_info`` to the network's size: a
        class map at the network's resolution is the frame stretched, not another camera.
        """
        if (width, height) == (self.width, self.height):
            return self
        scale_x, scale_y = width / self.width, height / self.height
        return Intrinsics(self.fx * scale_x, self.fy * scale_y, self.cx * scale_x,
                          self.cy * scale_y, int(width), int(height))
