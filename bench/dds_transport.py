"""
Image transport over Fast DDS on one machine: stock settings against the loopback profile.

A publisher process sends sensor_msgs/Image (bgr8) at 640x480, 1280x720 and 1920x1080 at
30 Hz, best effort and reliable (keep last 1, as the camera and the segmentation node do), to
a subscriber process.  For each DDS configuration it prints the share of frames delivered and
the latency (receive time minus header stamp, both from this machine's clock) p50 / p99:

* ``stock``: Fast DDS defaults with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST;
* ``profile``: ``config/fastdds_loopback.xml`` (64 MiB shared memory, UDP on 127.0.0.1);
* ``profile+glibc``: the profile plus GLIBC_TUNABLES that keep big buffers off ``mmap``.

``--check-loopback`` instead runs one short profile exchange while it lists the processes'
UDP sockets (``ss -uanp``) and captures every non-loopback interface for RTPS packets (needs
CAP_NET_RAW), to show that nothing leaves the machine.

Usage: ``.venv/bin/python bench/dds_transport.py [--seconds 3] [--domain 47]``.
Domain ids: ``--domain`` and the next two (one per configuration).
"""

import argparse
import json
from pathlib import Path
import select
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'test'))

from ros_env import ros_environment  # noqa: E402  (test/ is not a package)

SIZES = ((640, 480), (1280, 720), (1920, 1080))
RELIABILITIES = ('best_effort', 'reliable')
CONFIGS = {
    'stock': {'loopback_profile': False, 'glibc_tunables': False},
    'profile': {'loopback_profile': True, 'glibc_tunables': False},
    'profile+glibc': {'loopback_profile': True, 'glibc_tunables': True},
}
WARMUP_FRAMES = 10
ETH_P_ALL = 0x0003


def case_topic(width: int, height: int, reliability: str) -> str:
    """
    Name the topic of one (size, reliability) case.

    :param width: image width.
    :param height: image height.
    :param reliability: best_effort or reliable.
    :return: the topic name.
    """
    return f'bench_{width}x{height}_{reliability}'


def image_qos(reliability: str):
    """
    Return the keep-last-1 QoS profile of one case (volatile, like a camera driver).

    :param reliability: best_effort or reliable.
    :return: an rclpy QoSProfile.
    """
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    policy = (ReliabilityPolicy.BEST_EFFORT if reliability == 'best_effort'
              else ReliabilityPolicy.RELIABLE)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=policy)


def run_subscriber() -> None:
    """Subscribe to every case; on 'stop' from stdin, print the latencies as JSON."""
    import rclpy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node('dds_transport_sub')
    received = {}

    def make_callback(topic):
        def on_image(msg):
            now = time.time()
            stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            received.setdefault(topic, {})[msg.header.frame_id] = now - stamp
        return on_image

    for width, height in SIZES:
        for reliability in RELIABILITIES:
            topic = case_topic(width, height, reliability)
            node.create_subscription(Image, topic, make_callback(topic), image_qos(reliability))
    stop = threading.Event()

    def wait_for_stop():
        sys.stdin.readline()
        stop.set()

    threading.Thread(target=wait_for_stop, daemon=True).start()
    print('ready', flush=True)
    while not stop.is_set():
        rclpy.spin_once(node, timeout_sec=0.05)
    print(json.dumps(received), flush=True)
    node.destroy_node()
    rclpy.shutdown()


def run_publisher(seconds: float, rate: float) -> None:
    """
    Publish every case in turn; print the number of counted frames sent as JSON.

    :param seconds: measured duration of each case.
    :param rate: frames per second.
    """
    import numpy as np
    import rclpy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node('dds_transport_pub')
    sent = {}
    for width, height in SIZES:
        for reliability in RELIABILITIES:
            topic = case_topic(width, height, reliability)
            publisher = node.create_publisher(Image, topic, image_qos(reliability))
            deadline = time.monotonic() + 15.0
            while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            # The reader side may match a little after the writer side.
            time.sleep(0.5)
            msg = Image(height=height, width=width, encoding='bgr8', step=width * 3)
            pixels = np.random.default_rng(width).integers(0, 255, (height, width, 3), np.uint8)
            msg.data = pixels.tobytes()
            count = int(seconds * rate)
            start = time.monotonic()
            for index in range(WARMUP_FRAMES + count):
                time.sleep(max(0.0, start + index / rate - time.monotonic()))
                msg.header.frame_id = ('w' if index < WARMUP_FRAMES else '') + str(index)
                now = time.time_ns()
                msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now, 1_000_000_000)
                publisher.publish(msg)
            sent[topic] = count
            time.sleep(0.5)
            node.destroy_publisher(publisher)
    print(json.dumps(sent), flush=True)
    node.destroy_node()
    rclpy.shutdown()


def start_role(role: str, environment: dict, extra=()) -> subprocess.Popen:
    """
    Start this script in a publisher or subscriber role.

    :param role: pub or sub.
    :param environment: the process environment.
    :param extra: further command line arguments.
    :return: the process, with piped stdin and stdout.
    """
    return subprocess.Popen(
        [sys.executable, __file__, '--role', role, *extra], env=environment,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def exchange(environment: dict, seconds: float, rate: float, during=None):
    """
    Run one subscriber and one publisher process to the end.

    :param environment: the environment of both processes.
    :param seconds: measured duration of each case.
    :param rate: frames per second.
    :param during: optional callable(pids) run while the publisher publishes.
    :return: (sent counts, received latencies) as decoded from the two processes.
    """
    subscriber = start_role('sub', environment)
    try:
        ready, _, _ = select.select([subscriber.stdout], [], [], 30.0)
        if not ready or subscriber.stdout.readline().strip() != 'ready':
            raise RuntimeError('the subscriber did not start')
        publisher = start_role('pub', environment, ['--seconds', str(seconds),
                                                    '--rate', str(rate)])
        if during is not None:
            time.sleep(2.0)
            during([subscriber.pid, publisher.pid])
        sent = json.loads(publisher.communicate(timeout=600)[0].strip().splitlines()[-1])
        received = json.loads(subscriber.communicate('stop\n', timeout=60)[0].splitlines()[-1])
    finally:
        for process in (subscriber,):
            if process.poll() is None:
                process.kill()
    return sent, received


def percentile(values, fraction: float) -> float:
    """
    Return the nearest-rank percentile of ``values``.

    :param values: the samples.
    :param fraction: 0-1.
    :return: the percentile, or NaN without samples.
    """
    if not values:
        return float('nan')
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def report(rows) -> str:
    """
    Format the result table.

    :param rows: (config, size, reliability, delivered %, p50 ms, p99 ms) tuples.
    :return: the table as text.
    """
    lines = [f'{"config":<14} {"size":>9} {"reliability":<12} {"delivered":>9} '
             f'{"p50 ms":>8} {"p99 ms":>8}']
    for config, size, reliability, delivered, p50, p99 in rows:
        lines.append(f'{config:<14} {size:>9} {reliability:<12} {delivered:>8.1f}% '
                     f'{p50:>8.2f} {p99:>8.2f}')
    return '\n'.join(lines)


def benchmark(arguments) -> None:
    """
    Measure every configuration and print the table.

    :param arguments: the parsed command line.
    """
    rows = []
    for offset, config in enumerate(arguments.configs):
        environment = ros_environment(arguments.domain + offset,
                                      discovery_range=arguments.discovery_range,
                                      **CONFIGS[config])
        sent, received = exchange(environment, arguments.seconds, arguments.rate)
        for width, height in SIZES:
            for reliability in RELIABILITIES:
                topic = case_topic(width, height, reliability)
                counted = [latency for frame, latency in received.get(topic, {}).items()
                           if not frame.startswith('w')]
                delivered = 100.0 * len(counted) / max(1, sent.get(topic, 0))
                milliseconds = [1000.0 * latency for latency in counted]
                rows.append((config, f'{width}x{height}', reliability, delivered,
                             statistics.median(milliseconds) if milliseconds else float('nan'),
                             percentile(milliseconds, 0.99)))
        print(report(rows[-len(SIZES) * len(RELIABILITIES):]), flush=True)
    print()
    print(f'{arguments.seconds:g} s at {arguments.rate:g} Hz a case, keep last 1, '
          f'ROS_AUTOMATIC_DISCOVERY_RANGE={arguments.discovery_range or "auto"}')
    print(report(rows))


def sniff_rtps(interfaces, stop: threading.Event, found: list, counts: dict) -> None:
    """
    Capture the interfaces and record every UDP datagram that carries RTPS.

    :param interfaces: interface names (never lo).
    :param stop: set to end the capture.
    :param found: receives 'interface: source -> destination:port' strings.
    :param counts: receives the number of frames of any kind seen on each interface.
    """
    sockets = []
    for name in interfaces:
        capture = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        try:
            capture.bind((name, 0))
        except OSError:
            capture.close()
            continue
        capture.setblocking(False)
        sockets.append((capture, name))
    names = dict(sockets)
    while not stop.is_set():
        ready, _, _ = select.select([s for s, _ in sockets], [], [], 0.1)
        for capture in ready:
            try:
                frame = capture.recv(65535)
            except OSError:
                continue
            name = names[capture]
            counts[name] = counts.get(name, 0) + 1
            # Ethernet II, IPv4, UDP: the RTPS header starts after the UDP header.
            if len(frame) < 42 or frame[12:14] != b'\x08\x00' or frame[23] != 17:
                continue
            header = (frame[14] & 0x0F) * 4
            payload = frame[14 + header + 8:]
            if payload.startswith(b'RTPS'):
                source = socket.inet_ntoa(frame[26:30])
                destination = socket.inet_ntoa(frame[30:34])
                port = int.from_bytes(frame[14 + header + 2:14 + header + 4], 'big')
                found.append(f'{name}: {source} -> {destination}:{port}')
    for capture, _ in sockets:
        capture.close()


def check_loopback(arguments) -> None:
    """
    Show the UDP sockets of a profile exchange and capture non-loopback RTPS traffic.

    :param arguments: the parsed command line.
    """
    # if_nameindex() lists this network namespace's interfaces (/sys/class/net may not).
    interfaces = [name for _, name in socket.if_nameindex() if name != 'lo']
    stop = threading.Event()
    found = []
    counts = {}
    sniffer = threading.Thread(target=sniff_rtps, args=(interfaces, stop, found, counts))
    sniffer.start()
    config = arguments.configs[-1]

    def show_sockets(pids):
        listing = subprocess.run(['ss', '-uanp'], capture_output=True, text=True).stdout
        print(f'UDP sockets of the subscriber and publisher (pids {pids}):')
        for line in listing.splitlines():
            if any(f'pid={pid},' in line for pid in pids):
                print('  ' + ' '.join(line.split()[3:5]) + '  ' + line.split()[-1][:40])

    try:
        environment = ros_environment(arguments.domain, discovery_range=arguments.discovery_range,
                                      **CONFIGS[config])
        exchange(environment, arguments.seconds, arguments.rate, during=show_sockets)
    finally:
        stop.set()
        sniffer.join()
    print(f'config {config}, ROS_AUTOMATIC_DISCOVERY_RANGE={arguments.discovery_range or "auto"}; '
          f'RTPS packets seen on {", ".join(sorted(counts)) or "no interface"}: {len(found)} '
          f'(frames of any kind captured: {counts})')
    for line in sorted(set(found))[:20]:
        print('  ' + line)


def main() -> None:
    """Parse the command line and run a role, the benchmark or the loopback check."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--role', choices=('pub', 'sub'), help=argparse.SUPPRESS)
    parser.add_argument('--seconds', type=float, default=3.0, help='measured seconds a case')
    parser.add_argument('--rate', type=float, default=30.0, help='frames per second')
    parser.add_argument('--domain', type=int, default=47,
                        help='ROS_DOMAIN_ID of the first configuration (then +1, +2)')
    parser.add_argument('--configs', type=lambda text: text.split(','),
                        default=list(CONFIGS), help='comma-separated: ' + ', '.join(CONFIGS))
    parser.add_argument('--discovery-range', default=None,
                        choices=('LOCALHOST', 'SYSTEM_DEFAULT'),
                        help='ROS_AUTOMATIC_DISCOVERY_RANGE of every configuration (default: '
                             'SYSTEM_DEFAULT with the profile, LOCALHOST for stock)')
    parser.add_argument('--check-loopback', action='store_true',
                        help='list sockets and capture non-loopback RTPS during one exchange '
                             'with the last of --configs')
    arguments = parser.parse_args()
    if arguments.role == 'sub':
        run_subscriber()
    elif arguments.role == 'pub':
        run_publisher(arguments.seconds, arguments.rate)
    elif arguments.check_loopback:
        check_loopback(arguments)
    else:
        unknown = set(arguments.configs) - set(CONFIGS)
        if unknown:
            parser.error('unknown configuration: ' + ', '.join(sorted(unknown)))
        benchmark(arguments)


if __name__ == '__main__':
    main()
