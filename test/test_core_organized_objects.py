"""
The organized cloud Nav2's semantic layer walks, and objects in 3-D, against per-pixel references.

The organized cloud (:func:`organized_points`) is checked against a plain Python loop over the
class map's pixels (``depth_scene``'s street: a box 3 m ahead on flat ground), at the depth's
size, with the class map at another resolution and aspect (the network's), and with depth of
another resolution. The objects (:func:`objects_3d`) are checked against ``np.median`` and
``np.percentile`` of each instance's points, one instance at a time.
"""

import math

import numpy as np
import pytest

import depth_scene as scene
from seg_ros.core.geometry.camera import Intrinsics
from seg_ros.core.geometry.depth import depth_to_metres
from seg_ros.core.geometry.objects import instance_points, objects_3d
from seg_ros.core.geometry.points import labelled_points, organized_points

COLORS_RGB = np.array([[128, 64, 128], [0, 0, 142], [244, 35, 232], [70, 130, 180]], np.uint8)
INTRINSICS = Intrinsics(scene.FX, scene.FY, scene.CX, scene.CY, scene.WIDTH, scene.HEIGHT)


def reference_cloud(metres: np.ndarray, classes: np.ndarray, instances: np.ndarray | None,
                    width: int, height: int) -> dict:
    """
    Return the expected organized cloud on a (height, width) class map, pixel by pixel.

    The class map is the colour image resized to (width, height) (each axis on its own scale);
    its pixel (c, r) takes the depth, class and instance at the centre of the pixel it covers.
    """
    scale_x, scale_y = width / scene.WIDTH, height / scene.HEIGHT
    fx, fy, cx, cy = (scene.FX * scale_x, scene.FY * scale_y, scene.CX * scale_x,
                      scene.CY * scale_y)
    out = {name: np.zeros((height, width)) for name in ('x', 'y', 'z', 'label', 'instance')}
    for r in range(height):
        for c in range(width):
            def at(image: np.ndarray):
                return image[min(int((r + 0.5) * image.shape[0] / height), image.shape[0] - 1),
                             min(int((c + 0.5) * image.shape[1] / width), image.shape[1] - 1)]
            z = float(at(metres))
            out['x'][r, c] = (c - cx) * z / fx if math.isfinite(z) else math.nan
            out['y'][r, c] = (r - cy) * z / fy if math.isfinite(z) else math.nan
            out['z'][r, c] = z
            out['label'][r, c] = classes[r, c]
            out['instance'][r, c] = 0 if instances is None else at(instances)
    return out


def assert_cloud(cloud: np.ndarray, expected: dict, classes: np.ndarray) -> None:
    assert cloud.shape == classes.shape
    for axis in 'xyz':
        assert np.array_equal(np.isnan(cloud[axis]), np.isnan(expected[axis])), axis
        np.testing.assert_allclose(cloud[axis], expected[axis], rtol=1e-6, atol=1e-6)
    assert np.array_equal(cloud['label'], expected['label'])
    if 'instance' in cloud.dtype.names:
        assert np.array_equal(cloud['instance'], expected['instance'])
    packed = COLORS_RGB.astype(np.uint32)
    packed = (packed[:, 0] << 16) | (packed[:, 1] << 8) | packed[:, 2]
    assert np.array_equal(cloud['rgb'].view('<u4'), packed[classes])


def scene_instances() -> np.ndarray:
    """Return an instance map of the scene: the box is instance 7, a road patch instance 9."""
    _, classes = scene.scene()
    instances = np.where(classes == scene.CAR, 7, 0).astype(np.uint16)
    instances[40:48, 0:6] = 9
    return instances


@pytest.mark.parametrize('encoding', ['16UC1', '32FC1'])
def test_organized_cloud_at_the_depths_size_matches_the_reference(encoding):
    metres = depth_to_metres(scene.encoded_depth(encoding), scene.DEPTH_RANGE)
    _, classes = scene.scene()
    instances = scene_instances()
    cloud = organized_points(metres, INTRINSICS, classes, instances, COLORS_RGB)
    assert cloud.dtype.names == ('x', 'y', 'z', 'rgb', 'label', 'instance')
    assert cloud.dtype.itemsize == 20 and cloud.flags['C_CONTIGUOUS']
    assert_cloud(cloud, reference_cloud(metres, classes, instances, 64, 48), classes)
    assert np.isnan(cloud['z'][0]).all(), 'the sky has no depth: NaN, still a point'
    assert np.isnan(cloud['x'][44, 2:8]).all(), 'beyond depth_range: NaN'
    # The valid points are those of the unorganized cloud, in the same order.
    valid = ~np.isnan(cloud['z'].reshape(-1))
    points = labelled_points(metres, INTRINSICS, classes, 1, instances)
    assert np.array_equal(cloud.reshape(-1)[valid][['x', 'y', 'z', 'label', 'instance']],
                          points.array[['x', 'y', 'z', 'label', 'instance']])


@pytest.mark.parametrize('width, height', [(80, 30), (32, 24), (100, 75)])
def test_organized_cloud_on_a_class_map_of_the_networks_size(width, height):
    metres = depth_to_metres(scene.encoded_depth('32FC1'), scene.DEPTH_RANGE)
    _, full_classes = scene.scene()
    rows = np.minimum(((np.arange(height) + 0.5) * 48 / height).astype(int), 47)
    columns = np.minimum(((np.arange(width) + 0.5) * 64 / width).astype(int), 63)
    classes = full_classes[rows][:, columns]             # the class map at another size
    instances = scene_instances()
    cloud = organized_points(metres, INTRINSICS, classes, instances, COLORS_RGB)
    assert_cloud(cloud, reference_cloud(metres, classes, instances, width, height), classes)


def test_organized_cloud_with_depth_of_another_resolution():
    metres = depth_to_metres(scene.encoded_depth('32FC1'), scene.DEPTH_RANGE)
    half = np.ascontiguousarray(metres[::2, ::2])         # a 32x24 depth camera, same optics
    _, classes = scene.scene()
    cloud = organized_points(half, INTRINSICS, classes, None, COLORS_RGB)
    assert cloud.dtype.names == ('x', 'y', 'z', 'rgb', 'label')
    assert_cloud(cloud, reference_cloud(half, classes, None, 64, 48), classes)
    with pytest.raises(ValueError, match='not the 64x48 camera'):
        organized_points(np.zeros((30, 30), np.float32), INTRINSICS, classes)


def test_no_valid_depth_gives_every_point_nan_and_no_error():
    _, classes = scene.scene()
    cloud = organized_points(np.full((48, 64), np.nan, np.float32), INTRINSICS, classes)
    assert cloud.shape == (48, 64) and np.isnan(cloud['x']).all() and np.isnan(cloud['z']).all()
    assert np.array_equal(cloud['label'], classes)


# ---- objects -----------------------------------------------------------------------------------
def reference_objects(xyz: np.ndarray, owners: np.ndarray, ids, min_points: int) -> dict:
    """Return {id: (centre, size, count)} per id with enough valid points: NumPy, one by one."""
    expected = {}
    valid = np.all(np.isfinite(xyz), axis=1)
    for instance in ids:
        points = xyz[valid & (owners == instance)].astype(np.float64)
        if instance > 0 and len(points) >= min_points:
            size = np.percentile(points, 95, axis=0) - np.percentile(points, 5, axis=0)
            expected[int(instance)] = (np.median(points, axis=0), size, len(points))
    return expected


def assert_objects(objects, expected: dict, ids, class_id, score) -> None:
    assert objects.ids.tolist() == [i for i in ids if i in expected], 'in the order of ids'
    for index, instance in enumerate(objects.ids.tolist()):
        centre, size, count = expected[instance]
        np.testing.assert_allclose(objects.center[index], centre, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(objects.size[index], size, rtol=1e-9, atol=1e-9)
        assert objects.point_count[index] == count
        position = list(ids).index(instance)
        assert objects.class_id[index] == class_id[position]
        assert objects.score[index] == np.float32(score[position])


def test_objects_of_the_street_scene():
    metres = depth_to_metres(scene.encoded_depth('16UC1'), scene.DEPTH_RANGE)
    _, classes = scene.scene()
    instances = scene_instances()
    instances[0:4, 60:64] = 11                            # in the sky, at the frame's edge
    cloud = organized_points(metres, INTRINSICS, classes, instances)
    xyz = np.stack([cloud['x'], cloud['y'], cloud['z']], axis=-1)
    ids, class_id, score = [7, 9, 11, 12], [scene.CAR, scene.ROAD, 3, 1], [0.9, 0.8, 0.7, 0.6]
    objects = objects_3d(xyz, cloud['instance'], ids, class_id, score, 10)
    expected = reference_objects(xyz.reshape(-1, 3), cloud['instance'].reshape(-1), ids, 10)
    assert sorted(expected) == [7, 9], 'no depth in the sky, no pixel of id 12: no entries'
    assert_objects(objects, expected, ids, class_id, score)
    car = objects.center[0]
    assert car[2] == pytest.approx(scene.BOX_DISTANCE), 'the box is 3 m ahead'
    # Its 16 columns hold equal shares of its points: the 5th and 95th percentiles are its first
    # and last columns.
    width = (scene.BOX_COLUMNS[1] - 1 - scene.BOX_COLUMNS[0]) * scene.BOX_DISTANCE / scene.FX
    assert objects.size[0][0] == pytest.approx(width)
    assert objects.size[0][2] == pytest.approx(0.0, abs=1e-9), 'a flat face'


@pytest.mark.parametrize('seed', range(4))
def test_objects_match_numpy_per_instance(seed):
    rng = np.random.default_rng(seed)
    count = int(rng.integers(1, 60))
    owners = rng.integers(0, count + 1, 5000).astype(np.uint16)
    xyz = rng.normal(0, 3, (5000, 3)).astype(np.float32)
    xyz[rng.random(5000) < 0.2] = np.nan                   # no depth
    xyz[rng.random(5000) < 0.05, 1] = np.inf
    ids = rng.permutation(np.arange(1, count + 3))         # two ids without points
    class_id = rng.integers(0, 19, len(ids))
    score = rng.random(len(ids)).astype(np.float32)
    minimum = int(rng.integers(1, 120))
    objects = objects_3d(xyz, owners, ids, class_id, score, minimum)
    assert_objects(objects, reference_objects(xyz, owners, ids.tolist(), minimum),
                   ids.tolist(), class_id, score)


def test_thousands_of_objects():
    rng = np.random.default_rng(7)
    owners = rng.integers(0, 3001, 300_000).astype(np.uint16)
    xyz = rng.normal(0, 20, (300_000, 3)).astype(np.float32)
    ids = np.arange(1, 3001)
    objects = objects_3d(xyz, owners, ids, np.zeros(3000), np.ones(3000), 5)
    assert len(objects) == 3000
    expected = reference_objects(xyz, owners, ids[::97].tolist(), 5)
    for instance, (centre, size, _) in expected.items():
        np.testing.assert_allclose(objects.center[instance - 1], centre, atol=1e-7)
        np.testing.assert_allclose(objects.size[instance - 1], size, atol=1e-7)


def test_no_points_no_objects_no_error():
    empty = objects_3d(np.zeros((0, 3)), np.zeros(0), [1, 2], [0, 1], [0.5, 0.5], 1)
    assert len(empty) == 0 and empty.center.shape == (0, 3)
    nothing = objects_3d(np.zeros((0, 3)), np.zeros(0), [], [], [], 1)
    assert len(nothing) == 0
    with pytest.raises(ValueError, match='min_object_points'):
        objects_3d(np.zeros((0, 3)), np.zeros(0), [], [], [], 0)
    with pytest.raises(ValueError, match='parallel'):
        objects_3d(np.zeros((4, 3)), np.zeros(3), [], [], [], 1)


@pytest.mark.parametrize('scale', [1, 2])
def test_instance_points_are_each_instance_pixels_back_projected(scale):
    """Every depth pixel whose centre lies on an instance (a map ``scale`` times the depth's)."""
    metres = depth_to_metres(scene.encoded_depth('32FC1'), scene.DEPTH_RANGE, '32FC1')
    instances = np.repeat(np.repeat(scene_instances(), scale, axis=0), scale, axis=1)
    instances[:scale, :3 * scale] = 11                   # an instance on the frame's edge, sky
    xyz, owners = instance_points(metres, INTRINSICS, instances)
    expected_xyz, expected_owners = [], []
    for v in range(scene.HEIGHT):
        for u in range(scene.WIDTH):
            owner = instances[int((v + 0.5) * scale), int((u + 0.5) * scale)]
            if owner:
                z = float(metres[v, u])
                expected_xyz.append(((u - scene.CX) * z / scene.FX, (v - scene.CY) * z / scene.FY,
                                     z))
                expected_owners.append(owner)
    assert owners.dtype == np.uint16 and owners.tolist() == expected_owners
    np.testing.assert_allclose(xyz, np.array(expected_xyz), rtol=1e-6, atol=1e-6)
    assert np.isnan(xyz[owners == 11]).all() and (owners == 11).any(), 'the sky has no depth'
    found = objects_3d(xyz, owners, [7, 11], [1, 3], [1.0, 1.0], 10)
    assert found.ids.tolist() == [7], 'no valid depth, no entry, no error'
    assert found.center[0, 2] == pytest.approx(scene.BOX_DISTANCE)
