"""Tests of seg_ros.core.render.color and class map resizing: lookup tables, masks, overlays."""

import numpy as np
import pytest

from seg_ros.core.decode.instances import Instances
from seg_ros.core.decode.semantic import resize_class_map
from seg_ros.core.render.color import blend, color_lut, colorize
from seg_ros.core.render.instances import draw_instances, instance_colors

COLORS = np.array([[10, 20, 30], [200, 100, 0], [0, 255, 7]], np.uint8)


def test_color_lut_orders_channels_and_blacks_out_unknown_ids():
    rgb = color_lut(COLORS, 'rgb8')
    bgr = color_lut(COLORS, 'bgr8')
    assert rgb.shape == (256, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[:3], COLORS)
    np.testing.assert_array_equal(bgr[:3], COLORS[:, ::-1])
    assert not rgb[3:].any() and not bgr[3:].any()


def test_color_lut_rejects_bad_input():
    with pytest.raises(ValueError, match='encoding'):
        color_lut(COLORS, 'mono8')
    with pytest.raises(ValueError, match='colors_rgb'):
        color_lut(COLORS.astype(np.int32), 'rgb8')


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8'])
def test_colorize_equals_table_lookup(encoding):
    rng = np.random.default_rng(3)
    class_map = rng.integers(0, 4, size=(37, 53), dtype=np.uint8)  # id 3 has no colour
    lut = color_lut(COLORS, encoding)
    mask = colorize(class_map, lut)
    assert mask.shape == (37, 53, 3) and mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, lut[class_map])
    out = np.empty_like(mask)
    assert colorize(class_map, lut, out=out) is out
    np.testing.assert_array_equal(out, mask)


def test_blend_matches_the_float_formula_within_rounding():
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, size=(41, 29, 3), dtype=np.uint8)
    mask = rng.integers(0, 256, size=(41, 29, 3), dtype=np.uint8)
    for alpha in (0.0, 0.3, 0.5, 0.77, 1.0):
        overlay = blend(image, mask, alpha)
        reference = (1 - alpha) * image.astype(np.float64) + alpha * mask.astype(np.float64)
        assert overlay.dtype == np.uint8
        assert np.abs(overlay.astype(np.float64) - reference).max() <= 1.0
    np.testing.assert_array_equal(blend(image, mask, 0.0), image)
    np.testing.assert_array_equal(blend(image, mask, 1.0), mask)


def test_blend_rejects_bad_alpha_and_shapes():
    image = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match='alpha'):
        blend(image, image, 1.5)
    with pytest.raises(ValueError, match='same shape'):
        blend(image, np.zeros((4, 5, 3), np.uint8), 0.5)


def test_resize_class_map_returns_the_input_at_the_same_size():
    class_map = np.zeros((8, 16), np.uint8)
    assert resize_class_map(class_map, 16, 8) is class_map


def test_resize_class_map_repeats_pixels_for_integer_factors():
    class_map = np.arange(12, dtype=np.uint8).reshape(3, 4)
    resized = resize_class_map(class_map, 8, 9)
    np.testing.assert_array_equal(resized, np.repeat(np.repeat(class_map, 3, 0), 2, 1))


@pytest.mark.parametrize('source, target', [((512, 1024), (563, 751)), ((97, 131), (250, 61)),
                                            ((200, 250), (37, 241))])
def test_resize_class_map_samples_pixel_centres(source, target):
    # Encode the source row (then column) in the value, to read back where each pixel came from.
    rows = np.repeat((np.arange(source[0]) % 256).astype(np.uint8)[:, None], source[1], axis=1)
    columns = np.repeat((np.arange(source[1]) % 256).astype(np.uint8)[None, :], source[0], axis=0)
    for encoded, axis in ((rows, 0), (columns, 1)):
        resized = resize_class_map(encoded, target[1], target[0])
        assert resized.shape == target and resized.dtype == np.uint8
        taken = resized[:, 0] if axis == 0 else resized[0, :]
        assert (np.take(resized, [0], axis=1 - axis) == resized).all()
        centre = np.floor((np.arange(target[axis]) + 0.5) * source[axis] / target[axis])
        expected = (np.minimum(centre, source[axis] - 1) % 256).astype(np.int64)
        # Fixed-point sampling may pick the neighbour where the centre falls next to a border.
        difference = np.abs(taken.astype(np.int64) - expected) % 256
        assert np.isin(difference, [0, 1, 255]).all()
        assert (difference == 0).mean() > 0.95


def test_drawing_no_instances_leaves_the_image_as_it_is():
    # A frame without detections: no colours to make (cv2.cvtColor refuses an empty image).
    assert instance_colors(np.array([], np.int64)).shape == (0, 3)
    image = np.full((10, 12, 3), 7, np.uint8)
    drawn = draw_instances(image, Instances.empty(10, 12), np.zeros((10, 12), np.uint16), ('a',))
    assert drawn is image and (image == 7).all()
