"""
The loopback Fast DDS profile: well formed, loaded by rmw_fastrtps, on 127.0.0.1, big frames.

Measurements (delivery ratio and latency against the stock settings) are in
``bench/dds_transport.py``; these tests check behaviour only.
"""

import os
from pathlib import Path
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ElementTree

import pytest

from ros_env import module_domain, PROFILE_PATH, rclpy_context, ros_environment

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

IDLE_NODE = textwrap.dedent("""
    import time
    import rclpy

    rclpy.init()
    node = rclpy.create_node('loopback_test_idle')
    time.sleep(60)
""")


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


def _udp_sockets(pid: int) -> list[tuple[str, int]]:
    """(local address, port) of the IPv4 UDP sockets a process holds, from /proc."""
    inodes = set()
    for fd in os.listdir(f'/proc/{pid}/fd'):
        try:
            target = os.readlink(f'/proc/{pid}/fd/{fd}')
        except OSError:
            continue
        if target.startswith('socket:['):
            inodes.add(target[len('socket:['):-1])
    sockets = []
    with open('/proc/net/udp') as table:
        next(table)
        for line in table:
            fields = line.split()
            if fields[9] in inodes:
                address, port = fields[1].split(':')
                octets = bytes.fromhex(address)[::-1]
                sockets.append(('.'.join(str(octet) for octet in octets), int(port, 16)))
    return sockets


@pytest.mark.skipif(not os.path.isfile('/proc/net/udp'), reason='needs Linux /proc')
def test_rmw_fastrtps_loads_the_profile_and_listens_on_loopback_only():
    # RTPS ports of a domain: 7400 + 250 * domain, + 0 (multicast discovery) .. + 249.
    base = 7400 + 250 * DOMAIN_ID
    process = subprocess.Popen([sys.executable, '-c', IDLE_NODE],
                               env=ros_environment(DOMAIN_ID))
    try:
        deadline = time.monotonic() + 20.0
        rtps = []
        while not rtps and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
            rtps = [entry for entry in _udp_sockets(process.pid)
                    if base <= entry[1] < base + 250]
        assert rtps, 'the node opened no RTPS port'
        # Stock Fast DDS binds 0.0.0.0 and the multicast port; the profile only 127.0.0.1.
        assert all(address == '127.0.0.1' for address, _ in rtps), rtps
        assert base not in {port for _, port in rtps}, 'multicast discovery port opened'
    finally:
        process.kill()
        process.wait()


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
