"""
The segmentation node against malformed ``sensor_msgs/Image`` messages, over real topics.

More than a thousand malformed messages (zero sizes, short rows, wrong data lengths, unknown
and mismatched encodings, a height of 100000 over 1 KB of data, odd-width yuv422, a step
inside a 16-bit element, 32FC1) are interleaved with valid frames (big-endian mono16,
padded rows, 1x1 and 200x3 frames among them).  The node must stay up, give every valid
frame its outputs, count every malformed message in the diagnostics, and log each kind of
fault with a throttled warning that names it.

The node's input is made reliable with a deep queue, and the test waits for each valid
frame's outputs before the next batch, so no message can be lost on the way and the
counters can be compared exactly.
"""


import numpy as np
import pytest

from models import make_frame, make_scores_model
from ros_env import module_domain, rclpy_context
from ros_harness import NodeProcess, Probe, wait_until

DOMAIN_ID = module_domain(61)
NAMESPACE = '/malformed'
NODE = f'{NAMESPACE}/segmentation'
OUTPUTS = ('class_map', 'color_mask', 'overlay')
ROUNDS = 26
MALFORMED_PER_ROUND = 40  # below the node's input depth (100): none can be overwritten
NUM_CLASSES = 3

ros_context = pytest.fixture(scope='module')(rclpy_context(DOMAIN_ID))


def image(encoding: str, width: int, height: int, step: int, data: bytes,
          big_endian: bool = False):
    from sensor_msgs.msg import Image
    return Image(height=height, width=width, encoding=encoding, step=step,
                 is_bigendian=int(big_endian), data=data)


# Each kind: a name, a factory of one malformed message (n varies sizes a little so the
# messages are not all alike) and the words the node's warning for it must contain.
MALFORMED = [
    ('zero width', lambda n: image('bgr8', 0, 4 + n % 3, 0, b''), 'width is 0'),
    ('zero height', lambda n: image('bgr8', 8, 0, 24, b''), 'height is 0'),
    ('zero step', lambda n: image('mono8', 8, 4, 0, bytes(32)), 'step is 0'),
    ('step smaller than a row',
     lambda n: image('bgr8', 8 + n % 4, 4, 10, bytes(40)), 'is smaller than width'),
    ('rgb8 with 1 byte a pixel',
     lambda n: image('rgb8', 16, 4, 16, bytes(64)), 'is smaller than width'),
    ('data shorter than step * height',
     lambda n: image('bgr8', 8, 4, 24, bytes(95 - n % 7)), 'but step * height'),
    ('data longer than step * height',
     lambda n: image('mono8', 8, 4, 8, bytes(33 + n % 5)), 'but step * height'),
    ('declared size far larger than the data',
     lambda n: image('bgr8', 640, 100000, 1920, bytes(1024)), 'but step * height'),
    ('width near 2**32 over no data',
     lambda n: image('mono8', 2 ** 32 - 1, 1, 2 ** 32 - 1, b''), 'but step * height'),
    ('step inside a 16-bit element',
     lambda n: image('mono16', 8, 4, 17, bytes(68)), 'is not a multiple of the 2-byte'),
    ('unknown encoding', lambda n: image('rgb9', 8, 4, 24, bytes(96)), 'is not supported'),
    ('empty encoding', lambda n: image('', 8, 4, 24, bytes(96)), 'is not supported'),
    ('odd width yuv422', lambda n: image('yuv422', 7, 4, 14, bytes(56)), 'is not supported'),
    ('32FC1', lambda n: image('32FC1', 8, 4, 32, bytes(128)), 'is not supported'),
]


def valid_frame(index: int):
    """Return the index-th valid frame: encodings, paddings and sizes the node must accept."""
    kind = index % 5
    if kind == 0:
        pixels = make_frame(64, 48, seed=index)
        return image('bgr8', 64, 48, 64 * 3, pixels.tobytes())
    if kind == 1:
        grey = make_frame(64, 48, seed=index)[:, :, 1].astype('>u2') * 257
        return image('mono16', 64, 48, 128, grey.tobytes(), big_endian=True)
    if kind == 2:
        rows = make_frame(31, 17, seed=index)[:, :, ::-1].reshape(17, -1)
        padded = np.full((17, 31 * 3 + 5), 0xAB, np.uint8)
        padded[:, :31 * 3] = rows
        return image('rgb8', 31, 17, padded.shape[1], padded.tobytes())
    if kind == 3:
        return image('bgra8', 1, 1, 4, bytes([10, 200, 30, 255]))
    return image('mono8', 200, 3, 200, make_frame(200, 3, seed=index)[:, :, 0].tobytes())


@pytest.fixture(scope='module')
def node(tmp_path_factory):
    folder = tmp_path_factory.mktemp('malformed_model')
    model = make_scores_model(str(folder / 'tiny.onnx'), num_classes=NUM_CLASSES, scale=1 / 255)
    args = ['-r', f'__ns:={NAMESPACE}', '-p', f'model_path:={model}',
            '-p', 'input_width:=64', '-p', 'input_height:=48', '-p', 'backend:=opencv',
            '-p', 'input_qos:=reliable', '-p', 'input_depth:=100',
            '-p', 'diagnostics_period:=0.2']
    process = NodeProcess('segmentation_node', args, DOMAIN_ID)
    yield process
    process.finish()


@pytest.fixture(scope='module')
def probe(ros_context, node):
    probe = Probe(ros_context, 'malformed_probe')
    probe.record_outputs(NODE, OUTPUTS)
    probe.record_diagnostics()
    # Deep enough for a whole round: a reliable writer never drops what is still queued.
    probe.image_publisher = probe.camera_publisher(f'{NAMESPACE}/image', depth=1000)
    assert probe.wait_for_subscribers(probe.image_publisher, timeout=60), node.output()
    for output in OUTPUTS:
        assert probe.wait_for_publishers(f'{NODE}/{output}', timeout=30), node.output()
    yield probe
    probe.close()


def outputs_for(probe, stamp_sec: int) -> dict | None:
    found = {}
    for output in OUTPUTS:
        matches = [msg for msg in list(probe.received[f'{NODE}/{output}'])
                   if msg.header.stamp.sec == stamp_sec]
        if not matches:
            return None
        found[output] = matches[-1]
    return found


def latest_values(probe) -> dict[str, str]:
    for array in reversed(list(probe.received['/diagnostics'])):
        for status in array.status:
            if status.name.startswith(NODE + ':'):
                return {pair.key: pair.value for pair in status.values}
    return {}


def test_malformed_images_are_rejected_counted_and_logged(probe, node):
    malformed_sent = 0
    # One of each kind, each waited for: every kind is examined and logged. In the flood
    # that follows, a frame replaced by a newer one before the worker takes it is dropped
    # unexamined (frames arrive serialised; only the one taken is read).
    for index, (name, factory, words) in enumerate(MALFORMED):
        msg = factory(index)
        msg.header.stamp.sec = 1
        probe.image_publisher.publish(msg)
        malformed_sent += 1
        assert wait_until(lambda: words in node.output(), 20), f'no warning for {name}'
    for round_index in range(ROUNDS):
        for n in range(MALFORMED_PER_ROUND):
            _, factory, _ = MALFORMED[(round_index * MALFORMED_PER_ROUND + n) % len(MALFORMED)]
            msg = factory(n)
            msg.header.stamp.sec = 1  # never a valid frame's stamp
            probe.image_publisher.publish(msg)
            malformed_sent += 1
        msg = valid_frame(round_index)
        stamp_sec = 1000 + round_index
        msg.header.stamp.sec = stamp_sec
        msg.header.frame_id = f'valid_{round_index}'
        probe.image_publisher.publish(msg)
        outputs = wait_until(lambda: outputs_for(probe, stamp_sec), 30)
        assert outputs, (f'no outputs for valid frame {round_index} ({msg.encoding} '
                         f'{msg.width}x{msg.height}):\n{node.output()}')
        assert node.alive(), node.output()
        for output in outputs.values():
            assert (output.width, output.height) == (msg.width, msg.height)
            assert output.header.frame_id == msg.header.frame_id
        class_map = np.frombuffer(bytes(outputs['class_map'].data), np.uint8)
        assert class_map.max() < NUM_CLASSES

    assert malformed_sent >= 1000
    sent = malformed_sent + ROUNDS
    values = wait_until(
        lambda: (latest_values(probe) if latest_values(probe).get('frames received') == str(sent)
                 else None), 20)
    assert values, f'diagnostics never counted {sent} frames: {latest_values(probe)}'
    rejected = int(values['frames rejected'])
    dropped = int(values['frames dropped (replaced by newer)'])
    assert rejected + dropped == malformed_sent, values
    assert rejected >= len(MALFORMED)
    assert int(values['frames processed']) == ROUNDS
    assert int(values['processing failures']) == 0
    assert node.alive()

    output = node.output()
    warnings = [line for line in output.splitlines() if 'frame rejected' in line]
    for name, _, words in MALFORMED:
        assert any(words in line for line in warnings), f'no warning for {name}:\n{output}'
    # Throttled: a handful of lines a kind, not one a message.
    assert len(warnings) < malformed_sent / 10, output
    assert all('WARN' in line for line in warnings), warnings
