"""
The geometry room against the per-pixel references of ``depth_scene``; no ROS.

Depth decoding, intrinsics scaling, projection on a stride grid, colour packing, the PointCloud2
layout, ground-ray intersection and the occupancy grid.
"""

import math

import numpy as np
import pytest

import depth_scene as scene
from seg_ros.core.geometry.camera import Intrinsics
from seg_ros.core.geometry.depth import depth_to_metres
from seg_ros.core.geometry.grid import (GridSpec, ground_hits, GroundProjection, occupancy,
                                        points_occupancy, RigidTransform)
from seg_ros.core.geometry.points import cloud_dtype, labelled_points, pack_rgb

COLORS_RGB = scene.COLORS_RGB
INTRINSICS = Intrinsics(scene.FX, scene.FY, scene.CX, scene.CY, scene.WIDTH, scene.HEIGHT)
FREE = {scene.ROAD, scene.SIDEWALK}
GRID = GridSpec(0.25, 8.0, 6.0)


def camera_pose() -> RigidTransform:
    return RigidTransform.from_quaternion(scene.CAMERA_TRANSLATION, scene.CAMERA_QUATERNION)


def cloud_rows(cloud: np.ndarray) -> list[tuple]:
    rgb = cloud['rgb'].view('<u4')
    return [(float(p['x']), float(p['y']), float(p['z']), int(c), int(p['label']))
            for p, c in zip(cloud, rgb)]


def assert_same_points(actual: list[tuple], expected: list[tuple]) -> None:
    assert len(actual) == len(expected)
    actual_array = np.array([row[:3] for row in actual])
    expected_array = np.array([row[:3] for row in expected])
    np.testing.assert_allclose(actual_array, expected_array, rtol=1e-6, atol=1e-6)
    assert [row[3:] for row in actual] == [row[3:] for row in expected]


@pytest.mark.parametrize('encoding', ['16UC1', '32FC1'])
@pytest.mark.parametrize('stride', [1, 2, 3])
def test_points_match_the_per_pixel_reference(encoding, stride):
    raw = scene.encoded_depth(encoding)
    _, classes = scene.scene()
    metres = depth_to_metres(raw, scene.DEPTH_RANGE)
    points = labelled_points(metres, INTRINSICS, classes, stride)
    cloud = points.cloud(COLORS_RGB)
    expected = scene.reference_points(raw, classes, stride, COLORS_RGB)
    assert_same_points(cloud_rows(cloud), expected)
    labels = {row[4] for row in expected}
    assert labels == {scene.ROAD, scene.CAR, scene.SIDEWALK}, 'the scene shows its three classes'
    assert scene.SKY not in set(cloud['label'].tolist()), 'the sky has no depth'


@pytest.mark.parametrize('encoding', ['16UC1', '32FC1'])
def test_invalid_depth_is_never_a_point(encoding):
    raw = scene.encoded_depth(encoding)
    metres = depth_to_metres(raw, scene.DEPTH_RANGE)
    for row, columns in ((42, slice(50, 54)), (44, slice(2, 8)), (46, slice(30, 34))):
        assert np.isnan(metres[row, columns]).all()
    assert np.isnan(metres[:int(scene.CY) + 1]).all(), 'the sky (0 or NaN) and the horizon'
    points = labelled_points(metres, INTRINSICS, scene.scene()[1], 1)
    assert np.isfinite(points.xyz).all()
    assert (points.xyz[:, 2] >= scene.DEPTH_RANGE[0]).all()
    assert (points.xyz[:, 2] <= scene.DEPTH_RANGE[1]).all()
    everything_invalid = np.zeros_like(raw)
    assert len(labelled_points(depth_to_metres(everything_invalid, scene.DEPTH_RANGE),
                               INTRINSICS, scene.scene()[1], 2)) == 0


def test_depth_decoding_units_and_errors():
    millimetres = np.array([[0, 1500, 65535]], np.uint16)
    decoded = depth_to_metres(millimetres, (0.0, 100.0))
    assert decoded.dtype == np.float32 and np.isnan(decoded[0, 0])
    assert decoded[0, 1] == np.float32(1.5) and decoded[0, 2] == np.float32(65.535)
    assert np.isnan(depth_to_metres(millimetres, (0.0, 10.0))[0, 2])
    big_endian = np.array([[1500]], '>u2')
    with pytest.raises(ValueError, match='uint16'):
        depth_to_metres(big_endian.astype('>f8'), (0.0, 10.0))
    with pytest.raises(ValueError, match='depth_range'):
        depth_to_metres(millimetres, (2.0, 1.0))
    with pytest.raises(ValueError, match="'32FC1' does not match"):
        depth_to_metres(millimetres, (0.0, 10.0), encoding='32FC1')
    with pytest.raises(ValueError, match="'mono8' is not one of"):
        depth_to_metres(millimetres, (0.0, 10.0), encoding='mono8')


def test_a_depth_image_of_another_resolution_scales_the_intrinsics():
    colour = Intrinsics(600.0, 610.0, 320.0, 240.0, 640, 480)
    half = colour.scaled_to(320, 240)
    assert (half.fx, half.fy, half.cx, half.cy) == (300.0, 305.0, 160.0, 120.0)
    # A depth pixel of the half-size image sees the point its colour pixel does, scaled.
    depth = np.full((240, 320), 2.0, np.float32)
    points = labelled_points(depth, half, np.zeros((480, 640), np.uint8), 1)
    index = 120 * 320 + 200
    assert points.u[index] == 200 and points.v[index] == 120
    assert math.isclose(points.xyz[index, 0], (200 - 160.0) * 2.0 / 300.0, rel_tol=1e-6)
    assert colour.scaled_to(640, 480) is colour
    with pytest.raises(ValueError, match='not the 640x480 camera'):
        colour.scaled_to(640, 360)
    with pytest.raises(ValueError, match='intrinsics are for 640x480'):
        labelled_points(depth, colour, np.zeros((480, 640), np.uint8), 1)
    # An image resized to another aspect (a 1024x512 network input): each axis its own factor.
    network = colour.resized_to(1024, 512)
    assert (network.fx, network.fy, network.cx, network.cy) == pytest.approx(
        (600.0 * 1024 / 640, 610.0 * 512 / 480, 320.0 * 1024 / 640, 240.0 * 512 / 480))
    assert (network.width, network.height) == (1024, 512)


def test_labels_from_a_class_map_of_another_size_are_sampled_at_pixel_centres():
    class_map = np.arange(16, dtype=np.uint8).reshape(4, 4)  # a 4x4 "model-size" map
    depth = np.full((8, 8), 1.0, np.float32)
    intrinsics = Intrinsics(10.0, 10.0, 4.0, 4.0, 8, 8)
    points = labelled_points(depth, intrinsics, class_map, 1)
    expected = [class_map[v // 2, u // 2] for v in range(8) for u in range(8)]
    assert points.labels.tolist() == expected


def test_intrinsics_from_text_and_camera_info():
    assert Intrinsics.parse('500,501.5,320,240', 640, 480) == \
        Intrinsics(500.0, 501.5, 320.0, 240.0, 640, 480)
    with pytest.raises(ValueError, match='four numbers'):
        Intrinsics.parse('500,501', 640, 480)
    with pytest.raises(ValueError, match='fx=-1.0'):
        Intrinsics.parse('-1,1,0,0', 640, 480)
    calibration = {'image_width': 640, 'image_height': 480,
                   'camera_matrix': {'rows': 3, 'cols': 3,
                                     'data': [500, 0, 320, 0, 502, 241, 0, 0, 1]}}
    assert Intrinsics.from_camera_info(calibration) == \
        Intrinsics(500.0, 502.0, 320.0, 241.0, 640, 480)
    message = {'width': 64, 'height': 48, 'k': [40, 0, 32, 0, 42, 20, 0, 0, 1]}
    assert Intrinsics.from_camera_info(message) == INTRINSICS
    with pytest.raises(ValueError, match='camera_info needs'):
        Intrinsics.from_camera_info({'width': 64})


def test_rgb_packs_0x00rrggbb_and_the_layout_is_little_endian():
    packed = pack_rgb(np.array([[0x12, 0x34, 0x56], [255, 0, 1]], np.uint8))
    assert packed.dtype == np.dtype('<f4')
    assert packed.view('<u4').tolist() == [0x00123456, 0x00FF0001]
    for with_instance in (False, True):
        dtype = cloud_dtype(with_instance)
        assert dtype.itemsize == 20
        fields = {name: (dtype.fields[name][1], dtype.fields[name][0].str)
                  for name in dtype.names}
        expected = {'x': (0, '<f4'), 'y': (4, '<f4'), 'z': (8, '<f4'), 'rgb': (12, '<f4'),
                    'label': (16, '<u2')}
        if with_instance:
            expected['instance'] = (18, '<u2')
        assert fields == expected


def test_instances_ride_along():
    raw = scene.encoded_depth('32FC1')
    _, classes = scene.scene()
    instance_map = np.where(classes == scene.CAR, 7, 0).astype(np.uint16)
    points = labelled_points(depth_to_metres(raw, scene.DEPTH_RANGE), INTRINSICS, classes, 2,
                             instance_map)
    cloud = points.cloud(COLORS_RGB)
    assert 'instance' in cloud.dtype.names
    assert ((cloud['instance'] == 7) == (cloud['label'] == scene.CAR)).all()


@pytest.mark.parametrize('stride', [1, 2])
def test_colours_given_up_front_fill_the_same_cloud(stride):
    raw = scene.encoded_depth('16UC1')
    _, classes = scene.scene()
    metres = depth_to_metres(raw, scene.DEPTH_RANGE)
    instance_map = np.where(classes == scene.CAR, 3, 0).astype(np.uint16)
    later = labelled_points(metres, INTRINSICS, classes, stride, instance_map)
    assert not later.array['rgb'].view('<u4').any(), 'rgb is 0 until cloud()'
    now = labelled_points(metres, INTRINSICS, classes, stride, instance_map, COLORS_RGB)
    expected = later.cloud(COLORS_RGB)
    assert now.array.tobytes() == expected.tobytes()
    assert now.cloud(COLORS_RGB) is now.array, 'the same colours are not filled again'
    other = COLORS_RGB[::-1].copy()
    assert now.cloud(other).tobytes() == later.cloud(other).tobytes()
    # The obstacle subset keeps the colours its rows hold.
    cars = now.select(now.labels == scene.CAR)
    assert len(cars) and cars.cloud(other) is cars.array
    assert set(cars.array['rgb'].view('<u4').tolist()) == {
        (int(other[scene.CAR][0]) << 16) | (int(other[scene.CAR][1]) << 8)
        | int(other[scene.CAR][2])}


def test_grid_from_contiguous_columns_and_any_label_type_is_the_same():
    raw = scene.encoded_depth('32FC1')
    _, classes = scene.scene()
    points = labelled_points(depth_to_metres(raw, scene.DEPTH_RANGE), INTRINSICS, classes, 1)
    free = np.array(sorted(FREE))
    x, y, z = points.xyz_columns
    assert all(column.flags.c_contiguous for column in (x, y, z))
    np.testing.assert_array_equal(np.stack([x, y, z], axis=1), points.xyz)
    cells = points_occupancy(points.xyz, camera_pose(), points.labels, free, GRID)
    assert np.array_equal(points_occupancy((x, y, z), camera_pose(), points.labels, free,
                                           GRID), cells)
    # uint16 labels use a table of every id; other integer types one sized by their maximum.
    for labels in (points.labels.astype(np.int32), points.labels.astype(np.uint8)):
        assert np.array_equal(points_occupancy((x, y, z), camera_pose(), labels, free, GRID),
                              cells)


def test_the_quaternion_gives_the_optical_frame_rotation():
    pose = camera_pose()
    np.testing.assert_allclose(pose.rotation, scene.CAMERA_ROTATION, atol=1e-12)
    np.testing.assert_allclose(pose.apply(np.array([[0.0, 0.0, 2.0]])), [[2.2, 0.0, 1.0]])
    with pytest.raises(ValueError, match='not a unit quaternion'):
        RigidTransform.from_quaternion((0, 0, 0), (0, 0, 0, 2))
    with pytest.raises(ValueError, match='not finite'):
        RigidTransform.from_quaternion((math.nan, 0, 0), (0, 0, 0, 1))


@pytest.mark.parametrize('encoding', ['16UC1', '32FC1'])
@pytest.mark.parametrize('stride', [1, 2])
def test_grid_from_depth_matches_the_reference(encoding, stride):
    raw = scene.encoded_depth(encoding)
    _, classes = scene.scene()
    points = labelled_points(depth_to_metres(raw, scene.DEPTH_RANGE), INTRINSICS, classes,
                             stride)
    in_base = camera_pose().apply(points.xyz)
    cells = occupancy(in_base[:, :2], points.labels, np.array(sorted(FREE)), GRID)
    # What the node runs: the same cells, from the cloud's strided x y z.
    assert np.array_equal(points_occupancy(points.xyz, camera_pose(), points.labels,
                                           np.array(sorted(FREE)), GRID), cells)
    expected = scene.reference_grid(scene.reference_points(raw, classes, stride, COLORS_RGB),
                                    GRID.resolution, (GRID.size_x, GRID.size_y), FREE)
    assert cells.dtype == np.int8 and cells.shape == (24, 32)
    assert np.array_equal(cells, expected)
    assert {0, 100, -1} <= set(np.unique(cells).tolist())
    # The box 3 m ahead of the camera (3.2 m from base_link) is occupied, the road before it free.
    row = GRID.height // 2
    assert cells[row, int(3.2 / GRID.resolution)] == 100
    assert cells[row, int(2.4 / GRID.resolution)] == 0


@pytest.mark.parametrize('stride', [1, 2])
def test_grid_without_depth_intersects_rays_with_the_ground(stride):
    _, classes = scene.scene()
    xy, labels = ground_hits(INTRINSICS, camera_pose(), classes, stride)
    cells = occupancy(xy, labels, np.array(sorted(FREE)), GRID)
    expected = scene.reference_ground_grid(classes, stride, GRID.resolution,
                                           (GRID.size_x, GRID.size_y), FREE)
    assert np.array_equal(cells, expected)
    assert (cells == 0).any() and (cells == 100).any()
    projection = GroundProjection.build(INTRINSICS, camera_pose(), classes.shape, stride, GRID)
    assert np.array_equal(projection.cells(classes, np.array(sorted(FREE))), expected)
    # A class map at half the camera's size is sampled at the pixel centres.
    half = np.ascontiguousarray(classes[::2, ::2])
    projection = GroundProjection.build(INTRINSICS, camera_pose(), half.shape, stride, GRID)
    assert np.array_equal(projection.cells(half, np.array(sorted(FREE))),
                          occupancy(*ground_hits(INTRINSICS, camera_pose(), half, stride),
                                    np.array(sorted(FREE)), GRID))
    # A camera below the ground sees no ground.
    under = RigidTransform.from_quaternion((0, 0, -1), scene.CAMERA_QUATERNION)
    assert len(ground_hits(INTRINSICS, under, classes, stride)[0]) == 0


def test_grid_spec_checks():
    assert GRID.origin == (0.0, -3.0)
    with pytest.raises(ValueError, match='grid_resolution'):
        GridSpec(0.0, 1.0, 1.0)
    with pytest.raises(ValueError, match='size_y'):
        GridSpec(0.5, 10.0, 0.1)
    with pytest.raises(ValueError, match='larger than'):
        GridSpec(0.001, 100.0, 100.0)
