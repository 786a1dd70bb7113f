"""
The loopback Fast DDS profile: well formed, every socket of every process on 127.0.0.1, big frames.

Measurements (delivery ratio and latency against the stock settings) are in
``bench/dds_transport.py``; these tests check behaviour only.
"""

import glob
import os
from pathlib import Path
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ElementTree

import pytest

from ros_env import (module_domain, PROFILE_PATH, rclpy_context, remove_dead_segments,
                     ros_environment)
from ros_harness import inet_sockets, NodeProcess, non_loopback_sockets, Probe, wait_until

DOMAIN_ID = module_domain(41)
NAMESPACE = {'dds': 'http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles'}
FRAMES = 8

ros_context = pytest.fixture(scope='module')(rclpy_context(DOMAIN_ID))

PUBLISHER = textwrap.dedent("""
    import sys, time
    import rclpy
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node('loopback_test_publisher')
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth={frames},
                     reliability=ReliabilityPolicy.BEST_EFFORT)
    publisher = node.create_publisher(Image, 'loopback_test_image', qos)
    while publisher.get_subscription_count() == 0:
        time.sleep(0.05)
    time.sleep(1.0)
    msg = Image(height=1080, width=1920, encoding='bgr8', step=1920 * 3)
    msg.data = bytes(range(256)) * (1080 * 1920 * 3 // 256)
    for index in range({frames}):
        msg.header.frame_id = str(index)
        publisher.publish(msg)
        time.sleep(0.25)
    time.sleep(1.0)
""").format(frames=FRAMES)


def _profile() -> ElementTree.Element:
    return ElementTree.parse(PROFILE_PATH).getroot()


def _transport(kind: str) -> ElementTree.Element:
    matches = [descriptor for descriptor in _profile().iterfind(
        'dds:profiles/dds:transport_descriptors/dds:transport_descriptor', NAMESPACE)
        if descriptor.findtext('dds:type', namespaces=NAMESPACE) == kind]
    assert len(matches) == 1, kind
    return matches[0]


def _addresses(element: ElementTree.Element, path: str) -> list[str]:
    return [address.text for address in element.iterfind(
        path + '/dds:locator/dds:udpv4/dds:address', NAMESPACE)]


def test_profile_is_the_default_participant_profile():
    participants = _profile().findall('dds:profiles/dds:participant', NAMESPACE)
    assert len(participants) == 1
    participant = participants[0]
    assert participant.get('is_default_profile') == 'true'
    rtps = participant.find('dds:rtps', NAMESPACE)
    assert rtps.findtext('dds:useBuiltinTransports', namespaces=NAMESPACE) == 'false'
    used = {element.text for element in rtps.iterfind('dds:userTransports/dds:transport_id',
                                                      NAMESPACE)}
    assert used == {_transport('SHM').findtext('dds:transport_id', namespaces=NAMESPACE),
                    _transport('UDPv4').findtext('dds:transport_id', namespaces=NAMESPACE)}


def test_profile_keeps_every_transport_and_discovery_on_loopback():
    udp = _transport('UDPv4')
    assert [address.text for address in udp.iterfind('dds:interfaceWhiteList/dds:address',
                                                     NAMESPACE)] == ['127.0.0.1']
    builtin = _profile().find('dds:profiles/dds:participant/dds:rtps/dds:builtin', NAMESPACE)
    assert _addresses(builtin, 'dds:metatrafficUnicastLocatorList') == ['127.0.0.1']
    assert _addresses(builtin, 'dds:initialPeersList') == ['127.0.0.1']
    assert builtin.find('dds:metatrafficMulticastLocatorList', NAMESPACE) is None
    # No user locators: Fast DDS then adds the shared-memory ones (explicit UDP ones would
    # switch shared memory off for data).
    rtps = _profile().find('dds:profiles/dds:participant/dds:rtps', NAMESPACE)
    assert rtps.find('dds:defaultUnicastLocatorList', NAMESPACE) is None
    assert rtps.find('dds:defaultMulticastLocatorList', NAMESPACE) is None


def test_profile_shared_memory_holds_several_full_hd_frames():
    segment = int(_transport('SHM').findtext('dds:segment_size', namespaces=NAMESPACE))
    assert segment >= 4 * 1920 * 1080 * 3


def test_profile_matches_the_fast_dds_schema():
    xmlschema = pytest.importorskip('xmlschema', reason='xmlschema validates the XSD')
    schema = Path(sys.prefix, 'share', 'fastRTPS_profiles.xsd')
    if not schema.is_file():
        pytest.skip(f'no Fast DDS schema at {schema}')
    xmlschema.XMLSchema(str(schema)).validate(str(PROFILE_PATH))


@pytest.mark.skipif(not os.path.isfile('/proc/net/udp'), reason='needs Linux /proc')
def test_every_socket_of_every_process_is_on_loopback(ros_context):
    """A camera, the node and a subscriber (this process), all with the loopback settings."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    camera = NodeProcess('camera_source', [
        '-r', '__ns:=/loopback_camera', '-p', 'width:=320', '-p', 'height:=240',
        '-p', 'rate:=10.0'], DOMAIN_ID)
    node = NodeProcess('segmentation_node', [
        '-r', 'image:=/loopback_camera/image_raw', '-p', 'backend:=opencv',
        '-p', 'input_width:=128', '-p', 'input_height:=64'], DOMAIN_ID)
    probe = Probe(ros_context, 'loopback_socket_probe')
    try:
        overlays = probe.record(Image, '/segmentation/overlay',
                                QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
        assert wait_until(lambda: overlays, 90), node.output() + camera.output()
        pids = [camera.process.pid, node.process.pid, os.getpid()]
        sockets = {pid: inet_sockets(pid) for pid in pids}
        assert all(sockets.values()), f'a process of the graph holds no socket: {sockets}'
        assert non_loopback_sockets(pids) == {}, sockets
        # No multicast discovery port either (7400 + 250 * domain).
        ports = {port for entries in sockets.values() for _, _, port in entries}
        assert 7400 + 250 * DOMAIN_ID not in ports, sockets
    finally:
        probe.close()
        node.finish()
        camera.finish()


def test_full_hd_best_effort_frames_all_arrive(ros_context):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    node = rclpy.create_node('loopback_test_subscriber', context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    received = {}
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=FRAMES,
                     reliability=ReliabilityPolicy.BEST_EFFORT)
    node.create_subscription(
        Image, 'loopback_test_image',
        lambda msg: received.setdefault(msg.header.frame_id, len(msg.data)), qos)
    publisher = subprocess.Popen([sys.executable, '-c', PUBLISHER],
                                 env=ros_environment(DOMAIN_ID))
    try:
        deadline = time.monotonic() + 60.0
        while len(received) < FRAMES and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
            if publisher.poll() is not None:
                # Take what is already queued, then stop waiting.
                for _ in range(FRAMES):
                    executor.spin_once(timeout_sec=0.1)
                break
    finally:
        publisher.kill()
        publisher.wait()
        executor.shutdown()
        node.destroy_node()
    assert sorted(received, key=int) == [str(index) for index in range(FRAMES)]
    assert set(received.values()) == {1920 * 1080 * 3}


def test_segments_of_killed_processes_are_removed_and_living_ones_kept():
    """What the suite does at its end (conftest): a killed participant's 64 MiB goes back."""
    def segments() -> set[str]:
        return {path for path in glob.glob('/dev/shm/fastrtps_*')
                if not os.path.basename(path).startswith('fastrtps_port')}

    before = segments()
    living = NodeProcess('camera_source', ['-p', 'width:=32', '-p', 'height:=24'], DOMAIN_ID)
    killed = NodeProcess('camera_source', ['-r', '__ns:=/killed', '-p', 'width:=32',
                                           '-p', 'height:=24'], DOMAIN_ID)
    try:
        assert wait_until(lambda: len(segments() - before) == 4, 30), living.output()
        os.killpg(killed.process.pid, signal.SIGKILL)
        killed.wait(timeout=10)
        theirs = segments() - before
        assert len(theirs) == 4, 'the killed participant left its segment and lock file'
        assert 'zombie segments cleaned' in remove_dead_segments()
        left = segments() - before
        assert len(left) == 2 and all(path in theirs for path in left)
        assert living.alive(), living.output()
        segment = next(path for path in left if not path.endswith('_el'))
        assert os.path.getsize(segment) >= 64 * 1024 * 1024  # the profile's segment_size
    finally:
        living.close()
        killed.close()
    assert not segments() - before, 'a participant ended with Ctrl-C removes its own segment'
