"""
The node's standard interfaces, end to end over real topics with a real OpenCV network.

``~/label_info`` (vision_msgs/LabelInfo), the image_transport-style ``<output>/compressed``
topics (their ``format`` strings and pixels), ``~/mask/<class>`` binary masks, the compressed
camera input (``input_transport: compressed``, corrupt frames rejected and counted), and a node
where vision_msgs really cannot be imported. References are computed here with plain ``cv2.dnn``.
"""


import cv2
import numpy as np
import pytest

from models import (make_frame, make_labelled_model, tiny_class_map as reference_class_map,
                    TINY_COLORS_RGB, TINY_HEIGHT, TINY_WIDTH)
from ros2_extra import HIDE_VARIABLE, skip_unless_hidden, vision_msgs_or_skip
from ros_env import module_domain, rclpy_context, ros_environment
from ros_harness import NodeProcess, ParameterCaller, Probe, tiny_model_params, wait_until

DOMAIN_ID = module_domain(21)
NUM_CLASSES = 4
MODEL_WIDTH, MODEL_HEIGHT = TINY_WIDTH, TINY_HEIGHT
CLASS_NAMES = ['road', 'Car', 'person', 'Sky Blue']  # capitals and a space: the mask topics
COLORS_RGB = TINY_COLORS_RGB
RAW = '/iface_raw'
PACKED = '/iface_packed'
HIDDEN = '/iface_hidden'

ros_context = pytest.fixture(scope='module')(rclpy_context(DOMAIN_ID))


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory) -> str:
    return make_labelled_model(tmp_path_factory.mktemp('iface_model'), CLASS_NAMES, COLORS_RGB)


def node_args(model_dir: str, namespace: str, *params: str) -> list[str]:
    return ['-r', f'__ns:={namespace}', '-r', f'image:={namespace}/camera/image_raw',
            *tiny_model_params(model_dir, MODEL_WIDTH, MODEL_HEIGHT, *params)]


def raw_image(frame_bgr: np.ndarray, stamp_sec: int):
    from sensor_msgs.msg import Image
    height, width = frame_bgr.shape[:2]
    msg = Image(height=height, width=width, encoding='bgr8', step=width * 3)
    msg.data = frame_bgr.tobytes()
    msg.header.stamp.sec = stamp_sec
    msg.header.frame_id = 'iface_camera'
    return msg


def compressed_image(data: bytes, format_text: str, stamp_sec: int):
    from sensor_msgs.msg import CompressedImage
    msg = CompressedImage(format=format_text)
    msg.data = data
    msg.header.stamp.sec = stamp_sec
    msg.header.frame_id = 'iface_camera'
    return msg


def stamped(messages: list, stamp_sec: int):
    matches = [msg for msg in list(messages) if msg.header.stamp.sec == stamp_sec]
    return matches[-1] if matches else None


def send_until(probe, publisher, msg, topics: list[str], timeout: float = 30.0) -> dict:
    """Publish ``msg`` every 0.5 s until a message with its stamp arrived on every topic."""
    stamp_sec = msg.header.stamp.sec

    def arrived():
        found = {topic: stamped(probe.received[topic], stamp_sec) for topic in topics}
        return found if all(found.values()) else None
    for _ in range(int(timeout / 0.5)):
        publisher.publish(msg)
        found = wait_until(arrived, 0.5)
        if found:
            return found
    return {}


def decode(msg, flags=cv2.IMREAD_UNCHANGED) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), flags)


def pixels(msg) -> np.ndarray:
    return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, -1).squeeze()


@pytest.fixture(scope='module')
def raw_node(model_dir):
    process = NodeProcess('segmentation_node', node_args(
        model_dir, RAW, "class_masks:=['car', 'SKY BLUE']", 'jpeg_quality:=90'), DOMAIN_ID)
    yield process
    process.finish()


@pytest.fixture(scope='module')
def probe(ros_context, raw_node):
    from sensor_msgs.msg import CompressedImage

    probe = Probe(ros_context, 'iface_probe')
    probe.record_outputs(f'{RAW}/segmentation', ('class_map/compressed',
                                                 'color_mask/compressed', 'overlay/compressed'),
                         CompressedImage)
    probe.record_outputs(f'{RAW}/segmentation', ('class_map', 'mask/car', 'mask/sky_blue'))
    probe.raw_publisher = probe.camera_publisher(f'{RAW}/camera/image_raw')
    assert probe.wait_for_subscribers(probe.raw_publisher, timeout=60), raw_node.output()
    yield probe
    probe.close()


def test_compressed_outputs_have_image_transport_formats_and_the_right_pixels(probe, model_dir):
    frame = make_frame(160, 120, seed=3)
    topics = [f'{RAW}/segmentation/{name}/compressed'
              for name in ('class_map', 'color_mask', 'overlay')]
    found = send_until(probe, probe.raw_publisher, raw_image(frame, 2101), topics)
    assert found, 'no compressed outputs'
    class_map_msg, mask_msg, overlay_msg = (found[topic] for topic in topics)
    # compressed_publisher.cpp: '<encoding>; <codec> compressed <target>', nothing for mono PNG.
    assert class_map_msg.format == 'mono8; png compressed '
    assert mask_msg.format == 'rgb8; jpeg compressed bgr8'
    assert overlay_msg.format == 'rgb8; jpeg compressed bgr8'
    for msg in found.values():
        assert msg.header.frame_id == 'iface_camera'
    expected = reference_class_map(model_dir, frame)
    class_map = decode(class_map_msg)
    assert class_map.dtype == np.uint8 and np.array_equal(class_map, expected), 'PNG is lossless'
    mask_bgr = decode(mask_msg, cv2.IMREAD_COLOR)
    assert mask_bgr.shape == (120, 160, 3)
    # JPEG: the data holds BGR (what 'compressed bgr8' says), close to the class colours.
    difference = np.abs(mask_bgr.astype(int) - COLORS_RGB[expected][:, :, ::-1].astype(int))
    assert np.mean(difference) < 8, np.mean(difference)
    overlay_bgr = decode(overlay_msg, cv2.IMREAD_COLOR).astype(float)
    formula = 0.5 * frame + 0.5 * COLORS_RGB[expected][:, :, ::-1]
    assert np.mean(np.abs(overlay_bgr - formula)) < 10
    raw_size = 160 * 120 * 3
    assert len(overlay_msg.data) < raw_size / 2 and len(class_map_msg.data) < 160 * 120


def test_class_masks_are_binary_and_match_the_class_map(probe, model_dir):
    frame = make_frame(96, 72, seed=5)
    topics = [f'{RAW}/segmentation/mask/car', f'{RAW}/segmentation/mask/sky_blue',
              f'{RAW}/segmentation/class_map']
    found = send_until(probe, probe.raw_publisher, raw_image(frame, 2102), topics)
    assert found, 'no masks'
    expected = reference_class_map(model_dir, frame)
    class_map = pixels(found[topics[2]])
    assert np.array_equal(class_map, expected)
    for topic, class_id in ((topics[0], 1), (topics[1], 3)):
        msg = found[topic]
        assert msg.encoding == 'mono8' and (msg.width, msg.height) == (96, 72)
        assert msg.header.frame_id == 'iface_camera'
        mask = pixels(msg)
        assert set(np.unique(mask)) <= {0, 255}
        assert np.array_equal(mask == 255, expected == class_id), topic
    assert (expected == 1).any() or (expected == 3).any(), 'the frame should show a mask class'


def test_label_info_is_latched_with_the_model_classes(probe):
    vision_msgs = vision_msgs_or_skip()
    from seg_ros.ros.qos import latched_qos
    messages = probe.record(vision_msgs.LabelInfo, f'{RAW}/segmentation/label_info',
                            latched_qos())
    assert wait_until(lambda: messages, 30), 'no LabelInfo (transient local: a late subscriber)'
    info = messages[-1]
    assert [(entry.class_id, entry.class_name) for entry in info.class_map] == list(
        enumerate(CLASS_NAMES))


def test_class_masks_changes_are_checked_against_the_model(probe, raw_node):
    caller = ParameterCaller(probe, f'{RAW}/segmentation')
    assert caller.wait_ready(), raw_node.output()
    [refused] = caller.set_values(class_masks=['car', 'tree'])
    assert not refused.successful
    assert "'tree' is not a class of the model" in refused.reason
    assert 'road, Car, person, Sky Blue' in refused.reason
    assert caller.get_values('class_masks') == [['car', 'SKY BLUE']]
    [accepted] = caller.set_values(class_masks=['ROAD'])
    assert accepted.successful, accepted.reason
    node = probe.node
    assert wait_until(lambda: node.count_publishers(f'{RAW}/segmentation/mask/road') == 1, 30)
    assert wait_until(lambda: node.count_publishers(f'{RAW}/segmentation/mask/car') == 0, 30)
    assert node.count_publishers(f'{RAW}/segmentation/mask/sky_blue') == 0


def test_unknown_class_mask_at_start_up_is_refused_with_the_classes(model_dir):
    process = NodeProcess('segmentation_node', node_args(
        model_dir, '/iface_bad', "class_masks:=['Road', 'Tree']"), DOMAIN_ID)
    try:
        status = process.wait(timeout=60)
        output = process.output()
    finally:
        process.close()
    assert status == 1, output
    assert "class_masks: 'Tree' is not a class of the model" in output
    assert 'road, Car, person, Sky Blue' in output


@pytest.fixture(scope='module')
def packed_node(model_dir):
    process = NodeProcess('segmentation_node', node_args(
        model_dir, PACKED, 'input_transport:=compressed'), DOMAIN_ID)
    yield process
    process.finish()


@pytest.fixture(scope='module')
def packed_probe(ros_context, packed_node):
    from sensor_msgs.msg import CompressedImage

    probe = Probe(ros_context, 'iface_packed_probe')
    probe.record_outputs(f'{PACKED}/segmentation', ('class_map',))
    probe.record_diagnostics()
    probe.publisher = probe.camera_publisher(f'{PACKED}/camera/image_raw/compressed',
                                             CompressedImage)
    assert probe.wait_for_subscribers(probe.publisher, timeout=60), packed_node.output()
    yield probe
    probe.close()


def test_compressed_input_png_is_segmented_exactly(packed_probe, model_dir):
    frame = make_frame(80, 60, seed=7)
    ok, data = cv2.imencode('.png', frame)
    msg = compressed_image(data.tobytes(), 'bgr8; png compressed bgr8', 2201)
    topic = f'{PACKED}/segmentation/class_map'
    found = send_until(packed_probe, packed_probe.publisher, msg, [topic])
    assert found, 'no output for a PNG frame'
    out = found[topic]
    assert out.header.frame_id == 'iface_camera' and (out.width, out.height) == (80, 60)
    assert np.array_equal(pixels(out), reference_class_map(model_dir, frame))


def test_compressed_input_jpeg_is_segmented(packed_probe, model_dir):
    frame = make_frame(80, 60, seed=8)
    ok, data = cv2.imencode('.jpg', frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)  # the node sees the decoded JPEG
    msg = compressed_image(data.tobytes(), 'rgb8; jpeg compressed bgr8', 2202)
    topic = f'{PACKED}/segmentation/class_map'
    found = send_until(packed_probe, packed_probe.publisher, msg, [topic])
    assert found, 'no output for a JPEG frame'
    assert np.array_equal(pixels(found[topic]), reference_class_map(model_dir, decoded))


def _diagnostics(probe, namespace: str) -> dict:
    for array in reversed(list(probe.received['/diagnostics'])):
        for status in array.status:
            if status.name.startswith(f'{namespace}/segmentation'):
                return {kv.key: kv.value for kv in status.values}
    return {}


def test_corrupt_compressed_frames_are_rejected_and_counted(packed_probe, packed_node,
                                                            model_dir):
    frame = make_frame(80, 60, seed=9)
    ok, data = cv2.imencode('.jpg', frame)
    truncated = data.tobytes()[:40]

    def rejected():
        return int(_diagnostics(packed_probe, PACKED).get('frames rejected', 0))
    for index, payload in enumerate((truncated, b'not an image at all', b'')):
        # One at a time: a frame still waiting when the next arrives is replaced, not decoded.
        # (Again every 2 s: the best-effort input may lose one.)
        before = rejected()
        msg = compressed_image(payload, 'bgr8; jpeg compressed bgr8', 2300 + index)
        for _ in range(15):
            packed_probe.publisher.publish(msg)
            if wait_until(lambda: rejected() > before, 2.0):
                break
        assert rejected() > before, packed_node.output()
    output = packed_node.output()
    assert 'frame rejected: compressed image' in output and 'cannot be decoded' in output
    assert 'has no data' in output
    assert packed_node.alive()
    assert not stamped(packed_probe.received[f'{PACKED}/segmentation/class_map'], 2300)
    # The next good frame is segmented as usual.
    ok, data = cv2.imencode('.png', frame)
    topic = f'{PACKED}/segmentation/class_map'
    found = send_until(packed_probe, packed_probe.publisher,
                       compressed_image(data.tobytes(), 'bgr8; png compressed bgr8', 2310),
                       [topic])
    assert found and np.array_equal(pixels(found[topic]), reference_class_map(model_dir, frame))


def test_nothing_is_compressed_without_a_compressed_subscriber(packed_probe, packed_node):
    values = wait_until(lambda: _diagnostics(packed_probe, PACKED) if int(
        _diagnostics(packed_probe, PACKED).get('frames processed', 0)) >= 1 else None, 30)
    assert values, packed_node.output()
    # Only the raw class map has a subscriber here: no image was encoded.
    assert values['png encoding mean (ms)'] == 'nan'
    assert values['jpeg encoding mean (ms)'] == 'nan'


def test_without_vision_msgs_the_node_says_so_once_and_keeps_labels(ros_context, model_dir):
    skip_unless_hidden('vision_msgs', ros_environment(DOMAIN_ID))
    from std_msgs.msg import String

    from seg_ros.ros.qos import latched_qos

    process = NodeProcess('segmentation_node', node_args(model_dir, HIDDEN), DOMAIN_ID,
                          env={HIDE_VARIABLE: '1'})
    probe = Probe(ros_context, 'iface_hidden_probe')
    try:
        labels = probe.record(String, f'{HIDDEN}/segmentation/labels', latched_qos())
        assert wait_until(lambda: labels, 60), process.output()
        output = process.output()
        assert output.count('vision_msgs cannot be imported') == 1, output
        assert 'No module named' in output
        assert probe.node.count_publishers(f'{HIDDEN}/segmentation/label_info') == 0
        assert process.alive()
    finally:
        probe.close()
        process.finish()
