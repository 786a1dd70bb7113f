"""Generated street scenes: determinism, exact ground truth, class coverage, animation."""

import numpy as np
import pytest

from seg_ros.data import synthetic
from seg_ros.data.synthetic import CityscapesClass as C

WIDTH, HEIGHT = 256, 128
SEEDS = range(24)


def scene(seed: int, **options) -> tuple[np.ndarray, np.ndarray]:
    return synthetic.render_scene(np.random.default_rng(seed), WIDTH, HEIGHT, **options)


def test_same_seed_same_scene_other_seed_other_scene():
    first, first_labels = scene(3)
    again, again_labels = scene(3)
    other, other_labels = scene(4)
    assert first.shape == (HEIGHT, WIDTH, 3) and first.dtype == np.uint8
    assert first_labels.shape == (HEIGHT, WIDTH) and first_labels.dtype == np.uint8
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first_labels, again_labels)
    assert not np.array_equal(first_labels, other_labels)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize('zoom', [1.0, 2.5])
def test_every_pixel_shows_the_colour_of_its_class_when_painting_class_colours(zoom):
    # Every shape is drawn through the same calls in both modes, so in label-colour mode any
    # pixel drawn into the image but not into the class map (or the reverse) would show.
    for seed in SEEDS:
        bgr, labels = scene(seed, zoom=zoom, label_colors=True)
        mismatched = np.any(bgr != synthetic.CLASS_COLORS_BGR[labels], axis=-1)
        assert not mismatched.any(), f'seed {seed}: {mismatched.sum()} pixels disagree'


def test_class_boundaries_are_image_edges_without_photometric_finish():
    # Flat-shaded shapes: where the class changes between neighbours, the colour changes
    # too; a class map shifted against the image would put many boundaries inside shapes.
    for seed in SEEDS:
        bgr, labels = scene(seed, photometric=False)
        for axis in (0, 1):
            boundary = np.diff(labels.astype(np.int16), axis=axis) != 0
            same_colour = np.all(np.diff(bgr.astype(np.int16), axis=axis) == 0, axis=-1)
            share = (boundary & same_colour).sum() / max(1, boundary.sum())
            assert share < 0.02, f'seed {seed}: {share:.1%} of class boundaries are flat'


def test_regions_look_like_their_class_without_photometric_finish():
    for seed in SEEDS:
        bgr, labels = scene(seed, photometric=False)
        pixels = bgr.astype(np.float64)
        # Green excess: how much greener than its red and blue a pixel is.
        green_excess = pixels[..., 1] - (pixels[..., 0] + pixels[..., 2]) / 2
        # Medians: lane markings are a small part of the road. Tree trunks are Vegetation
        # too, so the greenest quarter of it (the leaves) is compared.
        excess = {c: np.median(green_excess[labels == c]) for c in np.unique(labels)}
        mean = {c: np.median(pixels[labels == c], axis=0) for c in np.unique(labels)}
        if C.VEGETATION in excess:
            leaves = np.percentile(green_excess[labels == C.VEGETATION], 75)
            for grey in (C.ROAD, C.SKY):
                if grey in excess:
                    assert leaves > excess[grey], f'seed {seed}: {C(grey).name}'
        if C.SKY in mean:
            assert mean[C.SKY].mean() > 100, f'seed {seed}: sky too dark {mean[C.SKY]}'
        if C.ROAD in mean:
            road = mean[C.ROAD]
            assert road.max() - road.min() < 60, f'seed {seed}: road not grey {road}'


def test_sky_is_above_the_road_and_the_road_reaches_the_bottom():
    bottom_road = 0
    for seed in SEEDS:
        _, labels = scene(seed)
        rows = np.arange(HEIGHT)[:, None].repeat(WIDTH, 1)
        if (labels == C.SKY).any() and (labels == C.ROAD).any():
            assert rows[labels == C.SKY].max() < rows[labels == C.ROAD].min(), f'seed {seed}'
        bottom_road += np.count_nonzero(labels[-1] == C.ROAD) > WIDTH // 4
    assert bottom_road >= len(SEEDS) * 3 // 4


def test_all_promised_classes_appear_and_no_other():
    seen = set()
    for seed in range(40):
        _, labels = scene(seed, zoom=1.0 + seed % 3)
        seen |= set(np.unique(labels).tolist())
    assert seen == set(synthetic.SCENE_CLASSES)


def test_zoom_makes_objects_larger():
    # The same scene decisions at zoom 3 show a window of a 3x larger render: the share of
    # the frame each object covers grows, so fewer classes fit in the frame on average.
    classes = {1.0: 0, 3.0: 0}
    for seed in SEEDS:
        for zoom in classes:
            _, labels = scene(seed, zoom=zoom)
            classes[zoom] += len(np.unique(labels))
    assert classes[3.0] < classes[1.0]


@pytest.mark.parametrize('width, height, zoom', [(7, 64, 1.0), (64, 0, 1.0), (64, 64, 0.5)])
def test_bad_arguments_raise_value_error_naming_them(width, height, zoom):
    with pytest.raises(ValueError, match='width|height|zoom'):
        synthetic.render_scene(np.random.default_rng(0), width, height, zoom=zoom)


def test_animation_moves_yet_is_deterministic():
    animation = synthetic.SceneAnimation(320, 180, seed=5)
    twin = synthetic.SceneAnimation(320, 180, seed=5)
    frame, labels = animation.frame(2.0)
    assert frame.shape == (180, 320, 3) and labels.shape == (180, 320)
    again, again_labels = twin.frame(2.0)
    np.testing.assert_array_equal(frame, again)
    np.testing.assert_array_equal(labels, again_labels)
    later, later_labels = animation.frame(3.0)
    assert not np.array_equal(labels, later_labels)
    assert np.abs(later.astype(int) - frame.astype(int)).mean() > 1.0
    assert set(np.unique(labels).tolist()) <= set(synthetic.SCENE_CLASSES)
    # Going back in time gives the same frame again: frames depend on t only.
    np.testing.assert_array_equal(animation.frame(2.0)[1], labels)


def test_animation_seeds_differ():
    first = synthetic.SceneAnimation(160, 96, seed=1).frame(0.0)[1]
    second = synthetic.SceneAnimation(160, 96, seed=2).frame(0.0)[1]
    assert not np.array_equal(first, second)


def test_held_out_frames_are_fixed_and_distinct():
    first = synthetic.render_scene(synthetic.held_out_rng(0), 64, 32)[1]
    again = synthetic.render_scene(synthetic.held_out_rng(0), 64, 32)[1]
    other = synthetic.render_scene(synthetic.held_out_rng(1), 64, 32)[1]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    with pytest.raises(ValueError, match='index'):
        synthetic.held_out_rng(-1)


def test_iou_from_confusion():
    truth = np.array([[0, 0, 1, 1], [2, 2, 2, 2]], np.uint8)
    predicted = np.array([[0, 1, 1, 1], [2, 2, 2, 0]], np.uint8)
    confusion = synthetic.class_confusion(truth, predicted, 4)
    assert confusion.sum() == truth.size
    assert confusion[0, 0] == 1 and confusion[0, 1] == 1 and confusion[2, 0] == 1
    iou = synthetic.class_iou(confusion)
    # Class 0: 1 hit, union {truth 2, predicted 2} -> 3; class 1: 2 / 3; class 2: 3 / 4.
    np.testing.assert_allclose(iou[:3], [1 / 3, 2 / 3, 3 / 4])
    assert np.isnan(iou[3])
    with pytest.raises(ValueError, match='shape'):
        synthetic.class_confusion(truth, predicted[:, :2], 4)
