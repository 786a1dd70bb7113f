"""
What downstream autonomy takes from the real node: confidence, organized cloud, tracks, objects.

Over real topics, and bad input that must lose nothing else.

The node runs the tiny 4-class model (``road``, ``car``, ``sidewalk``, ``sky``: each pixel the
class of the prototype colour nearest to it) on streets painted in the prototype colours, so the
class map is the scene's; depth is ``depth_scene``'s ground with boxes standing on it. Every
value is checked against a reference computed here pixel by pixel: the softmax of the model's
scores (``models.reference_scores``), the back-projection of each class-map pixel, the median
and percentiles of each object's points (``np.median``, ``np.percentile``); the track ids
against the identities the scene gives its cars.
"""

import math
import os

import numpy as np
import pytest

import depth_scene as scene
from models import class_weights, make_frame, make_scores_model, reference_scores
from ros_env import module_domain, rclpy_context
from ros_harness import NodeProcess, ParameterCaller, Probe, wait_until

pytest.importorskip('vision_msgs', reason='~/instances and ~/objects are vision_msgs messages: '
                    'run make test, or python test/ros2_extra.py --link-venv')

DOMAIN_ID = module_domain(52)
NAMESPACE = '/downstream'
NODE = f'{NAMESPACE}/segmentation'
WIDTH, HEIGHT = scene.WIDTH, scene.HEIGHT
ROAD, CAR, SIDEWALK, SKY = scene.ROAD, scene.CAR, scene.SIDEWALK, scene.SKY
PROTOTYPES_RGB = class_weights(4)[0] / 2
FRAME = 'camera_optical_frame'
MIN_OBJECT_POINTS = 6
IMAGE_TOPICS = ('class_map', 'confidence', 'instance_map', 'overlay')

ros_context = pytest.fixture(scope='module')(rclpy_context(DOMAIN_ID))


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp('downstream_model')
    make_scores_model(str(folder / 'tiny.onnx'), num_classes=4, scale=1 / 255)
    (folder / 'classes.txt').write_text('\n'.join(scene.CLASS_NAMES) + '\n')
    (folder / 'colors.txt').write_text(
        '\n'.join(','.join(str(v) for v in color) for color in scene.COLORS_RGB) + '\n')
    return str(folder)


def node_args(model_dir: str, namespace: str, width: int = WIDTH, height: int = HEIGHT,
              *params: str) -> list[str]:
    args = ['-r', f'__ns:={namespace}', '-r', f'image:={namespace}/camera/image_raw',
            '-r', f'camera_info:={namespace}/camera/camera_info']
    values = [f'model_path:={os.path.join(model_dir, "tiny.onnx")}', f'input_width:={width}',
              f'input_height:={height}', 'backend:=opencv', 'diagnostics_period:=0.5',
              f'depth_topic:={namespace}/camera/depth/image_raw',
              f'depth_range:=[{scene.DEPTH_RANGE[0]}, {scene.DEPTH_RANGE[1]}]',
              'instance_classes:=[car]', 'min_instance_area:=1', 'cloud_organized:=true',
              f'min_object_points:={MIN_OBJECT_POINTS}', *params]
    return args + [item for value in values for item in ('-p', value)]


class Camera:
    """The probe's side of one node: colour, depth and camera_info out, every output recorded."""

    def __init__(self, probe: Probe, namespace: str) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2
        from vision_msgs.msg import Detection2DArray, Detection3DArray

        self.probe, self.node_name = probe, f'{namespace}/segmentation'
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.images = {name: probe.record(Image, f'{self.node_name}/{name}', reliable)
                       for name in IMAGE_TOPICS}
        self.points = probe.record(PointCloud2, f'{self.node_name}/points', reliable)
        self.instances = probe.record(Detection2DArray, f'{self.node_name}/instances', reliable)
        self.objects = probe.record(Detection3DArray, f'{self.node_name}/objects', reliable)
        if '/diagnostics' not in probe.received:
            probe.record_diagnostics()
        self.image = probe.camera_publisher(f'{namespace}/camera/image_raw')
        self.depth = probe.camera_publisher(f'{namespace}/camera/depth/image_raw')
        self.info = probe.camera_publisher(f'{namespace}/camera/camera_info', CameraInfo)

    def diagnostics(self) -> dict[str, str]:
        for array in reversed(list(self.probe.received['/diagnostics'])):
            for status in array.status:
                if self.node_name in status.name:
                    return {kv.key: kv.value for kv in status.values}
        return {}

    def of(self, messages: list, stamp: tuple[int, int]):
        """Return the first message of a frame (a frame sent again is segmented again)."""
        found = [msg for msg in list(messages)
                 if (msg.header.stamp.sec, msg.header.stamp.nanosec) == stamp]
        return found[0] if found else None

    def send(self, stamp: tuple[int, int], frame_bgr: np.ndarray, depth=None, *, until,
             info: bool = True, timeout: float = 20.0):
        """Publish camera_info, depth and the frame (again every 0.5 s) until ``until()``."""
        for _ in range(int(timeout / 0.5)):
            if info:
                self.info.publish(camera_info(frame_bgr.shape[1], frame_bgr.shape[0]))
            if depth is not None:
                self.depth.publish(depth_message(depth, stamp))
            self.image.publish(image_message(frame_bgr, stamp))
            found = wait_until(until, 0.5)
            if found:
                return found
        return None

    def outputs(self, stamp: tuple[int, int], *names: str):
        """Return ``until`` for the named outputs of one frame (image topics or lists)."""
        lists = {'points': self.points, 'instances': self.instances, 'objects': self.objects,
                 **self.images}

        def arrived():
            found = {name: self.of(lists[name], stamp) for name in names}
            return found if all(value is not None for value in found.values()) else None
        return arrived


def image_message(frame_bgr: np.ndarray, stamp: tuple[int, int]):
    """Return a bgr8 Image of the frame."""
    from sensor_msgs.msg import Image
    height, width = frame_bgr.shape[:2]
    msg = Image(height=height, width=width, encoding='bgr8', step=width * 3,
                data=np.ascontiguousarray(frame_bgr).tobytes())
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    msg.header.frame_id = FRAME
    return msg


def depth_message(metres: np.ndarray, stamp: tuple[int, int]):
    """Return a 32FC1 depth image (NaN where there is none), little-endian rows."""
    from sensor_msgs.msg import Image
    height, width = metres.shape
    msg = Image(height=height, width=width, encoding='32FC1', step=width * 4, is_bigendian=0,
                data=np.ascontiguousarray(metres, '<f4').tobytes())
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp
    msg.header.frame_id = FRAME
    return msg


def camera_info(width: int = WIDTH, height: int = HEIGHT):
    """Return the scene's camera at ``width`` x ``height`` (the scene's intrinsics scaled)."""
    from sensor_msgs.msg import CameraInfo
    scale_x, scale_y = width / WIDTH, height / HEIGHT
    info = CameraInfo(width=width, height=height, distortion_model='plumb_bob')
    info.k = [scene.FX * scale_x, 0.0, scene.CX * scale_x, 0.0, scene.FY * scale_y,
              scene.CY * scale_y, 0.0, 0.0, 1.0]
    info.header.frame_id = FRAME
    return info


def street(cars: list[tuple[int, int, int, int, float]], width: int = WIDTH,
           height: int = HEIGHT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Return a street's BGR frame, classes and depth (metres, NaN where none), pixel by pixel.

    The ground and sky of ``depth_scene`` (at ``width`` x ``height``: its camera scaled), and
    each car ``(u0, v0, u1, v1, distance)`` a flat box of that depth over those pixels.
    """
    classes = np.full((height, width), SKY, np.uint8)
    depth = np.full((height, width), math.nan, np.float32)
    fy, cy = scene.FY * height / HEIGHT, scene.CY * height / HEIGHT
    for v in range(height):
        ray_y = (v - cy) / fy
        if ray_y > 0:
            z = scene.CAMERA_HEIGHT / ray_y
            for u in range(width):
                classes[v, u] = SIDEWALK if u < scene.SIDEWALK_COLUMNS * width // WIDTH else ROAD
                depth[v, u] = z if scene.DEPTH_RANGE[0] <= z <= scene.DEPTH_RANGE[1] else math.nan
    for u0, v0, u1, v1, distance in cars:
        classes[v0:v1, u0:u1] = CAR
        depth[v0:v1, u0:u1] = distance
    frame = np.ascontiguousarray(PROTOTYPES_RGB.astype(np.uint8)[classes][:, :, ::-1])
    return frame, classes, depth


def pixels(msg) -> np.ndarray:
    dtype = {'mono8': np.uint8, 'mono16': '<u2'}[msg.encoding]
    assert msg.step == msg.width * np.dtype(dtype).itemsize
    return np.frombuffer(bytes(msg.data), dtype).reshape(msg.height, msg.width)


def cloud(msg) -> np.ndarray:
    """Read an organized PointCloud2 by its own fields, as (height, width) records."""
    types = {7: '<f4', 4: '<u2'}
    dtype = np.dtype({'names': [f.name for f in msg.fields],
                      'formats': [types[f.datatype] for f in msg.fields],
                      'offsets': [f.offset for f in msg.fields], 'itemsize': msg.point_step})
    assert msg.row_step == msg.point_step * msg.width
    return np.frombuffer(bytes(msg.data), dtype, count=msg.width * msg.height).reshape(
        msg.height, msg.width)


def reference_confidence(frame_bgr: np.ndarray, width: int, height: int) -> np.ndarray:
    """Return round(255 * softmax of the winning class) of the model's scores, float64."""
    scores = reference_scores(frame_bgr, 4, width=width, height=height, scale=1 / 255)
    exponentials = np.exp(scores - scores.max(axis=0))
    return np.rint(255 * exponentials.max(axis=0) / exponentials.sum(axis=0)).astype(int)


def assert_confidence_close(found: np.ndarray, expected: np.ndarray) -> None:
    """Assert equal but for float32 rounding: a few pixels one level off, none more."""
    difference = np.abs(found.astype(int) - expected)
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01


@pytest.fixture(scope='module')
def probe(ros_context):
    probe = Probe(ros_context, 'downstream_probe')
    yield probe
    probe.close()


@pytest.fixture(scope='module')
def node(model_dir):
    process = NodeProcess('segmentation_node', node_args(model_dir, NAMESPACE), DOMAIN_ID)
    yield process
    process.finish()


@pytest.fixture(scope='module')
def camera(probe, node):
    camera = Camera(probe, NAMESPACE)
    for publisher in (camera.image, camera.depth, camera.info):
        assert probe.wait_for_subscribers(publisher, timeout=30), node.output()
    return camera


@pytest.fixture(scope='module')
def parameters(probe, node):
    caller = ParameterCaller(probe, NODE)
    assert caller.wait_ready(), node.output()
    return caller


# ---- confidence ---------------------------------------------------------------------------------
def test_confidence_is_the_softmax_with_the_class_maps_header_and_size(camera, node, parameters):
    frame = make_frame(WIDTH, HEIGHT, seed=5)
    until = camera.outputs((10, 5), 'class_map', 'confidence')
    found = camera.send((10, 5), frame, until=until)
    assert found, node.output()
    class_map, confidence = found['class_map'], found['confidence']
    assert confidence.encoding == 'mono8' and confidence.header == class_map.header
    assert (confidence.width, confidence.height) == (class_map.width, class_map.height)
    assert_confidence_close(pixels(confidence), reference_confidence(frame, WIDTH, HEIGHT))
    assert wait_until(lambda: 'subscriber' in camera.diagnostics().get('confidence', ''), 10)

    # At the network's size (output_resolution model) from a frame twice as large: the class
    # map and the confidence 64x48, the softmax of the scores of the resized frame.
    assert parameters.set_values(output_resolution='model')[0].successful
    try:
        large = make_frame(2 * WIDTH, 2 * HEIGHT, seed=6)
        until = camera.outputs((11, 0), 'class_map', 'confidence')
        found = camera.send((11, 0), large, until=until)
        assert found, node.output()
        assert (found['confidence'].width, found['confidence'].height) == (WIDTH, HEIGHT)
        assert (found['class_map'].width, found['class_map'].height) == (WIDTH, HEIGHT)
        assert_confidence_close(pixels(found['confidence']),
                                reference_confidence(large, WIDTH, HEIGHT))
    finally:
        assert parameters.set_values(output_resolution='input')[0].successful


# ---- the organized cloud ------------------------------------------------------------------------
def reference_organized(classes: np.ndarray, depth: np.ndarray, info_size: tuple[int, int],
                        width: int, height: int) -> dict:
    """Return the cloud a (height, width) class map gives, pixel by pixel (depth at centres)."""
    scale_x, scale_y = width / WIDTH, height / HEIGHT
    fx, fy = scene.FX * scale_x, scene.FY * scale_y
    cx, cy = scene.CX * scale_x, scene.CY * scale_y
    out = {axis: np.full((height, width), math.nan) for axis in 'xyz'}
    for r in range(height):
        for c in range(width):
            z = float(depth[int((r + 0.5) * depth.shape[0] / height),
                            int((c + 0.5) * depth.shape[1] / width)])
            if math.isfinite(z):
                out['x'][r, c] = (c - cx) * z / fx
                out['y'][r, c] = (r - cy) * z / fy
                out['z'][r, c] = z
    return out


def assert_organized(msg, class_map_msg, instance_map_msg, expected: dict) -> None:
    assert msg.header == class_map_msg.header
    assert (msg.height, msg.width) == (class_map_msg.height, class_map_msg.width)
    assert not msg.is_dense and not msg.is_bigendian
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ('x', 0, 7, 1), ('y', 4, 7, 1), ('z', 8, 7, 1), ('rgb', 12, 7, 1), ('label', 16, 4, 1),
        ('instance', 18, 4, 1)]
    points = cloud(msg)
    for axis in 'xyz':
        assert np.array_equal(np.isnan(points[axis]), np.isnan(expected[axis])), axis
        np.testing.assert_allclose(points[axis], expected[axis], rtol=1e-5, atol=1e-6)
    assert np.array_equal(points['label'], pixels(class_map_msg))
    # The instance map is at the input's size: each class-map pixel takes the instance at its
    # centre.
    instance_map = pixels(instance_map_msg)
    rows = ((np.arange(msg.height) + 0.5) * instance_map.shape[0] / msg.height).astype(int)
    columns = ((np.arange(msg.width) + 0.5) * instance_map.shape[1] / msg.width).astype(int)
    assert np.array_equal(points['instance'], instance_map[rows][:, columns])
    assert points['instance'].any()


def test_organized_points_are_the_class_maps_pixels_back_projected(camera, node, parameters):
    cars = [(24, 14, 40, 24, 3.0), (0, 20, 6, 30, 2.0)]     # one on the left edge
    frame, classes, depth = street(cars)
    depth[30:34, 44:50] = math.nan                           # a hole in the road
    depth[0, 0] = 0.1                                        # too close: no point
    until = camera.outputs((20, 0), 'points', 'class_map', 'instance_map')
    found = camera.send((20, 0), frame, depth, until=until)
    assert found, node.output()
    assert np.array_equal(pixels(found['class_map']), classes)
    expected = reference_organized(classes, np.where(depth >= 0.3, depth, np.nan),
                                   (WIDTH, HEIGHT), WIDTH, HEIGHT)
    assert_organized(found['points'], found['class_map'], found['instance_map'], expected)

    # The class map at the network's size (output_resolution model), colour and depth twice as
    # large: the cloud is the class map's grid, the depth sampled at each of its pixels.
    assert parameters.set_values(output_resolution='model')[0].successful
    try:
        large_frame, _, large_depth = street([(48, 28, 80, 48, 3.0)], 2 * WIDTH, 2 * HEIGHT)
        until = camera.outputs((21, 0), 'points', 'class_map', 'instance_map')
        found = camera.send((21, 0), large_frame, large_depth, until=until)
        assert found, node.output()
        assert (found['points'].width, found['points'].height) == (WIDTH, HEIGHT)
        expected = reference_organized(pixels(found['class_map']), large_depth,
                                       (2 * WIDTH, 2 * HEIGHT), WIDTH, HEIGHT)
        assert_organized(found['points'], found['class_map'], found['instance_map'], expected)
    finally:
        assert parameters.set_values(output_resolution='input')[0].successful


# ---- objects in 3-D -----------------------------------------------------------------------------
def reference_objects(classes: np.ndarray, depth: np.ndarray, instance_map: np.ndarray) -> dict:
    """Return each instance's median x y z and 5th-95th percentile extent, from its pixels."""
    found = {}
    for instance in sorted(set(np.unique(instance_map).tolist()) - {0}):
        rows, columns = np.nonzero(instance_map == instance)
        z = depth[rows, columns].astype(np.float64)
        valid = np.isfinite(z)
        if valid.sum() < MIN_OBJECT_POINTS:
            continue
        rows, columns, z = rows[valid], columns[valid], z[valid]
        xyz = np.stack([(columns - scene.CX) * z / scene.FX, (rows - scene.CY) * z / scene.FY,
                        z], axis=1)
        found[str(instance)] = (np.median(xyz, axis=0), np.percentile(xyz, 95, axis=0) -
                                np.percentile(xyz, 5, axis=0))
    return found


def test_objects_are_each_instances_median_and_extent(camera, node):
    cars = [(24, 14, 40, 24, 3.0),          # a box 3 m ahead
            (58, 20, 64, 34, 2.0),          # on the frame's right edge
            (4, 2, 10, 8, 4.0),             # no valid depth (made NaN below): no entry
            (44, 4, 46, 6, 5.0)]            # 4 points, under min_object_points: no entry
    frame, classes, depth = street(cars)
    depth[2:8, 4:10] = math.nan
    depth[16:18, 30:32] = 9.5               # a few far pixels inside the first box
    until = camera.outputs((30, 0), 'objects', 'instances', 'instance_map')
    found = camera.send((30, 0), frame, depth, until=until)
    assert found, node.output()
    objects, instances = found['objects'], found['instances']
    instance_map = pixels(found['instance_map'])
    assert objects.header == instances.header and objects.header.frame_id == FRAME
    assert len(instances.detections) == 4
    expected = reference_objects(classes, depth, instance_map)
    assert len(expected) == 2 and sorted(d.id for d in objects.detections) == sorted(expected)
    by_id = {d.id: d for d in instances.detections}
    for detection in objects.detections:
        center, size = expected[detection.id]
        position = detection.bbox.center.position
        np.testing.assert_allclose([position.x, position.y, position.z], center, rtol=1e-5,
                                   atol=1e-5)
        np.testing.assert_allclose([detection.bbox.size.x, detection.bbox.size.y,
                                    detection.bbox.size.z], size, rtol=1e-5, atol=1e-5)
        assert detection.bbox.center.orientation.w == 1.0
        hypothesis = detection.results[0].hypothesis
        instance = by_id[detection.id].results[0].hypothesis
        assert hypothesis.class_id == str(CAR) == instance.class_id
        assert hypothesis.score == pytest.approx(1.0)
        assert detection.results[0].pose.pose.position == position


# ---- tracks -------------------------------------------------------------------------------------
def ids_by_car(found: dict, cars: list) -> list[str]:
    """Return the id of each car (by the pixel at its box's centre) and check the outputs agree."""
    instance_map = pixels(found['instance_map'])
    detections = found['instances'].detections
    ids = []
    for u0, v0, u1, v1, _ in cars:
        value = int(instance_map[(v0 + v1) // 2, (u0 + u1) // 2])
        matching = [d for d in detections if d.id == str(value)]
        assert value and len(matching) == 1, (value, [d.id for d in detections])
        box = matching[0].bbox
        assert box.center.position.x == pytest.approx((u0 + u1) / 2, abs=0.6)
        ids.append(str(value))
    assert sorted(str(v) for v in set(np.unique(instance_map).tolist()) - {0}) == \
        sorted(d.id for d in detections if d.id)
    return ids


def drive(camera, node, cars_of_frames: list, first_stamp: int, step_ns: int = 100_000_000):
    """Send each frame of cars (0.1 s apart); return each frame's car ids."""
    all_ids = []
    for index, cars in enumerate(cars_of_frames):
        nanoseconds = first_stamp * 10**9 + index * step_ns
        stamp = (nanoseconds // 10**9, nanoseconds % 10**9)
        frame, _, depth = street(cars)
        found = camera.send(stamp, frame, depth,
                            until=camera.outputs(stamp, 'instances', 'instance_map'))
        assert found, f'frame {index}:\n{node.output()}'
        all_ids.append(ids_by_car(found, cars))
    return all_ids


def moving_cars(frames: int) -> list:
    """Two cars driving right 2 pixels a frame; a third one appears at frame 3."""
    result = []
    for index in range(frames):
        cars = [(4 + 2 * index, 26, 12 + 2 * index, 32, 3.0),
                (30 + 2 * index, 36, 40 + 2 * index, 44, 2.0)]
        if index >= 3:
            cars.append((50, 14, 56, 20, 5.0))
        result.append(cars)
    return result


def test_each_car_keeps_its_id_and_a_new_car_gets_a_new_one_at_once(camera, node, parameters):
    assert parameters.set_values(tracking=True)[0].successful   # the tracks start afresh
    ids = drive(camera, node, moving_cars(6), 100)
    first, second = ids[0]
    assert first != second
    assert all(frame_ids[:2] == [first, second] for frame_ids in ids)
    third = ids[3][2]
    assert third not in (first, second) and all(frame_ids[2] == third for frame_ids in ids[3:])
    assert int(third) > max(int(first), int(second))

    # Time going back (a bag played again) starts the tracks afresh: new ids, never old ones.
    again = drive(camera, node, moving_cars(2), 50)
    assert not set(sum(again, [])) & set(sum(ids, []))
    assert again[0] == again[1]
    # So does a gap of more than track_reset_gap (2 s).
    later = drive(camera, node, moving_cars(1), 60)
    assert not set(later[0]) & set(sum(again + ids, []))
    diagnostics = wait_until(lambda: int(camera.diagnostics().get(
        'track resets (time back or a gap)', 0)) >= 2 and camera.diagnostics(), 10)
    assert diagnostics and diagnostics['tracker failures (frame kept its own ids)'] == '0'


def test_tracking_off_numbers_each_frame_and_a_change_restarts_tracks(camera, node, parameters):
    assert parameters.set_values(tracking=False)[0].successful
    try:
        ids = drive(camera, node, moving_cars(2), 200)
        assert [sorted(frame_ids) for frame_ids in ids] == [['1', '2'], ['1', '2']]  # 1..N
        assert wait_until(lambda: camera.diagnostics().get('tracking', '').startswith('off'), 10)
    finally:
        assert parameters.set_values(tracking=True)[0].successful
    before = drive(camera, node, moving_cars(1), 210)[0]
    assert parameters.set_values(track_buffer=10)[0].successful
    after = drive(camera, node, moving_cars(1), 210 + 1)[0]   # 1 s on: no reset on time
    assert not set(before) & set(after), 'a tracking parameter change starts the tracks afresh'
    refused = parameters.set_values(track_activation_threshold=1.5)[0]
    assert not refused.successful and 'track_activation_threshold' in refused.reason


def test_an_unconfirmed_object_is_in_the_instances_without_an_id(camera, node, parameters):
    assert parameters.set_values(minimum_consecutive_frames=2)[0].successful
    try:
        cars = [(20, 30, 30, 40, 3.0)]
        frame, _, depth = street(cars)
        for index in range(2):
            stamp = (300, index * 100_000_000)
            found = camera.send(stamp, frame, depth, until=camera.outputs(
                stamp, 'instances', 'instance_map', 'objects'))
            assert found, node.output()
            detections = found['instances'].detections
            assert len(detections) == 1
            if index == 0:   # seen once: in ~/instances, no id, not in the map, no object
                assert detections[0].id == ''
                assert not pixels(found['instance_map']).any()
                assert not found['objects'].detections
            else:
                assert detections[0].id and found['objects'].detections[0].id == \
                    detections[0].id
                assert set(np.unique(pixels(found['instance_map'])).tolist()) == \
                    {0, int(detections[0].id)}
    finally:
        assert parameters.set_values(minimum_consecutive_frames=1)[0].successful


# ---- bad input ----------------------------------------------------------------------------------
def test_nan_depth_gives_an_empty_cloud_and_no_object_but_every_other_output(camera, node):
    frame, classes, depth = street([(24, 14, 40, 24, 3.0)])
    nothing = np.full_like(depth, math.nan)
    until = camera.outputs((400, 0), 'points', 'objects', 'class_map', 'confidence',
                           'instances', 'instance_map')
    found = camera.send((400, 0), frame, nothing, until=until)
    assert found, node.output()
    assert np.isnan(cloud(found['points'])['z']).all()
    assert not found['objects'].detections and len(found['instances'].detections) == 1
    assert np.array_equal(pixels(found['class_map']), classes)
    assert wait_until(lambda: int(camera.diagnostics().get(
        'depth frames without a valid point', 0)) >= 1, 10)
    assert camera.diagnostics()['3-D output failures'] == '0'


def test_depth_without_camera_info_loses_only_the_3d_outputs(probe, model_dir):
    namespace = '/no_info'
    process = NodeProcess('segmentation_node', node_args(model_dir, namespace), DOMAIN_ID)
    try:
        camera = Camera(probe, namespace)
        assert probe.wait_for_subscribers(camera.depth, timeout=30), process.output()
        frame, classes, depth = street([(24, 14, 40, 24, 3.0)])
        found = camera.send((500, 0), frame, depth, info=False, until=camera.outputs(
            (500, 0), 'class_map', 'confidence', 'instances', 'instance_map'))
        assert found, process.output()
        assert np.array_equal(pixels(found['class_map']), classes)
        assert wait_until(lambda: int(camera.diagnostics().get('frames without camera_info', 0))
                          >= 1, 10), camera.diagnostics()
        assert not camera.points and not camera.objects
        assert wait_until(lambda: camera.diagnostics().get('processing failures') == '0', 10)
        assert 'Traceback' not in process.output() and process.alive()
    finally:
        process.finish()


def test_thousands_of_objects(probe, model_dir):
    """2000 one-pixel cars: every instance tracked, drawn, its object out, nothing else lost."""
    namespace = '/crowd'
    width, height = 100, 80
    process = NodeProcess('segmentation_node', node_args(
        model_dir, namespace, width, height, 'max_instances:=65535', 'min_object_points:=1'),
        DOMAIN_ID)
    try:
        camera = Camera(probe, namespace)
        assert probe.wait_for_subscribers(camera.depth, timeout=30), process.output()
        frame, classes, depth = street([], width, height)
        classes[::2, ::2] = CAR
        depth[::2, ::2] = 2.5
        frame = np.ascontiguousarray(PROTOTYPES_RGB.astype(np.uint8)[classes][:, :, ::-1])
        for index in range(2):
            stamp = (600, index * 100_000_000)
            found = camera.send(stamp, frame, depth, until=camera.outputs(
                stamp, 'class_map', 'confidence', 'instances', 'instance_map', 'objects',
                'points', 'overlay'), timeout=60)
            assert found, process.output()
            detections = found['instances'].detections
            assert len(detections) == 2000 and len(found['objects'].detections) == 2000
            assert len({d.id for d in detections}) == 2000 and all(d.id for d in detections)
            if index == 0:
                first_ids = {d.id for d in detections}
        assert {d.id for d in detections} == first_ids, 'the still crowd keeps its ids'
        assert wait_until(lambda: camera.diagnostics().get('processing failures') == '0', 10)
    finally:
        process.finish()
