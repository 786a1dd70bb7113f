"""
An instance model on a stream that alternates between frames with and without detections.

The YOLO-seg-format graph here gives test_core_instance_decoders' detections on a bright frame
and scores of zero (no detection) on a dark one. The real node must give every output for every
frame: class map, colour mask, overlay, the instance map (all zero without detections) and, where
vision_msgs is installed, a ``Detection2DArray`` (empty without detections), each with the
frame's header.
"""

import numpy as np
import pytest

from instance_scenes import FRAME_H, FRAME_W, yolo_constants, YOLO_H, YOLO_W
from models import helper, onnx, TensorProto  # skips the module where onnx is missing
from ros_env import module_domain, rclpy_context, vision_msgs_available
from ros_harness import NodeProcess, Probe, wait_until

numpy_helper = onnx.numpy_helper

DOMAIN_ID = module_domain(29)
NODE = '/alt/segmentation'
OUTPUTS = ('class_map', 'color_mask', 'overlay', 'instance_map')

ros_context = pytest.fixture(scope='module')(rclpy_context(DOMAIN_ID))


def make_gated_yolo_model(path) -> str:
    """output0 = detections with class scores times (mean pixel > 0.5); output1 = prototypes."""
    detections, prototypes = yolo_constants()
    class_rows = np.zeros((1, detections.shape[1], 1), np.float32)
    class_rows[0, 4:detections.shape[1] - 32] = 1.0
    initializers = {'detections': detections.astype(np.float32),
                    'prototypes': prototypes.astype(np.float32), 'class_rows': class_rows,
                    'half': np.array(0.5, np.float32), 'one': np.array(1.0, np.float32),
                    'zero': np.array(0.0, np.float32)}
    nodes = [helper.make_node('ReduceMean', ['images'], ['mean'], keepdims=0),
             helper.make_node('Greater', ['mean', 'half'], ['bright']),
             helper.make_node('Cast', ['bright'], ['gate'], to=TensorProto.FLOAT),
             helper.make_node('Sub', ['gate', 'one'], ['gate_minus_one']),
             helper.make_node('Mul', ['class_rows', 'gate_minus_one'], ['drop']),
             helper.make_node('Add', ['drop', 'one'], ['scale']),
             helper.make_node('Mul', ['detections', 'scale'], ['output0']),
             helper.make_node('Mul', ['mean', 'zero'], ['nothing']),
             helper.make_node('Add', ['prototypes', 'nothing'], ['output1'])]
    graph = helper.make_graph(
        nodes, 'seg_ros_test_gated_yolo',
        [helper.make_tensor_value_info('images', TensorProto.FLOAT, [1, 3, YOLO_H, YOLO_W])],
        [helper.make_tensor_value_info('output0', TensorProto.FLOAT, list(detections.shape)),
         helper.make_tensor_value_info('output1', TensorProto.FLOAT, list(prototypes.shape))],
        [numpy_helper.from_array(value, name) for name, value in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    for key, value in (('task', 'segment'), ('names', str({0: 'a', 1: 'b', 2: 'c'}))):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return str(path)


@pytest.fixture(scope='module')
def node(tmp_path_factory):
    model = make_gated_yolo_model(tmp_path_factory.mktemp('alt_yolo') / 'gated.onnx')
    process = NodeProcess('segmentation_node', [
        '-r', '__ns:=/alt', '-r', 'image:=/alt/camera/image_raw', '-p', f'model_path:={model}',
        '-p', 'input_width:=0', '-p', 'input_height:=0', '-p', 'preset:=unit',
        '-p', 'backend:=onnxruntime'], DOMAIN_ID)
    yield process
    process.finish()


@pytest.fixture(scope='module')
def probe(ros_context, node):
    probe = Probe(ros_context, 'alternating_probe')
    probe.record_outputs(NODE, OUTPUTS)
    if vision_msgs_available():
        from vision_msgs.msg import Detection2DArray
        probe.record_outputs(NODE, ('instances',), Detection2DArray)
    probe.image_publisher = probe.camera_publisher('/alt/camera/image_raw')
    assert probe.wait_for_subscribers(probe.image_publisher, timeout=60), node.output()
    assert probe.wait_for_publishers(f'{NODE}/instance_map', timeout=30), node.output()
    yield probe
    probe.close()


def frame_message(bright: bool, stamp_sec: int):
    from sensor_msgs.msg import Image
    frame = np.full((FRAME_H, FRAME_W, 3), 230 if bright else 20, np.uint8)
    msg = Image(height=FRAME_H, width=FRAME_W, encoding='bgr8', step=FRAME_W * 3,
                data=frame.tobytes())
    msg.header.stamp.sec = stamp_sec
    msg.header.frame_id = f'frame_{stamp_sec}'
    return msg


def outputs_of(probe, topics, stamp_sec: int):
    found = {}
    for topic in topics:
        matches = [msg for msg in list(probe.received[f'{NODE}/{topic}'])
                   if msg.header.stamp.sec == stamp_sec]
        if not matches:
            return None
        found[topic] = matches[-1]
    return found


def test_every_frame_gives_every_output_with_and_without_detections(probe, node):
    topics = list(OUTPUTS) + (['instances'] if vision_msgs_available() else [])
    counts = []
    for index in range(8):
        bright = index % 2 == 0
        stamp = 300 + index
        msg = frame_message(bright, stamp)

        def arrived():
            probe.image_publisher.publish(msg)
            return wait_until(lambda: outputs_of(probe, topics, stamp), 0.5)
        messages = wait_until(arrived, 30)
        assert messages, f'frame {index} ({"bright" if bright else "dark"}):\n{node.output()}'
        for message in messages.values():
            assert message.header.frame_id == f'frame_{stamp}'
        ids = np.frombuffer(bytes(messages['instance_map'].data), '<u2')
        assert ids.size == FRAME_W * FRAME_H
        counts.append(len(set(np.unique(ids)) - {0}))  # instances that show in the map
        if 'instances' in messages:  # those the map shows, and the ones others cover
            assert len(messages['instances'].detections) >= counts[-1]
            assert bool(messages['instances'].detections) == bool(counts[-1])
        for name in ('class_map', 'color_mask', 'overlay'):
            assert (messages[name].width, messages[name].height) == (FRAME_W, FRAME_H)
    assert all(count > 0 for count in counts[0::2]), counts
    assert all(count == 0 for count in counts[1::2]), counts
    assert 'processing failed' not in node.output()
