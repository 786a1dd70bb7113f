"""
The managed node through 100 configure / activate / deactivate / cleanup cycles.

A real ``managed_segmentation_node`` process with a tiny ONNX model is driven through its
lifecycle services as a lifecycle manager drives it; after every activate a frame goes in and all
three image outputs must come back for it, and after every cleanup the node's resident memory is
sampled: it may not grow by more than 10 MiB from the first cycle to the last (a model, its
publishers and its buffers made and freed 100 times).
"""

import os
import statistics
import sys
import time

import pytest

from models import make_frame, make_labelled_model, TINY_CLASS_NAMES, TINY_COLORS_RGB
from ros_env import module_domain, rclpy_context, ros_environment
from ros_harness import (descendants, image_message, Lifecycle, LoggedProcess, Probe, rss_mib,
                         tiny_model_params, wait_until)
from seg_ros.paths import executable_path

DOMAIN_ID = module_domain(46)
NAMESPACE = '/cycles'
NODE = f'{NAMESPACE}/segmentation'
IMAGE_TOPIC = f'{NAMESPACE}/camera/image_raw'
OUTPUTS = ('class_map', 'color_mask', 'overlay')
CYCLES = 100
RSS_GROWTH_MIB = 10.0
# The first cycles warm the allocator, DDS and the OpenCV DNN probe's cache.
WARM_CYCLES = 1

ros_context = pytest.fixture(scope='module')(rclpy_context(DOMAIN_ID))


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory) -> str:
    return make_labelled_model(tmp_path_factory.mktemp('cycles_model'), TINY_CLASS_NAMES,
                               TINY_COLORS_RGB)


@pytest.fixture
def probe(ros_context):
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from seg_ros.ros.qos import image_qos

    probe = Probe(ros_context, 'cycles_probe')
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    for output in OUTPUTS:
        probe.record(Image, f'{NODE}/{output}', reliable)
    probe.image_publisher = probe.node.create_publisher(Image, IMAGE_TOPIC,
                                                        image_qos('reliable', 5))
    probe.lifecycle = Lifecycle(probe, NODE)
    yield probe
    probe.close()


def node_rss(node: LoggedProcess) -> float:
    """Return the largest RSS among the node's processes (the Python that runs it)."""
    return max(rss_mib(pid) for pid in descendants(node.process.pid))


def outputs_after_activate(probe, stamp_sec: int, timeout: float = 20.0) -> float:
    """Publish a frame stamped ``stamp_sec`` until its three outputs arrive; return the wait."""
    msg = image_message(make_frame(80, 60, seed=stamp_sec % 7), 'bgr8')
    msg.header.stamp.sec = stamp_sec
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        probe.image_publisher.publish(msg)
        if wait_until(lambda: all(any(out.header.stamp.sec == stamp_sec
                                      for out in probe.received[f'{NODE}/{name}'])
                                  for name in OUTPUTS), 0.2):
            return time.monotonic() - started
    raise AssertionError(f'no outputs within {timeout} s of the activate of cycle {stamp_sec}')


def test_hundred_lifecycle_cycles_keep_memory_flat_and_outputs_flowing(probe, model_dir):
    from lifecycle_msgs.msg import Transition

    command = [executable_path('managed_segmentation_node')]
    if not os.path.exists(command[0]):
        command = [sys.executable, '-m', 'seg_ros.ros.managed_node']
    arguments = ['-r', f'__ns:={NAMESPACE}', '-r', f'image:={IMAGE_TOPIC}',
                 *tiny_model_params(model_dir, 64, 48)]
    node = LoggedProcess([*command, '--ros-args', *arguments], ros_environment(DOMAIN_ID),
                         'managed_segmentation_node-')
    lifecycle = probe.lifecycle
    rss, waits = [], []
    try:
        lifecycle.wait_ready()
        for cycle in range(1, CYCLES + 1):
            assert lifecycle.change(Transition.TRANSITION_CONFIGURE), node.output()[-3000:]
            assert lifecycle.change(Transition.TRANSITION_ACTIVATE), node.output()[-3000:]
            assert wait_until(lambda: probe.image_publisher.get_subscription_count() == 1, 10)
            waits.append(outputs_after_activate(probe, cycle))
            assert lifecycle.change(Transition.TRANSITION_DEACTIVATE), node.output()[-3000:]
            assert lifecycle.change(Transition.TRANSITION_CLEANUP), node.output()[-3000:]
            for output in OUTPUTS:  # only this cycle's frame is looked for: keep the list short
                probe.received[f'{NODE}/{output}'].clear()
            rss.append(node_rss(node))
        assert node.alive(), node.output()[-3000:]
        assert 'Traceback' not in node.output(), node.output()[-3000:]
    finally:
        node.close()
    growth = statistics.median(rss[-5:]) - statistics.median(rss[WARM_CYCLES:WARM_CYCLES + 5])
    print(f'RSS after cleanup: cycle {WARM_CYCLES + 1} {rss[WARM_CYCLES]:.1f} MiB, cycle '
          f'{CYCLES} {rss[-1]:.1f} MiB, growth {growth:+.1f} MiB (medians of 5); outputs after '
          f'activate: median {statistics.median(waits):.2f} s, max {max(waits):.2f} s')
    assert growth <= RSS_GROWTH_MIB, rss
