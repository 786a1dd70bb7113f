"""CompressedImage encoding and decoding as image_transport's compressed plugin does it."""

import cv2
import numpy as np
import pytest

from seg_ros.ros import compressed
from seg_ros.ros.image_conversion import ImageConversionError


@pytest.mark.parametrize('encoding, codec, text', [
    # compressed_publisher.cpp: encoding + '; <codec> compressed ' + target ('' for mono PNG).
    ('rgb8', 'jpeg', 'rgb8; jpeg compressed bgr8'), ('bgr8', 'jpeg', 'bgr8; jpeg compressed bgr8'),
    ('mono8', 'jpeg', 'mono8; jpeg compressed mono8'),
    ('rgb8', 'png', 'rgb8; png compressed bgr8'), ('mono8', 'png', 'mono8; png compressed ')])
def test_format_strings_are_image_transports(encoding, codec, text):
    assert compressed.compressed_format(encoding, codec) == text


def test_png_round_trip_is_exact_and_the_data_holds_bgr():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    text, data = compressed.encode(rgb, 'rgb8', 'png')
    assert text == 'rgb8; png compressed bgr8'
    # Any decoder (rviz2, Foxglove, image_transport) gets BGR from the PNG itself.
    assert np.array_equal(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR),
                          rgb[:, :, ::-1])
    pixels, encoding = compressed.decode(data, text)
    assert encoding == 'bgr8' and np.array_equal(pixels, rgb[:, :, ::-1])


def test_mono_class_map_png_is_lossless():
    class_map = np.arange(64 * 48, dtype=np.uint32).reshape(48, 64).astype(np.uint8) % 19
    text, data = compressed.encode(class_map, 'mono8', 'png', png_level=9)
    pixels, encoding = compressed.decode(data, text)
    assert encoding == 'mono8' and np.array_equal(pixels, class_map)


def test_jpeg_quality_trades_size_for_error():
    frame = cv2.GaussianBlur(np.random.default_rng(2).integers(0, 256, (120, 160, 3), np.uint8),
                             (9, 9), 3)
    sizes, errors = [], []
    for quality in (30, 95):
        _, data = compressed.encode(frame, 'bgr8', 'jpeg', jpeg_quality=quality)
        pixels, _ = compressed.decode(data, '')
        sizes.append(len(data))
        errors.append(np.abs(pixels.astype(int) - frame).mean())
    assert sizes[0] < sizes[1] and errors[0] > errors[1]


def test_sixteen_bit_png_decodes_as_mono16():
    depth = np.arange(30 * 20, dtype=np.uint16).reshape(20, 30) * 97
    ok, data = cv2.imencode('.png', depth)
    pixels, encoding = compressed.decode(data.tobytes(), 'mono16; png compressed ')
    assert encoding == 'mono16' and np.array_equal(pixels, depth)


@pytest.mark.parametrize('data, message', [
    (b'', 'has no data'), (b'\xff\xd8\xff\xe0 truncated', 'cannot be decoded'),
    (b'plain text', 'cannot be decoded')])
def test_corrupt_data_raises_a_clear_error(data, message):
    with pytest.raises(ImageConversionError, match=message):
        compressed.decode(data, 'bgr8; jpeg compressed bgr8')


def test_unknown_codec_and_encoding_are_refused():
    with pytest.raises(ValueError, match='tiff'):
        compressed.compressed_format('rgb8', 'tiff')
    with pytest.raises(ValueError, match='32FC1'):
        compressed.compressed_format('32FC1', 'png')
