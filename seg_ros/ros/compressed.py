"""
``sensor_msgs/CompressedImage`` in and out, as image_transport's ``compressed`` plugin does it.

The ``format`` strings are those of image_transport_plugins' ``compressed_publisher.cpp``:
``'<encoding>; jpeg compressed bgr8'`` for a colour image (the JPEG holds BGR), ``'<encoding>;
jpeg compressed mono8'`` for a grey one, ``'<encoding>; png compressed bgr8'`` for colour PNG and
``'<encoding>; png compressed '`` (nothing after it) for grey PNG. The subscriber side of
image_transport, rviz2 and Foxglove read the encoding before the ``;`` and the codec from the
data itself, so :func:`decode` does the same and also takes formats without a ``;``.
"""

from __future__ import annotations

import array

import cv2
import numpy as np

try:
    from std_msgs.msg import Header
except ImportError:  # the offline tools run without ROS (only type hints use it)
    Header = None

from seg_ros.ros.image_conversion import ImageConversionError

#: The codecs the node writes, by name; JPEG is lossy, PNG lossless.
CODECS = ('jpeg', 'png')
_COLOR_ENCODINGS = ('rgb8', 'bgr8')
# What a decoded array is, by (dtype, channels): OpenCV decodes colour to BGR(A).
_DECODED_ENCODINGS = {
    (np.dtype(np.uint8), 1): 'mono8', (np.dtype(np.uint8), 3): 'bgr8',
    (np.dtype(np.uint8), 4): 'bgra8', (np.dtype(np.uint16), 1): 'mono16',
    (np.dtype(np.uint16), 3): 'bgr16', (np.dtype(np.uint16), 4): 'bgra16',
}


def compressed_format(encoding: str, codec: str) -> str:
    """
    Return the ``format`` string image_transport's compressed publisher writes.

    :param encoding: the raw image's encoding: ``mono8``, ``rgb8`` or ``bgr8``.
    :param codec: ``'jpeg'`` or ``'png'``.
    :return: e.g. ``'rgb8; jpeg compressed bgr8'`` or ``'mono8; png compressed '``.
    :raises ValueError: for another codec or encoding.
    """
    if codec not in CODECS:
        raise ValueError(f'codec {codec!r} is not one of {", ".join(CODECS)}')
    if encoding in _COLOR_ENCODINGS:
        target = 'bgr8'
    elif encoding == 'mono8':
        target = 'mono8' if codec == 'jpeg' else ''
    else:
        raise ValueError(f'encoding {encoding!r} cannot be compressed (mono8, rgb8, bgr8)')
    return f'{encoding}; {codec} compressed {target}'


def encode(pixels: np.ndarray, encoding: str, codec: str, *, jpeg_quality: int = 80,
           png_level: int = 1) -> tuple[str, array.array]:
    """
    Compress an image as image_transport's compressed publisher does.

    :param pixels: (H, W) uint8 for ``mono8``, (H, W, 3) uint8 in ``encoding`` order otherwise.
    :param encoding: ``mono8``, ``rgb8`` or ``bgr8``.
    :param codec: ``'jpeg'`` or ``'png'``.
    :param jpeg_quality: 1-100.
    :param png_level: zlib level 0-9.
    :return: the ``format`` string and the compressed bytes as ``array.array('B')`` (the type
        rclpy takes without a per-element copy).
    :raises ValueError: for an unknown codec or encoding, or when OpenCV cannot encode.
    """
    text = compressed_format(encoding, codec)
    if encoding == 'rgb8':
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    if codec == 'jpeg':
        ok, data = cv2.imencode('.jpg', pixels, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    else:
        ok, data = cv2.imencode('.png', pixels, [cv2.IMWRITE_PNG_COMPRESSION, int(png_level)])
    if not ok:
        raise ValueError(f'OpenCV could not encode a {pixels.shape} {encoding} image as {codec}')
    buffer = array.array('B')
    buffer.frombytes(data.reshape(-1))
    return text, buffer


def decode(data, format_text: str) -> tuple[np.ndarray, str]:
    """
    Decode the data of a CompressedImage into pixels and the encoding they are in.

    The codec is read from the data (JPEG, PNG or anything else OpenCV reads), as
    image_transport's compressed subscriber does; colour comes out in BGR order.

    :param data: the compressed bytes (any bytes-like object).
    :param format_text: the message's ``format`` (only used in error messages).
    :return: the pixels and their encoding (``mono8``, ``bgr8``, ``bgra8``, ``mono16``...).
    :raises ImageConversionError: for empty or undecodable data.
    """
    buffer = np.frombuffer(data, np.uint8)
    if buffer.size == 0:
        raise ImageConversionError(f'compressed image (format {format_text!r}) has no data')
    try:
        pixels = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    except cv2.error as error:
        pixels = None
        reason = str(error).strip().splitlines()[-1]
    else:
        reason = 'not a JPEG or PNG image, or corrupt'
    if pixels is None:
        raise ImageConversionError(
            f'compressed image (format {format_text!r}, {buffer.size} bytes) cannot be '
            f'decoded: {reason}')
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    encoding = _DECODED_ENCODINGS.get((pixels.dtype, channels))
    if encoding is None:
        raise ImageConversionError(
            f'compressed image (format {format_text!r}) decodes to {pixels.dtype} with '
            f'{channels} channels, which is not supported')
    return pixels, encoding


def fill_compressed(msg, header: Header, format_text: str, data: array.array):
    """
    Fill a ``sensor_msgs/CompressedImage`` with the input header, format and data.

    :param msg: the message to fill.
    :param header: copied (stamp and frame_id).
    :param format_text: from :func:`encode`.
    :param data: from :func:`encode`.
    :return: ``msg``.
    """
    msg.header.stamp.sec = header.stamp.sec
    msg.header.stamp.nanosec = header.stamp.nanosec
    msg.header.frame_id = header.frame_id
    msg.format = format_text
    msg.data = data
    return msg
