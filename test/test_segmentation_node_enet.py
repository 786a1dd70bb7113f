"""
The node with the real ENet Cityscapes weights (../shared) on the real street photos, over topics.

Skipped with a reason where the weights are absent (they are not redistributable with seg_ros).
What the photos should give was read off their overlays once: narrow cobbled streets between brick
buildings under an overcast sky, so sky dominates the top third and no sky is in the bottom third.
"""

import os
import signal

import cv2
import numpy as np
import pytest

from ros_env import module_domain, rclpy_context
from ros_harness import NodeProcess, Probe, wait_until

DOMAIN_ID = module_domain(14)
SKY = 11

ros_context = pytest.fixture(scope='module')(rclpy_context(DOMAIN_ID))


@pytest.fixture(scope='module')
def enet_node(enet_dir):
    node = NodeProcess('segmentation_node', [
        '-r', '__ns:=/enet', '-p', f'model_path:={os.path.join(enet_dir, "enet-model.net")}',
        '-p', 'backend:=opencv'], DOMAIN_ID)
    yield node
    assert node.stop(signal.SIGINT) == 0, node.output()
    node.close()


@pytest.mark.parametrize('name', ['leuvenA.jpg', 'leuvenB.jpg'])
def test_real_enet_over_topics_matches_the_core_segmenter(ros_context, enet_node, enet_dir, name):
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from seg_ros.core.segmenter import Segmenter, SegmenterConfig
    from seg_ros.paths import default_label_paths
    from seg_ros.ros.image_conversion import array_to_image
    from seg_ros.ros.qos import image_qos

    frame = cv2.imread(os.path.join(enet_dir, os.pardir, os.pardir, 'images', name))
    if frame is None:
        pytest.skip(f'photo {name} not found beside the ENet weights')
    probe = Probe(ros_context, f'enet_probe_{name[6]}')
    try:
        class_maps = probe.record(Image, '/enet/segmentation/class_map',
                                  QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
        publisher = probe.node.create_publisher(Image, '/enet/image', image_qos('reliable', 1))
        assert probe.wait_for_subscribers(publisher, timeout=60), enet_node.output()
        msg = array_to_image(frame, 'bgr8')
        msg.header.frame_id = name

        def received():
            publisher.publish(msg)
            return [m for m in class_maps if m.header.frame_id == name]
        outputs = wait_until(received, 60, period=2.0)
        assert outputs, enet_node.output()
        class_map = np.frombuffer(bytes(outputs[0].data), np.uint8).reshape(frame.shape[:2])
    finally:
        probe.close()

    model = os.path.join(enet_dir, 'enet-model.net')
    classes_path, colors_path = default_label_paths(model)
    segmenter = Segmenter(SegmenterConfig(model, backend='opencv', classes_path=classes_path,
                                          colors_path=colors_path))
    expected = segmenter.run(frame, encoding='bgr8', overlay=False, color_mask=False)
    np.testing.assert_array_equal(class_map, expected.class_map_full)
    third = class_map.shape[0] // 3
    top = np.bincount(class_map[:third].ravel(), minlength=20) / class_map[:third].size
    bottom = np.bincount(class_map[-third:].ravel(), minlength=20) / class_map[-third:].size
    assert np.argmax(top) == SKY and bottom[SKY] < 0.01
