"""Tests of sensor_msgs/Image <-> NumPy conversion on real rclpy message classes."""

import array
import sys

import cv2
from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from seg_ros.ros.image_conversion import (array_to_image, image_to_array, ImageConversionError,
                                          NODE_ENCODINGS, SUPPORTED_ENCODINGS, to_bgr8, to_rgb8,
                                          YUV422_ENCODINGS)

MACHINE_IS_BIGENDIAN = sys.byteorder == 'big'
PADDING_MARKER = 0xAB

# What sensor_msgs/image_encodings.hpp (and cv_bridge) say each encoding stores.
EXPECTED_LAYOUTS = {
    'rgb8': (np.uint8, 3), 'rgba8': (np.uint8, 4), 'rgb16': (np.uint16, 3),
    'rgba16': (np.uint16, 4), 'bgr8': (np.uint8, 3), 'bgra8': (np.uint8, 4),
    'bgr16': (np.uint16, 3), 'bgra16': (np.uint16, 4), 'mono8': (np.uint8, 1),
    'mono16': (np.uint16, 1),
    'bayer_rggb8': (np.uint8, 1), 'bayer_bggr8': (np.uint8, 1), 'bayer_gbrg8': (np.uint8, 1),
    'bayer_grbg8': (np.uint8, 1), 'bayer_rggb16': (np.uint16, 1),
    'bayer_bggr16': (np.uint16, 1), 'bayer_gbrg16': (np.uint16, 1),
    'bayer_grbg16': (np.uint16, 1),
    'yuv422': (np.uint8, 2), 'yuv422_yuy2': (np.uint8, 2), 'uyvy': (np.uint8, 2),
    'yuyv': (np.uint8, 2),
    **{f'{depth}C{channels}': (dtype, channels)
       for depth, dtype in (('8U', np.uint8), ('8S', np.int8), ('16U', np.uint16),
                            ('16S', np.int16), ('32S', np.int32), ('32F', np.float32),
                            ('64F', np.float64))
       for channels in (1, 2, 3, 4)},
}


def layout_of(encoding: str) -> tuple[np.dtype, int]:
    dtype, channels = EXPECTED_LAYOUTS[encoding]
    return np.dtype(dtype), channels


def random_pixels(encoding: str, height: int, width: int, seed: int) -> np.ndarray:
    """Return random pixels of an encoding (any bit pattern, NaNs included for floats)."""
    dtype, channels = layout_of(encoding)
    shape = (height, width) if channels == 1 else (height, width, channels)
    raw = np.random.default_rng(seed).integers(0, 256, int(np.prod(shape)) * dtype.itemsize,
                                               dtype=np.uint8)
    return raw.view(dtype).reshape(shape)


def make_message(pixels: np.ndarray, encoding: str, padding: int = 0,
                 bigendian: bool = MACHINE_IS_BIGENDIAN) -> Image:
    """Build an Image the way a camera driver would: rows of bytes, then `padding` bytes."""
    height, width = pixels.shape[:2]
    stored = pixels.astype(pixels.dtype.newbyteorder('>' if bigendian else '<'))
    rows = np.ascontiguousarray(stored).view(np.uint8).reshape(height, -1)
    buffer = np.full((height, rows.shape[1] + padding), PADDING_MARKER, np.uint8)
    buffer[:, :rows.shape[1]] = rows
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=int(bigendian),
                step=buffer.shape[1])
    msg.data = array.array('B', buffer.tobytes())
    return msg


def same_bits(left: np.ndarray, right: np.ndarray) -> bool:
    """Compare arrays bit for bit (NaN payloads included)."""
    return (left.shape == right.shape and left.dtype == right.dtype
            and np.ascontiguousarray(left).tobytes() == np.ascontiguousarray(right).tobytes())


def data_bytes(msg: Image) -> np.ndarray:
    return np.frombuffer(msg.data, np.uint8)


def test_supported_encodings_are_the_cv_bridge_set() -> None:
    assert set(SUPPORTED_ENCODINGS) == set(EXPECTED_LAYOUTS)
    assert set(NODE_ENCODINGS) <= set(SUPPORTED_ENCODINGS)


@pytest.mark.parametrize('bigendian', [False, True])
@pytest.mark.parametrize('padding', [0, 3, 64])
@pytest.mark.parametrize('encoding', sorted(EXPECTED_LAYOUTS))
def test_image_to_array_gives_exact_pixels(encoding: str, padding: int,
                                           bigendian: bool) -> None:
    dtype, channels = layout_of(encoding)
    # Rows must start on an element boundary: round the padding up to whole elements.
    padding = -(-padding // dtype.itemsize) * dtype.itemsize
    pixels = random_pixels(encoding, 5, 6, seed=len(encoding) + padding)
    msg = make_message(pixels, encoding, padding, bigendian)

    result = image_to_array(msg)

    assert result.dtype == dtype and result.dtype.isnative
    assert result.shape == ((5, 6) if channels == 1 else (5, 6, channels))
    assert same_bits(result, pixels)
    assert not result.flags.writeable
    zero_copy = dtype.itemsize == 1 or bigendian == MACHINE_IS_BIGENDIAN
    assert np.shares_memory(result, data_bytes(msg)) == zero_copy


def test_view_honours_row_padding_without_copying() -> None:
    pixels = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    msg = make_message(pixels, 'bgr8', padding=3)

    result = image_to_array(msg)

    assert result.strides == (18, 3, 1)
    assert np.array_equal(result, pixels)
    assert np.shares_memory(result, data_bytes(msg))
    # The padding bytes stay in the buffer, outside the view.
    assert np.all(data_bytes(msg).reshape(4, 18)[:, 15:] == PADDING_MARKER)


def test_explicit_byte_orders() -> None:
    little = Image(height=1, width=2, encoding='mono16', is_bigendian=0, step=4)
    little.data = array.array('B', b'\x01\x02\x00\x01')
    big = Image(height=1, width=2, encoding='mono16', is_bigendian=1, step=4)
    big.data = array.array('B', b'\x01\x02\x00\x01')
    big_float = Image(height=1, width=1, encoding='32FC1', is_bigendian=1, step=4)
    big_float.data = array.array('B', b'\x3f\xc0\x00\x00')

    assert image_to_array(little).tolist() == [[0x0201, 0x0100]]
    assert image_to_array(big).tolist() == [[0x0102, 0x0001]]
    assert image_to_array(big_float).tolist() == [[1.5]]


def test_received_message_is_viewed_without_copy() -> None:
    pixels = random_pixels('rgb8', 7, 9, seed=1)
    sent = make_message(pixels, 'rgb8', padding=5)

    received = deserialize_message(serialize_message(sent), Image)

    assert isinstance(received.data, array.array)
    result = image_to_array(received)
    assert np.array_equal(result, pixels)
    assert np.shares_memory(result, data_bytes(received))


def test_array_to_image_fields_and_header() -> None:
    pixels = random_pixels('16UC3', 4, 7, seed=2)
    header = Header(frame_id='camera_optical')
    header.stamp.sec = 1_700_000_123
    header.stamp.nanosec = 999_999_999

    msg = array_to_image(pixels, '16UC3', header)
    header.frame_id = 'changed later'

    assert (msg.height, msg.width, msg.encoding) == (4, 7, '16UC3')
    assert msg.step == 7 * 3 * 2
    assert msg.is_bigendian == int(MACHINE_IS_BIGENDIAN)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1_700_000_123, 999_999_999)
    assert msg.header.frame_id == 'camera_optical'
    assert isinstance(msg.data, array.array) and msg.data.typecode == 'B'
    assert same_bits(image_to_array(msg), pixels)
    # The message serialises (what publishing does) and comes back identical.
    assert same_bits(image_to_array(deserialize_message(serialize_message(msg), Image)),
                     pixels)


def test_array_to_image_reuses_message_buffer() -> None:
    first = random_pixels('bgr8', 6, 8, seed=3)
    second = random_pixels('bgr8', 6, 8, seed=4)
    msg = array_to_image(first, 'bgr8')
    buffer = msg.data

    assert array_to_image(second, 'bgr8', msg=msg) is msg
    assert msg.data is buffer
    assert np.array_equal(image_to_array(msg), second)

    smaller = random_pixels('mono8', 2, 3, seed=5)
    array_to_image(smaller, 'mono8', msg=msg)
    assert (msg.height, msg.width, msg.step, len(msg.data)) == (2, 3, 3, 6)
    assert np.array_equal(image_to_array(msg), smaller)


@pytest.mark.parametrize('reuse', [False, True])
def test_array_to_image_takes_any_layout_and_byte_order(reuse: bool) -> None:
    pixels = random_pixels('bgra16', 5, 6, seed=6)
    msg = array_to_image(np.zeros_like(pixels), 'bgra16') if reuse else None
    padded = image_to_array(make_message(pixels, 'bgra16', padding=10))
    swapped = pixels.astype(pixels.dtype.newbyteorder('S'))

    for source in (padded, swapped, np.asfortranarray(pixels)):
        result = array_to_image(source, 'bgra16', msg=msg)
        assert result.step == 6 * 8
        assert result.is_bigendian == int(MACHINE_IS_BIGENDIAN)
        assert np.array_equal(image_to_array(result), pixels)
    flipped = array_to_image(pixels[::-1, ::-1], 'bgra16', msg=msg)
    assert np.array_equal(image_to_array(flipped), pixels[::-1, ::-1])


def test_array_to_image_accepts_single_channel_axis() -> None:
    pixels = random_pixels('32FC1', 3, 4, seed=7)
    msg = array_to_image(pixels[:, :, np.newaxis], '32FC1')
    assert same_bits(image_to_array(msg), pixels)


@pytest.mark.parametrize('pixels, encoding, words', [
    (np.zeros((4, 4, 3), np.uint8), 'bgr9', ['encoding', "'bgr9'"]),
    (np.zeros((4, 4, 3), np.uint16), 'bgr8', ['dtype', 'uint16', "'bgr8'", 'uint8']),
    (np.zeros((4, 4), np.uint8), 'bgr8', ['channel', '1', '3', "'bgr8'"]),
    (np.zeros((4, 4, 4), np.uint8), 'rgb8', ['channel', '4', '3', "'rgb8'"]),
    (np.zeros((2, 4, 4, 3), np.uint8), 'rgb8', ['shape', '(2, 4, 4, 3)']),
    (np.zeros((0, 4), np.uint8), 'mono8', ['height', '0']),
    (np.zeros((4, 0, 3), np.uint8), 'bgr8', ['width', '0']),
    (np.zeros((4, 5, 2), np.uint8), 'yuv422', ['width', '5', 'even']),
    (np.zeros((4, 4), np.float64), '32FC1', ['dtype', 'float64', 'float32']),
    ([[0, 1], [2, 3]], 'mono8', ['ndarray', 'list']),
])
def test_array_to_image_rejects_mismatch(pixels: np.ndarray, encoding: str,
                                         words: list[str]) -> None:
    with pytest.raises(ImageConversionError) as raised:
        array_to_image(pixels, encoding)
    for word in words:
        assert word in str(raised.value)


def test_huge_declared_size_is_rejected_without_allocating() -> None:
    msg = make_message(random_pixels('rgb8', 2, 2, seed=8), 'rgb8')
    msg.height = 2**32 - 1
    with pytest.raises(ImageConversionError,
                       match=r'data has 12 bytes, but step \* height = 6 \* 4294967295'):
        image_to_array(msg)


def test_step_not_multiple_of_element_size_is_rejected() -> None:
    msg = make_message(random_pixels('mono16', 3, 4, seed=9), 'mono16', padding=3)
    with pytest.raises(ImageConversionError, match=r'step 11 .* 2-byte element'):
        image_to_array(msg)


def test_long_data_is_rejected_like_cv_bridge() -> None:
    msg = make_message(random_pixels('mono8', 3, 4, seed=10), 'mono8')
    msg.data.append(0)
    with pytest.raises(ImageConversionError,
                       match=r'data has 13 bytes, but step \* height = 4 \* 3 = 12'):
        image_to_array(msg)


# --- to_bgr8 / to_rgb8 -----------------------------------------------------------------

def expected_8bit(values: np.ndarray) -> np.ndarray:
    """cv_bridge's 16 -> 8 bit scaling, convertTo(alpha=255/65535): round(v * 255 / 65535)."""
    return np.rint(values.astype(np.float64) * 255 / 65535).astype(np.uint8)


def test_to_bgr8_returns_bgr8_itself_and_padded_views_uncopied() -> None:
    pixels = random_pixels('bgr8', 4, 5, seed=11)
    assert to_bgr8(pixels, 'bgr8') is pixels
    view = image_to_array(make_message(pixels, 'bgr8', padding=64))
    assert to_bgr8(view, 'bgr8') is view
    rgb = image_to_array(make_message(pixels, 'rgb8', padding=64))
    assert to_rgb8(rgb, 'rgb8') is rgb


@pytest.mark.parametrize('padding', [0, 3])
def test_colour_conversions_of_8bit(padding: int) -> None:
    bgra = random_pixels('bgra8', 4, 6, seed=12)
    bgr = bgra[:, :, :3]
    rgb = bgr[:, :, ::-1]
    rgba = bgra[:, :, [2, 1, 0, 3]]
    mono = bgra[:, :, 0]
    cases = {'bgr8': bgr, 'rgb8': rgb, 'bgra8': bgra, 'rgba8': rgba}
    for encoding, pixels in cases.items():
        view = image_to_array(make_message(np.ascontiguousarray(pixels), encoding, padding))
        assert np.array_equal(to_bgr8(view, encoding), bgr), encoding
        assert np.array_equal(to_rgb8(view, encoding), rgb), encoding
    mono_view = image_to_array(make_message(np.ascontiguousarray(mono), 'mono8', padding))
    assert np.array_equal(to_bgr8(mono_view, 'mono8'), np.dstack([mono] * 3))
    assert np.array_equal(to_rgb8(mono_view, 'mono8'), np.dstack([mono] * 3))


def test_mono16_scales_every_value_like_cv_bridge() -> None:
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    result = to_bgr8(values, 'mono16')
    assert result.dtype == np.uint8 and result.shape == (256, 256, 3)
    assert np.array_equal(result[:, :, 1], expected_8bit(values))
    assert np.array_equal(result[:, :, 0], result[:, :, 2])
    # Rounding, not a shift: 384 / 257 = 1.49 and 386 / 257 = 1.50...
    assert result[1, 128, 0] == 1 and result[1, 130, 0] == 2 and result[255, 255, 0] == 255


@pytest.mark.parametrize('bigendian', [False, True])
@pytest.mark.parametrize('encoding, order', [('bgr16', [0, 1, 2]), ('rgb16', [2, 1, 0]),
                                             ('bgra16', [0, 1, 2]), ('rgba16', [2, 1, 0])])
def test_16bit_colour_to_8bit(encoding: str, order: list[int], bigendian: bool) -> None:
    pixels = random_pixels(encoding, 5, 4, seed=13)
    view = image_to_array(make_message(pixels, encoding, padding=6, bigendian=bigendian))
    bgr = expected_8bit(pixels[:, :, order])
    assert np.array_equal(to_bgr8(view, encoding), bgr)
    assert np.array_equal(to_rgb8(view, encoding), bgr[:, :, ::-1])


def test_non_native_and_misaligned_arrays_are_not_misread() -> None:
    values = np.array([[0, 1000, 65000]], np.uint16)
    big = values.astype('>u2')
    # Rows 7 bytes apart: OpenCV cannot take a row step that is not whole elements.
    raw = np.zeros(14, np.uint8)
    odd_step = np.ndarray((2, 3), np.uint16, buffer=raw, offset=1, strides=(7, 2))
    odd_step[...] = values
    for pixels in (big, odd_step):
        assert to_bgr8(pixels, 'mono16')[..., 0].tolist()[-1] == [0, 4, 253]


@pytest.mark.parametrize('encoding', NODE_ENCODINGS)
def test_every_node_encoding_converts_from_a_message(encoding: str) -> None:
    pixels = random_pixels(encoding, 3, 4, seed=14)
    frame = to_bgr8(image_to_array(make_message(pixels, encoding, padding=2)), encoding)
    assert frame.shape == (3, 4, 3) and frame.dtype == np.uint8
    assert np.array_equal(to_rgb8(pixels, encoding), cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))


@pytest.mark.parametrize('convert', [to_bgr8, to_rgb8])
@pytest.mark.parametrize('pixels, encoding, words', [
    (np.zeros((2, 4, 2), np.uint8), 'yuv422', ['cannot convert', "'yuv422'"]),
    (np.zeros((2, 4), np.float32), '32FC1', ['cannot convert', "'32FC1'"]),
    (np.zeros((2, 4, 3), np.uint8), 'mono8', ['3 channel', "'mono8'"]),
    (np.zeros((2, 4), np.uint8), 'mono16', ['dtype uint8', 'uint16']),
])
def test_display_conversion_rejects_mismatch(convert, pixels: np.ndarray, encoding: str,
                                             words: list[str]) -> None:
    with pytest.raises(ImageConversionError) as raised:
        convert(pixels, encoding)
    for word in words:
        assert word in str(raised.value)


# --- properties --------------------------------------------------------------------------

@st.composite
def valid_messages(draw) -> tuple[Image, np.ndarray]:
    encoding = draw(st.sampled_from(SUPPORTED_ENCODINGS))
    dtype, _ = layout_of(encoding)
    height = draw(st.integers(1, 40))
    width = draw(st.integers(1, 20)) * 2 if encoding in YUV422_ENCODINGS else draw(
        st.integers(1, 40))
    padding = draw(st.integers(0, 70 // dtype.itemsize)) * dtype.itemsize
    pixels = random_pixels(encoding, height, width, seed=draw(st.integers(0, 2**32 - 1)))
    msg = make_message(pixels, encoding, padding, bigendian=draw(st.booleans()))
    return msg, pixels


@settings(max_examples=200, deadline=None)
@given(valid_messages())
def test_property_valid_images_round_trip(message_and_pixels: tuple[Image, np.ndarray]
                                          ) -> None:
    msg, pixels = message_and_pixels
    first = image_to_array(msg)
    assert same_bits(first, pixels)

    rebuilt = array_to_image(first, msg.encoding, msg.header)
    second = image_to_array(rebuilt)

    assert same_bits(second, pixels)
    assert rebuilt.step == first.shape[1] * first.itemsize * (
        1 if first.ndim == 2 else first.shape[2])
    assert same_bits(image_to_array(deserialize_message(serialize_message(rebuilt), Image)),
                     pixels)


MUTATIONS = ('zero_height', 'zero_width', 'short_data', 'long_data', 'tiny_step',
             'misaligned_step', 'unknown_encoding', 'huge_height', 'huge_width',
             'odd_yuv_width')


@st.composite
def invalid_messages(draw) -> tuple[Image, str, str]:
    """Return a message broken in one way, the field the error must name and its value."""
    msg, _ = draw(valid_messages())
    dtype, channels = layout_of(msg.encoding)
    row_bytes = msg.width * dtype.itemsize * channels
    mutation = draw(st.sampled_from(MUTATIONS))
    if mutation == 'zero_height':
        msg.height = 0
        return msg, 'height', '0'
    if mutation == 'zero_width':
        msg.width = 0
        return msg, 'width', '0'
    if mutation == 'short_data':
        cut = draw(st.integers(1, len(msg.data)))
        msg.data = msg.data[:-cut]
        return msg, 'data', str(len(msg.data))
    if mutation == 'long_data':
        msg.data.extend(bytes(draw(st.integers(1, 100))))
        return msg, 'data', str(len(msg.data))
    if mutation == 'tiny_step':
        msg.step = row_bytes - draw(st.integers(1, row_bytes))
        return msg, 'step', str(msg.step)
    if mutation == 'misaligned_step' and dtype.itemsize > 1:
        msg.step = row_bytes + draw(st.integers(1, dtype.itemsize - 1))
        msg.data = array.array('B', bytes(msg.step * msg.height))
        return msg, 'step', str(msg.step)
    if mutation == 'huge_height':
        msg.height = draw(st.integers(msg.height + 1, 2**32 - 1))
        return msg, 'data', str(msg.height)
    if mutation == 'huge_width':
        msg.width = draw(st.integers(msg.step // 2 + 1, 2**31 - 1)) * 2
        return msg, 'step', str(msg.step)
    if mutation == 'odd_yuv_width':
        msg.encoding = draw(st.sampled_from(YUV422_ENCODINGS))
        msg.width = draw(st.integers(0, 19)) * 2 + 1
        msg.step = msg.width * 2
        msg.data = array.array('B', bytes(msg.step * msg.height))
        return msg, 'width', str(msg.width)
    # 'unknown_encoding' (and 'misaligned_step' for 1-byte elements, which cannot misalign).
    msg.encoding = draw(st.text(max_size=12).filter(lambda name: name not in SUPPORTED_ENCODINGS))
    return msg, 'encoding', repr(msg.encoding)


@settings(max_examples=200, deadline=None)
@given(invalid_messages())
def test_property_invalid_images_raise_clear_errors(case: tuple[Image, str, str]) -> None:
    msg, field, value = case
    with pytest.raises(ImageConversionError) as raised:
        image_to_array(msg)
    message = str(raised.value)
    assert field in message and value in message, message
