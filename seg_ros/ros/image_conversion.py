"""
Conversion between ``sensor_msgs/Image`` messages and NumPy arrays, in place of cv_bridge.

Encoding names and the 16-bit to 8-bit scaling follow cv_bridge and
``sensor_msgs/image_encodings.hpp``.  Reading a message gives a read-only view on its
``data`` whenever the bytes can be used as they are (any row padding is kept as a stride);
a copy is made only to swap the byte order of data sent from a machine of the other
endianness.  Malformed messages raise :class:`ImageConversionError`, whose message names
the offending field and value.

The conversions need only NumPy and OpenCV: they read and fill any object with the message's
fields (a ``rosbags`` message too), so this module imports without ROS (``seg-ros bag``); only
:func:`array_to_image` without ``msg`` needs ``sensor_msgs``.
"""

from __future__ import annotations

import array
from dataclasses import dataclass
import operator
import sys

import cv2
import numpy as np

try:
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header
except ImportError:  # the offline tools run without ROS
    Image = Header = None


class ImageConversionError(ValueError):
    """An Image message or array that does not describe the image its encoding declares."""


@dataclass(frozen=True)
class PixelLayout:
    """How one pixel of an encoding is stored: element type (native order) and channel count."""

    dtype: np.dtype
    channels: int

    @property
    def pixel_bytes(self) -> int:
        """Bytes per pixel."""
        return self.dtype.itemsize * self.channels


#: The packed 4:2:2 encodings (UYVY: 'yuv422', 'uyvy'; YUYV: 'yuv422_yuy2', 'yuyv').
YUV422_ENCODINGS = ('yuv422', 'uyvy', 'yuv422_yuy2', 'yuyv')


def _build_layouts() -> dict[str, PixelLayout]:
    uint8, uint16 = np.dtype(np.uint8), np.dtype(np.uint16)
    layouts = {
        'mono8': PixelLayout(uint8, 1), 'mono16': PixelLayout(uint16, 1),
        'rgb8': PixelLayout(uint8, 3), 'bgr8': PixelLayout(uint8, 3),
        'rgba8': PixelLayout(uint8, 4), 'bgra8': PixelLayout(uint8, 4),
        'rgb16': PixelLayout(uint16, 3), 'bgr16': PixelLayout(uint16, 3),
        'rgba16': PixelLayout(uint16, 4), 'bgra16': PixelLayout(uint16, 4),
    }
    for pattern in ('rggb', 'bggr', 'gbrg', 'grbg'):
        layouts[f'bayer_{pattern}8'] = PixelLayout(uint8, 1)
        layouts[f'bayer_{pattern}16'] = PixelLayout(uint16, 1)
    # Packed 4:2:2: every pixel is 2 bytes (a chroma and a luma sample), two pixels share
    # their chroma, so the width must be even.  'uyvy' and 'yuyv' are the newer names.
    for name in YUV422_ENCODINGS:
        layouts[name] = PixelLayout(uint8, 2)
    depths = {'8U': np.uint8, '8S': np.int8, '16U': np.uint16, '16S': np.int16,
              '32S': np.int32, '32F': np.float32, '64F': np.float64}
    for depth, dtype in depths.items():
        for channels in range(1, 5):
            layouts[f'{depth}C{channels}'] = PixelLayout(np.dtype(dtype), channels)
    return layouts


_LAYOUTS = _build_layouts()
#: Every encoding :func:`image_to_array` and :func:`array_to_image` handle.
SUPPORTED_ENCODINGS = tuple(_LAYOUTS)
#: The encodings the segmentation node accepts as camera input.
NODE_ENCODINGS = ('bgr8', 'rgb8', 'bgra8', 'rgba8', 'mono8', 'mono16')

_MACHINE_IS_BIGENDIAN = sys.byteorder == 'big'
# cv_bridge scales 16-bit to 8-bit with convertTo(alpha=255/65535): round(value * 255 / 65535).
_SCALE_16_TO_8 = 255.0 / 65535.0
# The colour conversion from each source layout to BGR / RGB (None: already that layout).
_TO_BGR = {'bgr': None, 'rgb': cv2.COLOR_RGB2BGR, 'bgra': cv2.COLOR_BGRA2BGR,
           'rgba': cv2.COLOR_RGBA2BGR, 'mono': cv2.COLOR_GRAY2BGR}
_TO_RGB = {'bgr': cv2.COLOR_BGR2RGB, 'rgb': None, 'bgra': cv2.COLOR_BGRA2RGB,
           'rgba': cv2.COLOR_RGBA2RGB, 'mono': cv2.COLOR_GRAY2RGB}
_DISPLAY_ENCODINGS = NODE_ENCODINGS + ('bgr16', 'rgb16', 'bgra16', 'rgba16')


def pixel_layout(encoding: str) -> PixelLayout:
    """
    Return the element type and channel count of an encoding.

    :param encoding: an encoding name, e.g. ``'bgr8'`` or ``'32FC1'``.
    :return: its :class:`PixelLayout`.
    :raises ImageConversionError: when the encoding is not supported.
    """
    try:
        return _LAYOUTS[encoding]
    except (KeyError, TypeError):
        raise ImageConversionError(
            f'encoding {encoding!r} is not supported; supported encodings: '
            f'{", ".join(SUPPORTED_ENCODINGS)}') from None


def _dimension(msg: Image, field: str) -> int:
    value = getattr(msg, field)
    try:
        number = operator.index(value)
    except TypeError:
        raise ImageConversionError(
            f'{field} must be an integer, got {value!r} ({type(value).__name__})') from None
    if number <= 0:
        raise ImageConversionError(f'{field} is {number}: an image needs {field} >= 1')
    return number


def _check_even_width(encoding: str, width: int) -> None:
    if encoding in YUV422_ENCODINGS and width % 2:
        raise ImageConversionError(
            f'width {width} is odd, but encoding {encoding!r} packs pixel pairs that share '
            'their chroma, so its width must be even')


def image_to_array(msg: Image) -> np.ndarray:
    """
    Return the pixels of an Image message as a read-only array.

    The array is a view on ``msg.data`` (no copy; row padding in ``step`` becomes the row
    stride) unless the message's byte order differs from this machine's for a multi-byte
    element type, in which case it is a byte-swapped copy in native order.

    :param msg: the message; ``data`` may be any bytes-like object (rclpy gives array.array).
    :return: shape (height, width) for one channel, (height, width, channels) otherwise
        (yuv422 formats: 2 uint8 channels), in the encoding's dtype and native byte order.
    :raises ImageConversionError: for an unknown encoding or fields that do not agree
        (zero size, ``step`` too small or not a multiple of the element size, data length
        other than ``step * height``, odd width for 4:2:2).
    """
    encoding = msg.encoding
    layout = pixel_layout(encoding)
    height = _dimension(msg, 'height')
    width = _dimension(msg, 'width')
    step = _dimension(msg, 'step')
    _check_even_width(encoding, width)
    row_bytes = width * layout.pixel_bytes
    if step < row_bytes:
        raise ImageConversionError(
            f'step {step} is smaller than width * bytes per pixel = {width} * '
            f'{layout.pixel_bytes} = {row_bytes} for encoding {encoding!r}')
    itemsize = layout.dtype.itemsize
    if step % itemsize:
        # OpenCV (and cv_bridge) cannot address rows that start inside an element.
        raise ImageConversionError(
            f'step {step} is not a multiple of the {itemsize}-byte element size of '
            f'encoding {encoding!r}')
    try:
        data = np.frombuffer(msg.data, np.uint8)
    except (TypeError, ValueError, BufferError) as error:
        raise ImageConversionError(
            f'data must be a bytes-like buffer, got {type(msg.data).__name__}: {error}') from None
    if data.size != step * height:
        raise ImageConversionError(
            f'data has {data.size} bytes, but step * height = {step} * {height} = '
            f'{step * height}')

    data_is_bigendian = bool(msg.is_bigendian)
    stored_dtype = layout.dtype.newbyteorder('>' if data_is_bigendian else '<')
    shape = (height, width) if layout.channels == 1 else (height, width, layout.channels)
    strides = (step, itemsize) if layout.channels == 1 else (step, layout.pixel_bytes, itemsize)
    pixels = np.ndarray(shape, stored_dtype, buffer=data, strides=strides)
    if itemsize > 1 and data_is_bigendian != _MACHINE_IS_BIGENDIAN:
        pixels = pixels.astype(layout.dtype)
    pixels.flags.writeable = False
    return pixels


def _check_array(pixels: np.ndarray, encoding: str) -> PixelLayout:
    """Check that an array holds an image of the encoding; return the encoding's layout."""
    layout = pixel_layout(encoding)
    if not isinstance(pixels, np.ndarray):
        raise ImageConversionError(
            f'array must be a numpy.ndarray, got {type(pixels).__name__}')
    if pixels.ndim not in (2, 3):
        raise ImageConversionError(
            f'array has shape {pixels.shape}: expected (height, width) or '
            '(height, width, channels)')
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if channels != layout.channels:
        raise ImageConversionError(
            f'array has {channels} channel(s) (shape {pixels.shape}), but encoding '
            f'{encoding!r} has {layout.channels}')
    if pixels.dtype.newbyteorder('=') != layout.dtype:
        raise ImageConversionError(
            f'array dtype {pixels.dtype} does not match encoding {encoding!r}, which '
            f'stores {layout.dtype}')
    height, width = pixels.shape[:2]
    if height == 0 or width == 0:
        raise ImageConversionError(
            f'array shape {pixels.shape} has height {height} and width {width}: an image '
            'needs both >= 1')
    _check_even_width(encoding, width)
    return layout


def array_to_image(pixels: np.ndarray, encoding: str, header: Header | None = None, *,
                   msg: Image | None = None) -> Image:
    """
    Build an Image message from an array.

    ``step`` is ``width * bytes per pixel`` (no padding) and the data is in this machine's
    byte order.  ``data`` is always an ``array.array('B')``, the type rclpy itself uses:
    rclpy's setter copies anything else element by element in Python (hundreds of
    milliseconds for a 1080p frame).

    :param pixels: (height, width) or (height, width, channels) array whose dtype and channel
        count match the encoding; any strides and byte order.
    :param encoding: the message encoding, one of :data:`SUPPORTED_ENCODINGS`.
    :param header: copied into the message (stamp and frame_id); None keeps the message's
        header (the default, empty one for a new message).
    :param msg: a message to fill instead of a new one.  When its ``data`` already has the
        right length the pixels are copied into it in place (no allocation), so arrays
        viewing its old data see the new pixels.
    :return: the filled message (``msg`` itself when given).
    :raises ImageConversionError: when the array does not fit the encoding.
    """
    layout = _check_array(pixels, encoding)
    height, width = pixels.shape[:2]
    step = width * layout.pixel_bytes
    if msg is None:
        msg = Image()
    if header is not None:
        msg.header.stamp.sec = header.stamp.sec
        msg.header.stamp.nanosec = header.stamp.nanosec
        msg.header.frame_id = header.frame_id
    msg.height = height
    msg.width = width
    msg.encoding = encoding
    msg.is_bigendian = int(_MACHINE_IS_BIGENDIAN)
    msg.step = step

    data = msg.data
    if isinstance(data, array.array) and data.typecode == 'B' and len(data) == step * height:
        # One strided copy (with any byte swap) straight into the existing buffer.
        np.frombuffer(data, layout.dtype).reshape(pixels.shape)[...] = pixels
    else:
        buffer = array.array('B')
        # frombytes takes only byte-formatted buffers: view the contiguous pixels as bytes.
        buffer.frombytes(np.ascontiguousarray(pixels, layout.dtype).reshape(-1).view(np.uint8))
        msg.data = buffer
    return msg


def _opencv_input(pixels: np.ndarray) -> np.ndarray:
    """Return the array itself when OpenCV can read it as it is, else a native contiguous copy."""
    if not pixels.dtype.isnative:
        # OpenCV would silently read the bytes in native order.
        return pixels.astype(pixels.dtype.newbyteorder('='))
    if any(stride % pixels.itemsize for stride in pixels.strides):
        return np.ascontiguousarray(pixels)
    return pixels


def _to_8bit_colour(pixels: np.ndarray, encoding: str, conversions: dict[str, int | None],
                    caller: str) -> np.ndarray:
    if encoding not in _DISPLAY_ENCODINGS:
        raise ImageConversionError(
            f'{caller} cannot convert encoding {encoding!r}; it converts: '
            f'{", ".join(_DISPLAY_ENCODINGS)}')
    layout = _check_array(pixels, encoding)
    pixels = _opencv_input(pixels)
    if layout.dtype.itemsize == 2:
        # Element-wise, so scaling before the colour conversion equals cv_bridge's
        # colour-then-scale result, on fewer channels for mono16 -> BGR.
        pixels = cv2.convertScaleAbs(pixels, alpha=_SCALE_16_TO_8)
    conversion = conversions[encoding.rstrip('0123456789')]
    if conversion is None:
        return pixels
    return cv2.cvtColor(pixels, conversion)


def to_bgr8(pixels: np.ndarray, encoding: str) -> np.ndarray:
    """
    Return an image as the 3-channel uint8 BGR frame the network and the overlay use.

    A bgr8 array comes back as it is (no copy).  16-bit encodings are scaled to 8 bits as
    cv_bridge's ``cvtColor`` does (``convertTo`` with alpha 255/65535, i.e.
    ``round(value * 255 / 65535)``, not a shift by 8 bits); alpha is dropped; mono is
    replicated to the three channels.

    :param pixels: the image, e.g. from :func:`image_to_array`.
    :param encoding: its encoding: one of :data:`NODE_ENCODINGS` or bgr16, rgb16, bgra16,
        rgba16.
    :return: (height, width, 3) uint8 array in BGR order.
    :raises ImageConversionError: for another encoding or an array that does not fit it.
    """
    return _to_8bit_colour(pixels, encoding, _TO_BGR, 'to_bgr8')


def to_rgb8(pixels: np.ndarray, encoding: str) -> np.ndarray:
    """
    Return an image as a 3-channel uint8 RGB frame; the RGB twin of :func:`to_bgr8`.

    :param pixels: the image, e.g. from :func:`image_to_array`.
    :param encoding: its encoding: one of :data:`NODE_ENCODINGS` or bgr16, rgb16, bgra16,
        rgba16.
    :return: (height, width, 3) uint8 array in RGB order (the array itself for rgb8).
    :raises ImageConversionError: for another encoding or an array that does not fit it.
    """
    return _to_8bit_colour(pixels, encoding, _TO_RGB, 'to_rgb8')
