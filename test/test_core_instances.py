"""Instances, the instance map, drawing, JSON, and connected components of class maps."""

import cv2
import numpy as np
import pytest

from instance_models import reference_components
from seg_ros.core.decode.instance_decoders import instances_from_class_map, InstanceSettings
from seg_ros.core.decode.instances import equal_mask, Instances, pixel_region
from seg_ros.core.render.instances import draw_instances, instance_colors
from seg_ros.data import synthetic

CAR = int(synthetic.CityscapesClass.CAR)
PERSON = int(synthetic.CityscapesClass.PERSON)


def two_squares(height=40, width=60) -> Instances:
    masks = np.zeros((2, height, width), bool)
    masks[0, 5:20, 5:30] = True
    masks[1, 10:30, 20:50] = True
    return Instances.numbered(np.array([[5, 5, 30, 20], [20, 10, 50, 30]]), masks,
                              [2, 7], [0.9, 0.6])


def test_pixel_region_takes_the_pixels_whose_centres_are_in_the_box():
    assert pixel_region((0.0, 0.0, 10.0, 5.0), 100, 100) == (0, 0, 10, 5)
    assert pixel_region((0.6, 0.4, 2.4, 2.6), 100, 100) == (1, 0, 2, 3)
    assert pixel_region((-5, -5, 200, 7), 100, 50) == (0, 0, 100, 7)
    assert pixel_region((3.2, 3.2, 3.4, 3.4), 100, 100)[0:3:2] == (3, 3)  # no centre: empty


def test_instances_select_by_boolean_index_and_keep_ids():
    instances = two_squares()
    assert len(instances) == 2 and instances.frame_shape == (40, 60)
    second = instances[instances.score < 0.7]
    assert len(second) == 1 and list(second.ids) == [2] and list(second.class_id) == [7]
    assert second.masks.shape == (1, 40, 60)
    assert len(instances[np.array([], np.int64)]) == 0
    with pytest.raises(ValueError, match='class_id'):
        Instances(instances.xyxy, instances.masks, instances.class_id[:1], instances.score,
                  instances.ids)


def test_instance_map_gives_overlaps_to_the_better_instance():
    instances = two_squares()
    instance_map = instances.instance_map()
    assert instance_map.dtype == np.uint16
    expected = np.zeros((40, 60), np.uint16)
    expected[10:30, 20:50] = 2
    expected[5:20, 5:30] = 1
    np.testing.assert_array_equal(instance_map, expected)
    np.testing.assert_array_equal(instances[np.array([False, True])].instance_map() == 2,
                                  instances.masks[1])


def test_json_has_ids_classes_names_scores_and_boxes():
    data = two_squares().to_json(['a', 'b', 'car'])
    assert data == {'instances': [
        {'id': 1, 'class_id': 2, 'class_name': 'car', 'score': 0.9, 'box': [5, 5, 30, 20]},
        {'id': 2, 'class_id': 7, 'class_name': 'class_7', 'score': 0.6,
         'box': [20, 10, 50, 30]}]}


def test_drawing_fills_outlines_and_labels_each_instance_in_its_colour():
    instances = two_squares(120, 160)
    instance_map = instances.instance_map()
    image = np.full((120, 160, 3), 100, np.uint8)
    drawn = draw_instances(image.copy(), instances, instance_map, ['x'] * 8, encoding='bgr8',
                           fill_alpha=0.5, labels=False, thickness=1)
    colors = instance_colors(instances.ids, 'bgr8')
    assert not np.array_equal(colors[0], colors[1])
    for index in range(2):
        visible = instance_map == instances.ids[index]
        inside = cv2.erode(visible.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        edge = visible & ~inside
        expected_fill = np.round(100 * 0.5 + colors[index].astype(float) * 0.5)
        np.testing.assert_allclose(drawn[inside], np.broadcast_to(expected_fill,
                                                                  drawn[inside].shape), atol=1)
        assert (drawn[edge] == colors[index]).all(axis=1).mean() > 0.9
    assert (drawn[instance_map == 0] == 100).all()
    labelled = draw_instances(image.copy(), instances, instance_map, ['x'] * 8, fill_alpha=0)
    assert (labelled[instance_map == 0] != 100).any()  # the label boxes sit above the boxes
    assert instance_colors(np.array([5]), 'rgb8')[0].tolist() == \
        instance_colors(np.array([5]), 'bgr8')[0][::-1].tolist()


# --- connected components --------------------------------------------------------------------


@pytest.mark.parametrize('seed', [0, 2, 3, 4])  # scenes with cars and people
def test_components_of_generated_scenes_equal_a_breadth_first_search(seed):
    _, class_map = synthetic.render_scene(np.random.default_rng(seed), 160, 96,
                                          photometric=False)
    settings = InstanceSettings(class_ids=(CAR, PERSON), min_instance_area=6, max_instances=50)
    instances = instances_from_class_map(class_map, settings)
    expected = []
    for order, class_id in enumerate((CAR, PERSON)):
        for index, mask in enumerate(reference_components(class_map == class_id)):
            if mask.sum() >= 6:
                expected.append((-int(mask.sum()), order, index, class_id, mask))
    # Equal areas: class order, then the component whose first pixel (raster order) comes first.
    expected.sort(key=lambda item: item[:3])
    assert len(expected) >= 2
    assert len(instances) == min(len(expected), 50)
    for index, (_, _, _, class_id, mask) in enumerate(expected[:50]):
        rows, cols = np.nonzero(mask)
        assert instances.class_id[index] == class_id
        np.testing.assert_array_equal(instances.masks[index], mask)
        np.testing.assert_array_equal(instances.xyxy[index],
                                      [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
    assert (instances.score == 1).all()
    np.testing.assert_array_equal(instances.ids, np.arange(1, len(instances) + 1))


def test_components_respect_min_area_and_max_instances():
    class_map = np.zeros((20, 30), np.uint8)
    class_map[1:4, 1:4] = 5      # 9 pixels
    class_map[10:12, 10:12] = 5  # 4 pixels
    class_map[15, 25] = 5        # 1 pixel
    class_map[5:8, 20:29] = 3    # 27 pixels, another class
    areas = [m.sum() for m in instances_from_class_map(
        class_map, InstanceSettings(class_ids=(5, 3), min_instance_area=4)).masks]
    assert areas == [27, 9, 4]
    top = instances_from_class_map(class_map, InstanceSettings(class_ids=(5,), max_instances=1,
                                                               min_instance_area=0))
    assert len(top) == 1 and top.masks[0].sum() == 9
    assert len(instances_from_class_map(class_map, InstanceSettings(class_ids=()))) == 0


def test_one_pixel_instances_are_drawn_and_a_one_pixel_frame_is_segmented():
    """cv2.compare takes a 1x1 image and a number for two arrays: equal_mask does not."""
    class_map = np.zeros((6, 8), np.uint8)
    class_map[1, 1] = class_map[4, 6] = 3             # two one-pixel components
    settings = InstanceSettings(0.5, 0.5, 100, 1, (3,))
    instances = instances_from_class_map(class_map, settings)
    assert len(instances) == 2
    image = np.zeros((6, 8, 3), np.uint8)
    draw_instances(image, instances, instances.instance_map(), ['a', 'b', 'c', 'd'])
    assert image.any()
    assert len(instances_from_class_map(np.full((1, 1), 3, np.uint8), settings)) == 1
    assert equal_mask(np.full((1, 1), 7, np.uint16), 7).tolist() == [[255]]
    assert equal_mask(np.array([[7, 2]], np.uint8), 7).tolist() == [[255, 0]]
