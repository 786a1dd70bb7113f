"""
Nav2's semantic segmentation layer takes seg_ros's topics as they are: its contract, for real.

What the layer (ros-navigation/semantic_segmentation_layer, read from its source) relies on, per
observation source: it subscribes to the class mask, the confidence and the cloud with the
sensor-data profile at depth 50 (best effort: it takes reliable publishers), to LabelInfo
reliable and transient local at depth 5; it synchronises the three per-frame topics by exact
stamp (message_filters' TimeSynchronizer, queue 1000) or approximately (queue 1000, 0.1 s); it
reads the class of pixel (u, v) as ``mask.data[v * width + u]`` (so ``step == width``) and its
confidence the same way; it checks only ``cloud.width * cloud.height == mask.width *
mask.height``, walks the cloud's points in pixel order reading ``x y z`` float32 and skips a
point whose z is not finite; it finds each class id by its name in LabelInfo, exactly (case
too), for the names its ``class_types`` list.

Here a subscriber set with exactly those QoS profiles and synchronisers (message_filters, where
the ros2-extra build provides it; else exact stamp equality) takes the real node's outputs for
the embedded ENet (Cityscapes class names) on synthetic streets with depth, with the settings
``config/nav2_semantic_layer.yaml`` asks for (``output_resolution: model``, ``cloud_organized``),
and checks each rule and each point against the depth sampled at its pixel.
"""

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from ros_env import module_domain, rclpy_context
from ros_harness import NodeProcess, Probe, wait_until
from seg_ros.data.synthetic import render_scene

pytest.importorskip('vision_msgs', reason='~/label_info is vision_msgs/LabelInfo: run make test, '
                    'or python test/ros2_extra.py --link-venv')

DOMAIN_ID = module_domain(53)
NAMESPACE = '/nav2'
NODE = f'{NAMESPACE}/segmentation'
REPO_ROOT = Path(__file__).resolve().parent.parent
LAYER_CONFIG = REPO_ROOT / 'config' / 'nav2_semantic_layer.yaml'
WIDTH, HEIGHT = 640, 320                  # the camera; the network (and class map) 512x256
NETWORK_WIDTH, NETWORK_HEIGHT = 512, 256
FX = FY = 400.0
CX, CY = 320.0, 150.0
CAMERA_HEIGHT = 1.2
FRAMES = 3

ros_context = pytest.fixture(scope='module')(rclpy_context(DOMAIN_ID))


def ground_depth(rng: np.random.Generator) -> np.ndarray:
    """Metres of flat ground below the horizon (NaN above it), 5 % holes, a far strip."""
    v = np.arange(HEIGHT, dtype=np.float64)[:, None] - CY
    with np.errstate(divide='ignore'):
        depth = np.where(v > 0, CAMERA_HEIGHT * FY / np.maximum(v, 1e-9), np.nan)
    depth = np.broadcast_to(depth, (HEIGHT, WIDTH)).astype(np.float32).copy()
    depth[rng.random(depth.shape) < 0.05] = np.nan
    depth[HEIGHT - 10:, :40] = 50.0       # beyond depth_range: no point
    return depth


@pytest.fixture(scope='module')
def node():
    process = NodeProcess('segmentation_node', [
        '-r', f'__ns:={NAMESPACE}', '-r', f'image:={NAMESPACE}/camera/image_raw',
        '-r', f'camera_info:={NAMESPACE}/camera/camera_info',
        '-p', f'depth_topic:={NAMESPACE}/camera/depth/image_raw', '-p', 'cloud_organized:=true',
        '-p', 'output_resolution:=model', '-p', 'depth_range:=[0.1, 20.0]',
        '-p', 'diagnostics_period:=0.5'], DOMAIN_ID)
    yield process
    process.finish()


class Layer:
    """The layer's subscriptions for one observation source, and what it was given."""

    def __init__(self, node) -> None:
        from rclpy.qos import (DurabilityPolicy, HistoryPolicy, qos_profile_sensor_data,
                               QoSProfile, ReliabilityPolicy)
        from sensor_msgs.msg import Image, PointCloud2
        from vision_msgs.msg import LabelInfo
        sensor = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50,
                            reliability=qos_profile_sensor_data.reliability,
                            durability=qos_profile_sensor_data.durability)
        assert sensor.reliability == ReliabilityPolicy.BEST_EFFORT
        latched = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.labels: list = []
        node.create_subscription(LabelInfo, f'{NODE}/label_info', self.labels.append, latched)
        self.exact: list = []
        self.approximate: list = []
        topics = ((Image, 'class_map'), (Image, 'confidence'), (PointCloud2, 'points'))
        try:
            import message_filters
        except ImportError:
            message_filters = None
        if message_filters is not None:
            self.synchronisers = []
            for synchroniser, store in (
                    (lambda subs: message_filters.TimeSynchronizer(subs, 1000), self.exact),
                    (lambda subs: message_filters.ApproximateTimeSynchronizer(subs, 1000, 0.1),
                     self.approximate)):
                subscribers = [message_filters.Subscriber(node, kind, f'{NODE}/{name}',
                                                          qos_profile=sensor)
                               for kind, name in topics]
                sync = synchroniser(subscribers)
                sync.registerCallback(lambda *triple, store=store: store.append(triple))
                self.synchronisers.append((sync, subscribers))
        else:  # exact stamp equality by hand
            self._pending: dict = {}
            for index, (kind, name) in enumerate(topics):
                node.create_subscription(kind, f'{NODE}/{name}',
                                         lambda msg, index=index: self._match(index, msg),
                                         sensor)
            self.approximate = self.exact

    def _match(self, index: int, msg) -> None:
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        slots = self._pending.setdefault(key, [None, None, None])
        slots[index] = msg
        if all(slot is not None for slot in slots):
            self.exact.append(tuple(slots))
            del self._pending[key]


def layer_class_names() -> set[str]:
    """Every class name the configuration's class_types list (the layer matches them exactly)."""
    config = yaml.safe_load(LAYER_CONFIG.read_text())
    layer = config['local_costmap']['local_costmap']['ros__parameters']
    plugin = layer['semantic_segmentation_layer']
    names = set()
    for source in plugin['observation_sources'].split():
        settings = plugin[source]
        # segment.launch.py's node (no namespace): /segmentation/<seg_ros's topic>.
        assert [settings[key] for key in ('segmentation_topic', 'confidence_topic',
                                          'labels_topic', 'pointcloud_topic')] == [
            '/segmentation/class_map', '/segmentation/confidence', '/segmentation/label_info',
            '/segmentation/points']
        for class_type in settings['class_types']:
            names.update(settings[class_type]['classes'])
    return names


def camera_info(stamp):
    from sensor_msgs.msg import CameraInfo
    info = CameraInfo(width=WIDTH, height=HEIGHT, distortion_model='plumb_bob')
    info.k = [FX, 0.0, CX, 0.0, FY, CY, 0.0, 0.0, 1.0]
    info.header.stamp, info.header.frame_id = stamp, 'camera_optical_frame'
    return info


def images(frame_bgr: np.ndarray, depth: np.ndarray, index: int):
    from sensor_msgs.msg import Image
    colour = Image(height=HEIGHT, width=WIDTH, encoding='bgr8', step=WIDTH * 3,
                   data=frame_bgr.tobytes())
    depth_msg = Image(height=HEIGHT, width=WIDTH, encoding='32FC1', step=WIDTH * 4,
                      data=depth.astype('<f4').tobytes())
    for msg in (colour, depth_msg):
        msg.header.stamp.sec, msg.header.stamp.nanosec = 700 + index, 250_000_000
        msg.header.frame_id = 'camera_optical_frame'
    return colour, depth_msg


def walk_like_the_layer(mask, confidence, cloud, class_names: list[str]) -> dict:
    """
    Read a frame as the layer does: each point in pixel order, its class and confidence by index.

    :return: per class name, the number of points with a finite z and their mean confidence.
    """
    assert mask.encoding == 'mono8' and mask.step == mask.width
    assert confidence.encoding == 'mono8' and confidence.step == confidence.width
    assert cloud.width * cloud.height == mask.width * mask.height   # the layer's only check
    assert (confidence.width, confidence.height) == (mask.width, mask.height)
    offsets = {field.name: (field.offset, field.datatype) for field in cloud.fields}
    assert all(offsets[axis][1] == 7 for axis in 'xyz')               # FLOAT32
    data = bytes(cloud.data)
    z = np.frombuffer(data, '<f4').reshape(-1, cloud.point_step // 4)[:, offsets['z'][0] // 4]
    classes = np.frombuffer(bytes(mask.data), np.uint8)
    levels = np.frombuffer(bytes(confidence.data), np.uint8)
    seen: dict = {}
    for index in np.flatnonzero(np.isfinite(z)):        # the layer skips a non-finite z
        name = class_names[classes[index]]
        count, total = seen.get(name, (0, 0))
        seen[name] = (count + 1, total + int(levels[index]))
    return {name: (count, total / count) for name, (count, total) in seen.items()}


def test_the_layer_gets_synchronised_class_map_confidence_cloud_and_labels(ros_context, node):
    probe = Probe(ros_context, 'nav2_layer_probe')
    try:
        layer = Layer(probe.node)
        image = probe.camera_publisher(f'{NAMESPACE}/camera/image_raw')
        depth_publisher = probe.camera_publisher(f'{NAMESPACE}/camera/depth/image_raw')
        from sensor_msgs.msg import CameraInfo
        info = probe.camera_publisher(f'{NAMESPACE}/camera/camera_info', CameraInfo)
        for publisher in (image, depth_publisher, info):
            assert probe.wait_for_subscribers(publisher, timeout=60), node.output()
        assert wait_until(lambda: layer.labels, 30), node.output()
        rng = np.random.default_rng(8)
        sent = []
        for index in range(FRAMES):
            frame, _ = render_scene(rng, WIDTH, HEIGHT)
            depth = ground_depth(rng)
            colour, depth_msg = images(frame, depth, index)
            sent.append(depth)
            stamp = colour.header.stamp

            def arrived(stamp=stamp):
                return [triple for triple in layer.exact if triple[0].header.stamp == stamp]
            for _ in range(60):
                info.publish(camera_info(stamp))
                depth_publisher.publish(depth_msg)
                image.publish(colour)
                if wait_until(arrived, 1.0):
                    break
            assert arrived(), node.output()
        assert wait_until(lambda: len({t[0].header.stamp.sec for t in layer.approximate}) >=
                          FRAMES, 10)
    finally:
        probe.close()

    labels = layer.labels[-1]
    class_names = [None] * (max(c.class_id for c in labels.class_map) + 1)
    for entry in labels.class_map:
        class_names[entry.class_id] = entry.class_name
    # The layer's class names are the model's, exactly: none is logged as unknown.
    assert layer_class_names() <= set(class_names), layer_class_names() - set(class_names)

    for index, depth in enumerate(sent):
        [(mask, confidence, cloud)] = {t[0].header.stamp.sec: t for t in layer.exact
                                       if t[0].header.stamp.sec == 700 + index}.values()
        assert mask.header == confidence.header == cloud.header
        assert (mask.width, mask.height) == (NETWORK_WIDTH, NETWORK_HEIGHT)
        assert (cloud.width, cloud.height) == (mask.width, mask.height) and not cloud.is_dense
        seen = walk_like_the_layer(mask, confidence, cloud, class_names)
        assert {'Road', 'Sky'} & set(class_names) and sum(n for n, _ in seen.values()) > 1000
        assert all(0 < mean <= 255 for _, mean in seen.values())
        # Point v * width + u is class-map pixel (u, v), with the depth at that pixel's centre.
        points = np.frombuffer(bytes(cloud.data), '<f4').reshape(
            cloud.height, cloud.width, cloud.point_step // 4)
        rows = ((np.arange(cloud.height) + 0.5) * HEIGHT / cloud.height).astype(int)
        columns = ((np.arange(cloud.width) + 0.5) * WIDTH / cloud.width).astype(int)
        z = depth[rows][:, columns].astype(np.float64)
        z[~((z >= 0.1) & (z <= 20.0))] = math.nan
        scale_x, scale_y = cloud.width / WIDTH, cloud.height / HEIGHT
        u = np.arange(cloud.width)[None, :]
        v = np.arange(cloud.height)[:, None]
        expected_x = (u - CX * scale_x) * z / (FX * scale_x)
        expected_y = (v - CY * scale_y) * z / (FY * scale_y)
        assert np.array_equal(np.isfinite(points[:, :, 2]), np.isfinite(z))
        np.testing.assert_allclose(points[:, :, 2], z, rtol=1e-6)
        np.testing.assert_allclose(points[:, :, 0], expected_x, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(points[:, :, 1], expected_y, rtol=1e-5, atol=1e-5)
    # Approximate synchronisation (the layer's default) pairs the same frames.
    for triple in layer.approximate:
        assert triple[0].header == triple[1].header == triple[2].header
