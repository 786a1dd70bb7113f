"""
~/points, ~/obstacle_points and ~/freespace end to end: the real node, real topics, real tf.

The probe broadcasts ``base_link -> camera_optical_frame`` with tf2_ros's static broadcaster,
publishes the synthetic scene of ``depth_scene`` (a ground plane and a box at known distances,
painted in the test model's prototype colours so the class map is the scene's classes) with its
camera_info and depth in both encodings, and compares every point, label and grid cell with the
per-pixel references of ``depth_scene``. Then: unpaired, skewed, invalid and malformed depth, a
missing transform, the ground-ray grid without depth, and a node without tf2_ros.
"""

import os

import numpy as np
import pytest

import depth_scene as scene
from models import class_weights, make_scores_model
from ros2_extra import HIDE_VARIABLE, skip_unless_hidden
from ros_env import module_domain, rclpy_context, ros_environment
from ros_harness import NodeProcess, ParameterCaller, Probe, wait_until

tf2_ros = pytest.importorskip(
    'tf2_ros', reason='tf2_ros cannot be imported: run make test, or python test/ros2_extra.py '
    '--link-venv (../shared/ros2-extra builds it; on a robot: ros-jazzy-tf2-ros-py)')
nav_msgs = pytest.importorskip(
    'nav_msgs', reason='nav_msgs cannot be imported: pip install ros-jazzy-nav-msgs (make venv)')

DOMAIN_ID = module_domain(25)
NAMESPACE = '/depth_test'
NODE = f'{NAMESPACE}/segmentation'
DEPTH_TOPIC = f'{NAMESPACE}/camera/depth/image_raw'
COLORS_RGB = scene.COLORS_RGB
STRIDE = 2
RESOLUTION, SIZE = 0.25, (8.0, 6.0)
FREE = {scene.ROAD, scene.SIDEWALK}
OPTICAL_FRAME = 'camera_optical_frame'
SKEW = 0.01

ros_context = pytest.fixture(scope='module')(rclpy_context(DOMAIN_ID))


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp('depth_model')
    make_scores_model(str(folder / 'tiny.onnx'), num_classes=4, scale=1 / 255)
    (folder / 'classes.txt').write_text('\n'.join(scene.CLASS_NAMES) + '\n')
    (folder / 'colors.txt').write_text(
        '\n'.join(','.join(str(v) for v in color) for color in COLORS_RGB) + '\n')
    return str(folder)


def node_args(model_dir: str, namespace: str, *params: str) -> list[str]:
    args = ['-r', f'__ns:={namespace}', '-r', f'image:={namespace}/camera/image_raw',
            '-r', f'camera_info:={namespace}/camera/camera_info',
            '-p', f'model_path:={os.path.join(model_dir, "tiny.onnx")}',
            '-p', f'input_width:={scene.WIDTH}', '-p', f'input_height:={scene.HEIGHT}',
            '-p', 'backend:=opencv', '-p', 'diagnostics_period:=0.5',
            '-p', f'depth_range:=[{scene.DEPTH_RANGE[0]}, {scene.DEPTH_RANGE[1]}]',
            '-p', f'cloud_stride:={STRIDE}', '-p', 'obstacle_classes:=[Car]',
            '-p', 'freespace_classes:=[road, "2"]', '-p', f'grid_resolution:={RESOLUTION}',
            '-p', f'grid_size:=[{SIZE[0]}, {SIZE[1]}]']
    for param in params:
        args += ['-p', param]
    return args


class Camera:
    """The probe's side of one node: publishers of colour, depth and camera_info, recorders."""

    def __init__(self, probe, namespace: str) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from nav_msgs.msg import OccupancyGrid
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2

        from seg_ros.ros.qos import image_qos

        self.probe, self.node_name = probe, f'{namespace}/segmentation'
        reliable = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
        self.points = probe.record(PointCloud2, f'{self.node_name}/points', reliable)
        self.obstacles = probe.record(PointCloud2, f'{self.node_name}/obstacle_points', reliable)
        self.grids = probe.record(OccupancyGrid, f'{self.node_name}/freespace', reliable)
        if '/diagnostics' not in probe.received:
            probe.record(DiagnosticArray, '/diagnostics', QoSProfile(depth=50))
        self.image = probe.node.create_publisher(Image, f'{namespace}/camera/image_raw',
                                                 image_qos('reliable', 5))
        self.depth = probe.node.create_publisher(Image, f'{namespace}/camera/depth/image_raw',
                                                 image_qos('reliable', 5))
        self.info = probe.node.create_publisher(CameraInfo, f'{namespace}/camera/camera_info',
                                                image_qos('reliable', 5))

    def diagnostics(self) -> dict[str, str]:
        for array in reversed(self.probe.received['/diagnostics']):
            for status in array.status:
                if self.node_name in status.name:
                    return {kv.key: kv.value for kv in status.values}
        return {}


def camera_transform(translation=scene.CAMERA_TRANSLATION):
    """Return the static base_link -> camera_optical_frame transform of the scene."""
    from geometry_msgs.msg import TransformStamped
    transform = TransformStamped()
    transform.header.frame_id, transform.child_frame_id = 'base_link', OPTICAL_FRAME
    (transform.transform.translation.x, transform.transform.translation.y,
     transform.transform.translation.z) = translation
    (transform.transform.rotation.x, transform.transform.rotation.y,
     transform.transform.rotation.z, transform.transform.rotation.w) = scene.CAMERA_QUATERNION
    return transform


@pytest.fixture(scope='module')
def probe(ros_context):
    probe = Probe(ros_context, 'depth_test_probe')
    probe.broadcaster = tf2_ros.StaticTransformBroadcaster(probe.node)
    probe.broadcaster.sendTransform(camera_transform())
    yield probe
    probe.close()


@pytest.fixture(scope='module')
def node(model_dir):
    process = NodeProcess('segmentation_node',
                          node_args(model_dir, NAMESPACE, f'depth_topic:={DEPTH_TOPIC}',
                                    f'depth_max_skew:={SKEW}'), DOMAIN_ID)
    yield process
    process.finish()


@pytest.fixture(scope='module')
def camera(probe, node):
    camera = Camera(probe, NAMESPACE)
    for publisher in (camera.image, camera.depth, camera.info):
        assert probe.wait_for_subscribers(publisher, timeout=30), node.output()
    return camera


def colour_image(stamp_sec: int, frame_id: str = OPTICAL_FRAME):
    from sensor_msgs.msg import Image
    weights, _ = class_weights(4)
    pixels = scene.scene_image_bgr(weights / 2)
    msg = Image(height=scene.HEIGHT, width=scene.WIDTH, encoding='bgr8', step=scene.WIDTH * 3,
                data=pixels.tobytes())
    msg.header.stamp.sec, msg.header.frame_id = stamp_sec, frame_id
    return msg


def depth_image(raw: np.ndarray, encoding: str, stamp_sec: int, nanosec: int = 0):
    """Build a depth Image by hand: rows of little-endian values with 4 bytes of padding."""
    from sensor_msgs.msg import Image
    height, width = raw.shape
    rows = np.ascontiguousarray(raw.astype(raw.dtype.newbyteorder('<'))).view(np.uint8)
    rows = rows.reshape(height, -1)
    padded = np.full((height, rows.shape[1] + 4), 0xEE, np.uint8)
    padded[:, :rows.shape[1]] = rows
    msg = Image(height=height, width=width, encoding=encoding, step=padded.shape[1],
                is_bigendian=0, data=padded.tobytes())
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp_sec, nanosec
    msg.header.frame_id = OPTICAL_FRAME
    return msg


def camera_info(width: int = scene.WIDTH, height: int = scene.HEIGHT, scale: float = 1.0):
    from sensor_msgs.msg import CameraInfo
    info = CameraInfo(width=width, height=height, distortion_model='plumb_bob')
    info.k = [scene.FX * scale, 0.0, scene.CX * scale, 0.0, scene.FY * scale, scene.CY * scale,
              0.0, 0.0, 1.0]
    info.header.frame_id = OPTICAL_FRAME
    return info


def stamped(messages: list, stamp_sec: int) -> list:
    return [msg for msg in list(messages) if msg.header.stamp.sec == stamp_sec]


def send(camera: Camera, stamp_sec: int, depth=None, *, frame_id: str = OPTICAL_FRAME,
         until=None, timeout: float = 15.0):
    """Publish camera_info, depth and colour (again every 0.5 s) until ``until()`` holds."""
    until = until or (lambda: stamped(camera.points, stamp_sec))
    for _ in range(int(timeout / 0.5)):
        camera.info.publish(camera_info())
        if depth is not None:
            camera.depth.publish(depth)
        camera.image.publish(colour_image(stamp_sec, frame_id))
        found = wait_until(until, 0.5)
        if found:
            return found
    return None


def cloud_array(msg) -> np.ndarray:
    """Read a PointCloud2 by its own fields (names, offsets, types), independently of seg_ros."""
    types = {7: '<f4', 4: '<u2'}  # PointField.FLOAT32, PointField.UINT16
    dtype = np.dtype({'names': [f.name for f in msg.fields],
                      'formats': [types[f.datatype] for f in msg.fields],
                      'offsets': [f.offset for f in msg.fields], 'itemsize': msg.point_step})
    return np.frombuffer(bytes(msg.data), dtype, count=msg.width)


def assert_cloud_matches(msg, expected: list[tuple], stamp_sec: int) -> None:
    assert msg.header.frame_id == OPTICAL_FRAME and msg.header.stamp.sec == stamp_sec
    assert msg.height == 1 and msg.width == len(expected)
    assert not msg.is_bigendian and msg.is_dense
    assert msg.row_step == msg.point_step * msg.width
    assert [(f.name, f.datatype, f.count) for f in msg.fields] == [
        ('x', 7, 1), ('y', 7, 1), ('z', 7, 1), ('rgb', 7, 1), ('label', 4, 1)]
    cloud = cloud_array(msg)
    try:  # what consumers read it with, where installed
        from sensor_msgs_py import point_cloud2
    except ImportError:
        point_cloud2 = None
    if point_cloud2 is not None:
        read = point_cloud2.read_points(msg, field_names=('x', 'y', 'z', 'label'))
        assert np.array_equal(read['x'], cloud['x']) and np.array_equal(read['z'], cloud['z'])
        assert read['label'].tolist() == cloud['label'].tolist()
    np.testing.assert_allclose(np.stack([cloud['x'], cloud['y'], cloud['z']], axis=1),
                               np.array([row[:3] for row in expected]).reshape(-1, 3),
                               rtol=1e-6, atol=1e-6)
    assert cloud['rgb'].view('<u4').tolist() == [row[3] for row in expected]
    assert cloud['label'].tolist() == [row[4] for row in expected]


def grid_cells(msg) -> np.ndarray:
    return np.array(msg.data, np.int8).reshape(msg.info.height, msg.info.width)


@pytest.mark.parametrize('encoding', ['16UC1', '32FC1'])
def test_points_obstacles_and_grid_match_the_reference(camera, node, encoding):
    stamp_sec = 100 if encoding == '16UC1' else 101
    raw = scene.encoded_depth(encoding)
    depth = depth_image(raw, encoding, stamp_sec)

    def complete():
        return (stamped(camera.points, stamp_sec) and stamped(camera.obstacles, stamp_sec) and
                stamped(camera.grids, stamp_sec))
    assert send(camera, stamp_sec, depth, until=complete), node.output()
    _, classes = scene.scene()
    expected = scene.reference_points(raw, classes, STRIDE, COLORS_RGB)
    assert {row[4] for row in expected} == {scene.ROAD, scene.CAR, scene.SIDEWALK}
    assert_cloud_matches(stamped(camera.points, stamp_sec)[-1], expected, stamp_sec)
    obstacles = [row for row in expected if row[4] == scene.CAR]
    assert_cloud_matches(stamped(camera.obstacles, stamp_sec)[-1], obstacles, stamp_sec)

    grid = stamped(camera.grids, stamp_sec)[-1]
    assert grid.header.frame_id == 'base_link'
    assert grid.header.stamp.nanosec == 0 and grid.info.map_load_time.sec == stamp_sec
    assert grid.info.resolution == pytest.approx(RESOLUTION)
    assert (grid.info.width, grid.info.height) == (32, 24)
    origin = grid.info.origin
    assert (origin.position.x, origin.position.y, origin.position.z) == (0.0, -3.0, 0.0)
    assert (origin.orientation.x, origin.orientation.y, origin.orientation.z,
            origin.orientation.w) == (0.0, 0.0, 0.0, 1.0)
    cells = grid_cells(grid)
    assert np.array_equal(cells, scene.reference_grid(expected, RESOLUTION, SIZE, FREE))
    assert {-1, 0, 100} <= set(np.unique(cells).tolist())


def test_skewed_depth_pairs_within_depth_max_skew_and_never_beyond(camera, node):
    raw = scene.encoded_depth('32FC1')
    near = depth_image(raw, '32FC1', 109, nanosec=int(SKEW * 0.5e9))
    assert send(camera, 110, None, until=lambda: False, timeout=0.5) is None  # a lone colour
    # 110 s had no depth at all: colour frames went out, no points for them.
    assert wait_until(lambda: int(camera.diagnostics().get('frames without paired depth', 0))
                      >= 1, 10), node.output()
    assert not stamped(camera.points, 110)
    near.header.stamp.sec = 111
    assert send(camera, 111, near), node.output()
    far = depth_image(raw, '32FC1', 112, nanosec=int(5 * SKEW * 1e9))
    assert send(camera, 112, far, until=lambda: False, timeout=2.0) is None
    assert not stamped(camera.points, 112), 'a depth image beyond depth_max_skew was used'
    assert 'no depth image on' in node.output()


def test_invalid_and_malformed_depth_give_no_wrong_points(camera, node):
    from sensor_msgs.msg import Image
    empty = depth_image(np.zeros((scene.HEIGHT, scene.WIDTH), np.uint16), '16UC1', 120)
    assert send(camera, 120, empty), node.output()
    cloud = stamped(camera.points, 120)[-1]
    assert cloud.width == 0 and len(cloud.data) == 0
    assert wait_until(lambda: 'no valid depth in the frame' in node.output(), 10)

    mono = Image(height=scene.HEIGHT, width=scene.WIDTH, encoding='mono8', step=scene.WIDTH,
                 data=bytes(scene.WIDTH * scene.HEIGHT))
    mono.header.stamp.sec = 121
    assert send(camera, 121, mono, until=lambda: False, timeout=1.5) is None
    assert not stamped(camera.points, 121)
    # Another aspect ratio than the colour camera's: not registered depth.
    wide = depth_image(np.full((scene.HEIGHT, scene.WIDTH * 2), 2000, np.uint16), '16UC1', 122)
    assert send(camera, 122, wide, until=lambda: False, timeout=1.5) is None
    assert not stamped(camera.points, 122)
    assert wait_until(lambda: int(camera.diagnostics().get('depth images rejected', 0)) >= 2,
                      10), camera.diagnostics()
    output = node.output()
    assert "encoding 'mono8' is not a depth encoding" in output
    assert 'is not the 64x48 camera' in output
    assert 'Traceback' not in output and node.alive()


def test_half_resolution_depth_scales_the_intrinsics(camera, node):
    full = scene.encoded_depth('16UC1')
    half = np.ascontiguousarray(full[::2, ::2])   # pixel (u, v) of it is (2u, 2v) of the scene
    assert send(camera, 125, depth_image(half, '16UC1', 125)), node.output()
    cloud = cloud_array(stamped(camera.points, 125)[-1])
    # The reference on the full image at stride 2 * 2 sees the same pixels at the same depths;
    # the scaled intrinsics (fx / 2, cx / 2) give the same x, y.
    expected = scene.reference_points(full, scene.scene()[1], 2 * STRIDE, COLORS_RGB)
    assert len(cloud) == len(expected)
    np.testing.assert_allclose(cloud['x'], [row[0] for row in expected], rtol=1e-5, atol=1e-6)
    assert cloud['label'].tolist() == [row[4] for row in expected]


def test_a_missing_transform_is_counted_and_the_cloud_still_goes_out(camera, node):
    raw = scene.encoded_depth('16UC1')
    assert send(camera, 130, depth_image(raw, '16UC1', 130), frame_id='nowhere_frame'), \
        node.output()
    assert stamped(camera.points, 130)[-1].header.frame_id == 'nowhere_frame'
    assert wait_until(lambda: int(camera.diagnostics().get('frames without a transform', 0))
                      >= 1, 10), camera.diagnostics()
    assert not stamped(camera.grids, 130)
    assert "no usable transform base_link <- 'nowhere_frame'" in node.output()
    assert node.alive()


def test_a_jumping_camera_pose_skips_one_grid_then_the_new_pose_is_used(probe, camera, node):
    raw = scene.encoded_depth('32FC1')
    assert send(camera, 133, depth_image(raw, '32FC1', 133),
                until=lambda: stamped(camera.grids, 133)), node.output()
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from tf2_msgs.msg import TFMessage
    # tf2_ros's static broadcaster sends a child frame's first transform only: a second
    # publisher on /tf_static moves the camera (a recalibration, or a wrong transform).
    static = probe.node.create_publisher(
        TFMessage, '/tf_static', QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    moved = (scene.CAMERA_TRANSLATION[0] + 1.0, *scene.CAMERA_TRANSLATION[1:])
    try:
        static.publish(TFMessage(transforms=[camera_transform(moved)]))
        assert wait_until(lambda: int(camera.diagnostics().get('camera pose jumps', 0)) >= 1 or
                          send(camera, 134, depth_image(raw, '32FC1', 134), until=lambda: int(
                              camera.diagnostics().get('camera pose jumps', 0)) >= 1,
                              timeout=1.0), 15), node.output()
        assert 'jumped by 1.00 m' in node.output()
        assert send(camera, 135, depth_image(raw, '32FC1', 135),
                    until=lambda: stamped(camera.grids, 135)), node.output()
        # The new pose: everything 1 m further ahead.
        cells = grid_cells(stamped(camera.grids, 135)[-1])
        before = grid_cells(stamped(camera.grids, 133)[-1])
        shift = round(1.0 / RESOLUTION)
        assert np.array_equal(cells[:, shift:], before[:, :-shift][:, :cells.shape[1] - shift])
    finally:
        static.publish(TFMessage(transforms=[camera_transform()]))
    assert node.alive()


def test_instances_add_the_instance_field(probe, model_dir):
    namespace = '/instance_test'
    process = NodeProcess('segmentation_node',
                          node_args(model_dir, namespace,
                                    f'depth_topic:={namespace}/camera/depth/image_raw',
                                    'instance_classes:=[car]', 'min_instance_area:=1'),
                          DOMAIN_ID)
    try:
        camera = Camera(probe, namespace)
        assert probe.wait_for_subscribers(camera.depth, timeout=30), process.output()
        raw = scene.encoded_depth('16UC1')
        assert send(camera, 145, depth_image(raw, '16UC1', 145)), process.output()
        msg = stamped(camera.points, 145)[-1]
        assert [(f.name, f.offset, f.datatype) for f in msg.fields][-2:] == \
            [('label', 16, 4), ('instance', 18, 4)]
        cloud = cloud_array(msg)
        expected = scene.reference_points(raw, scene.scene()[1], STRIDE, COLORS_RGB)
        assert cloud['label'].tolist() == [row[4] for row in expected]
        # The box is one connected component of car: instance 1, nothing else is an instance.
        assert ((cloud['instance'] == 1) == (cloud['label'] == scene.CAR)).all()
        assert set(cloud['instance'].tolist()) == {0, 1}
    finally:
        process.finish()


def test_an_unknown_class_is_a_clear_start_up_error(model_dir):
    process = NodeProcess('segmentation_node',
                          node_args(model_dir, '/bad_classes', 'obstacle_classes:=[tree]'),
                          DOMAIN_ID)
    try:
        assert process.wait(timeout=60) == 1
        output = process.output()
        assert "obstacle_classes: 'tree' is not a class of the model" in output
        assert 'road, car, sidewalk, sky' in output and 'Traceback' not in output
    finally:
        process.close()


def test_without_depth_the_grid_intersects_rays_with_the_ground(probe, model_dir):
    namespace = '/ground_test'
    process = NodeProcess('segmentation_node', node_args(model_dir, namespace), DOMAIN_ID)
    try:
        camera = Camera(probe, namespace)
        assert probe.wait_for_subscribers(camera.image, timeout=30), process.output()
        assert send(camera, 140, until=lambda: stamped(camera.grids, 140)), process.output()
        cells = grid_cells(stamped(camera.grids, 140)[-1])
        _, classes = scene.scene()
        expected = scene.reference_ground_grid(classes, STRIDE, RESOLUTION, SIZE, FREE)
        assert np.array_equal(cells, expected)
        assert not camera.points, 'no depth, no points'
    finally:
        process.finish()


def test_without_tf2_the_node_publishes_the_cloud_and_says_why_grid_is_off(probe, model_dir):
    skip_unless_hidden('tf2_ros', ros_environment(DOMAIN_ID))
    namespace = '/no_tf2_test'
    process = NodeProcess('segmentation_node',
                          node_args(model_dir, namespace,
                                    f'depth_topic:={namespace}/camera/depth/image_raw'),
                          DOMAIN_ID, env={HIDE_VARIABLE: '1'})
    try:
        camera = Camera(probe, namespace)
        assert probe.wait_for_subscribers(camera.depth, timeout=30), process.output()
        raw = scene.encoded_depth('32FC1')
        assert send(camera, 150, depth_image(raw, '32FC1', 150)), process.output()
        expected = scene.reference_points(raw, scene.scene()[1], STRIDE, COLORS_RGB)
        assert_cloud_matches(stamped(camera.points, 150)[-1], expected, 150)
        assert '~/freespace is not published: tf2_ros cannot be imported' in process.output()
        assert not camera.grids
    finally:
        process.finish()


def test_class_lists_changed_at_runtime_are_checked_against_the_model(probe, camera, node):
    caller = ParameterCaller(probe, f'{NAMESPACE}/segmentation')
    assert caller.wait_ready(), node.output()
    [refused] = caller.set_values(obstacle_classes=['car', 'tree'])
    assert not refused.successful
    assert "obstacle_classes: 'tree' is not a class of the model" in refused.reason
    assert 'road, car, sidewalk, sky' in refused.reason
    [refused] = caller.set_values(freespace_classes=['road', '9'])
    assert not refused.successful and "freespace_classes: '9'" in refused.reason
    # A refused change leaves the lists as they were; a good one (names any case, ids) is taken.
    assert caller.get_values('obstacle_classes', 'freespace_classes') == [['Car'],
                                                                          ['road', '2']]
    [accepted] = caller.set_values(obstacle_classes=['CAR', '3'])
    assert accepted.successful, accepted.reason
    [accepted] = caller.set_values(obstacle_classes=['Car'])
    assert accepted.successful and node.alive()


def test_pairing_holds_the_depth_of_the_frame_in_hand_while_newer_ones_arrive():
    """A network slower than DEPTH_HISTORY depth frames still gets its frame's depth."""
    from sensor_msgs.msg import Image

    from seg_ros.ros.depth_outputs import DEPTH_HISTORY, DepthPairing

    def depth(sec: int):
        msg = Image(encoding='16UC1')
        msg.header.stamp.sec = sec
        return msg

    for arrives_before_taken in (True, False):
        pairing = DepthPairing()
        if arrives_before_taken:
            pairing.add(depth(10))
        pairing.hold(10 * 1_000_000_000, 0.0)  # the worker takes the colour frame stamped 10 s
        if not arrives_before_taken:
            pairing.add(depth(10))
        for sec in range(11, 12 + 2 * DEPTH_HISTORY):  # while the network runs
            pairing.add(depth(sec))
        paired = pairing.take(10 * 1_000_000_000, 0.0, wait_s=0.0)
        assert paired is not None and paired.header.stamp.sec == 10, arrives_before_taken
    # Without the hold, the history has moved on: no depth for that frame.
    pairing = DepthPairing()
    for sec in range(10, 12 + 2 * DEPTH_HISTORY):
        pairing.add(depth(sec))
    assert pairing.take(10 * 1_000_000_000, 0.0, wait_s=0.0) is None
    # A hold is for one colour frame: another frame's take does not get it.
    pairing.hold(10 * 1_000_000_000, 0.0)
    assert pairing.take(11 * 1_000_000_000, 0.0, wait_s=0.0) is None
