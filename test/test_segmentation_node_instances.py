"""
The node with instances, end to end over real topics: ~/instance_map, ~/instances, the overlay.

The YOLO-seg-format model of test/instance_models.py (constant outputs) runs in the real
executable; what arrives is compared with the NumPy reference decoding of those constants.
~/instances needs vision_msgs: those checks skip where it cannot be imported here, and the node
must then say why it does not publish the array.
"""

import os

import numpy as np
import pytest

from instance_models import make_yolo_seg_model, reference_yolo_seg
from instance_scenes import FRAME_H, FRAME_W, yolo_constants, YOLO_H, YOLO_W
from ros_env import module_domain, rclpy_context, vision_msgs_available
from ros_harness import NodeProcess, ParameterCaller, Probe, wait_until

DOMAIN_ID = module_domain(36)
NODE = '/inst/segmentation'

ros_context = pytest.fixture(scope='module')(rclpy_context(DOMAIN_ID))


@pytest.fixture(scope='module')
def node(tmp_path_factory):
    model = make_yolo_seg_model(tmp_path_factory.mktemp('node_yolo') / 'yolo.onnx',
                                *yolo_constants(), width=YOLO_W, height=YOLO_H)
    process = NodeProcess('segmentation_node', [
        '-r', '__ns:=/inst', '-r', 'image:=/inst/camera/image_raw',
        '-p', f'model_path:={model}', '-p', 'input_width:=0', '-p', 'input_height:=0',
        '-p', 'backend:=onnxruntime', '-p', 'color_encoding:=bgr8'], DOMAIN_ID,
        env={name: os.environ[name] for name in ('LD_LIBRARY_PATH', 'PYTHONPATH')
             if name in os.environ})
    yield process
    process.finish()


@pytest.fixture(scope='module')
def probe(ros_context, node):
    probe = Probe(ros_context, 'instances_probe')
    probe.record_outputs(NODE, ('instance_map', 'overlay'))
    if vision_msgs_available():
        from vision_msgs.msg import Detection2DArray
        probe.record_outputs(NODE, ('instances',), Detection2DArray)
    probe.image_publisher = probe.camera_publisher('/inst/camera/image_raw')
    assert probe.wait_for_subscribers(probe.image_publisher, timeout=30), node.output()
    assert probe.wait_for_publishers(f'{NODE}/instance_map', timeout=30), node.output()
    yield probe
    probe.close()


def send_frame(probe, stamp_sec: int):
    from sensor_msgs.msg import Image
    frame = np.full((FRAME_H, FRAME_W, 3), 60, np.uint8)
    msg = Image(height=FRAME_H, width=FRAME_W, encoding='bgr8', step=FRAME_W * 3)
    msg.data = frame.tobytes()
    msg.header.stamp.sec = stamp_sec
    msg.header.frame_id = 'inst_camera'
    probe.image_publisher.publish(msg)


def received(probe, topic: str, stamp_sec: int):
    matches = [msg for msg in probe.received[f'{NODE}/{topic}']
               if msg.header.stamp.sec == stamp_sec]
    return matches[-1] if matches else None


def wait_for(probe, node, topics, stamp_sec):
    arrived = wait_until(lambda: all(received(probe, topic, stamp_sec) for topic in topics) or
                         (send_frame(probe, stamp_sec) and False), 30, period=0.5)
    assert arrived, node.output()
    return {topic: received(probe, topic, stamp_sec) for topic in topics}


def test_instance_map_overlay_and_detections_match_the_reference(probe, node):
    topics = ['instance_map', 'overlay']
    if vision_msgs_available():
        topics.append('instances')
    messages = wait_for(probe, node, topics, 101)
    expected = reference_yolo_seg(*yolo_constants(), FRAME_W, FRAME_H, YOLO_W, YOLO_H, 0.5,
                                  0.5, 100)
    instance_map = messages['instance_map']
    assert (instance_map.encoding, instance_map.width, instance_map.height) == \
        ('mono16', FRAME_W, FRAME_H)
    assert instance_map.header.frame_id == 'inst_camera'
    ids = np.frombuffer(bytes(instance_map.data), '<u2' if not instance_map.is_bigendian
                        else '>u2').reshape(FRAME_H, FRAME_W)
    for index, item in enumerate(expected):
        visible = item['mask'] & ~np.logical_or.reduce(
            [earlier['mask'] for earlier in expected[:index]] or [np.zeros_like(item['mask'])])
        decided = ~item['ambiguous']
        assert ((ids == index + 1) == visible)[decided].all(), f'instance {index + 1}'
    overlay = np.frombuffer(bytes(messages['overlay'].data), np.uint8).reshape(FRAME_H,
                                                                               FRAME_W, 3)
    assert (overlay[ids > 0] != 60).any(axis=1).mean() > 0.95
    if 'instances' in messages:
        array = messages['instances']
        assert array.header.frame_id == 'inst_camera' and array.header.stamp.sec == 101
        assert [d.id for d in array.detections] == [str(i + 1) for i in range(len(expected))]
        for detection, item in zip(array.detections, expected):
            hypothesis = detection.results[0].hypothesis
            assert hypothesis.class_id == str(item['class_id'])
            assert hypothesis.score == pytest.approx(item['score'], abs=1e-6)
            x0, y0, x1, y1 = item['box']
            assert detection.bbox.center.position.x == pytest.approx((x0 + x1) / 2, abs=1e-3)
            assert detection.bbox.center.position.y == pytest.approx((y0 + y1) / 2, abs=1e-3)
            assert detection.bbox.size_x == pytest.approx(x1 - x0, abs=1e-3)
            assert detection.bbox.size_y == pytest.approx(y1 - y0, abs=1e-3)
    else:
        assert 'instances is not published: vision_msgs cannot be imported' in node.output()


def test_score_threshold_changes_without_a_rebuild_and_bad_values_are_refused(probe, node):
    parameters = ParameterCaller(probe, NODE)
    assert parameters.wait_ready(), node.output()
    refused = parameters.set_values(instance_classes=['thing1', 'nothing'])
    assert not refused[0].successful and 'nothing' in refused[0].reason
    assert parameters.set_values(score_threshold=0.86)[0].successful
    messages = wait_for(probe, node, ['instance_map'], 102)
    ids = np.frombuffer(bytes(messages['instance_map'].data), '<u2')
    assert set(np.unique(ids)) == {0, 1}  # only the 0.9 detection is left
    assert node.output().count(': Model ') == 1  # applied without loading the model again
    assert parameters.set_values(score_threshold=0.5)[0].successful


def test_an_instance_model_says_once_that_it_has_no_confidence(probe, node):
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import Image
    confidence = probe.record(Image, f'{NODE}/confidence', QoSProfile(depth=10))
    diagnostics = probe.record_diagnostics()
    assert wait_until(lambda: probe.node.count_subscribers(f'{NODE}/confidence') >= 1, 10)
    wait_for(probe, node, ['instance_map'], 103)   # a frame segmented while subscribed

    def status():
        for array in reversed(list(diagnostics)):
            for entry in array.status:
                if NODE in entry.name:
                    return {kv.key: kv.value for kv in entry.values}
        return None
    values = wait_until(status, 10)
    assert values['confidence'].startswith('none: task yolo_seg')
    assert values['tracking'].startswith('on')
    assert not confidence
    assert node.output().count('~/confidence is not published: task yolo_seg') == 1
