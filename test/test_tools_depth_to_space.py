"""seg_ros.tools.depth_to_space: DepthToSpace as one-hot ConvTranspose, bit for bit."""

import collections
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

onnx = pytest.importorskip('onnx', reason='an optional tool (pip install onnx), not on a robot')
onnxruntime = pytest.importorskip('onnxruntime', reason='the reference runtime, optional')
helper, numpy_helper, TensorProto = onnx.helper, onnx.numpy_helper, onnx.TensorProto

from seg_ros.tools.depth_to_space import (one_hot_kernels,  # noqa: E402
                                          replace_depth_to_space)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMBEDDED = os.path.join(REPO_ROOT, 'models', 'enet-synth', 'enet-synth.onnx')
SIZES = ((12, 8), (40, 24))


def graph_model(nodes, channels: int, outputs: int, initializers=()) -> onnx.ModelProto:
    """Return a model (1, channels, h, w) -> (1, outputs, H, W) with dynamic H and W."""
    graph = helper.make_graph(
        nodes, 'd2s',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, channels, 'h', 'w'])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, outputs, 'H', 'W'])],
        list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def plain(mode: str, block: int, channels: int) -> onnx.ModelProto:
    """Return a model that is one DepthToSpace on its input."""
    node = helper.make_node('DepthToSpace', ['x'], ['y'], blocksize=block, mode=mode)
    return graph_model([node], channels * block * block, channels)


def concatenated(channels: int) -> onnx.ModelProto:
    """Four scaled copies of the input concatenated, then DepthToSpace DCR: the unpool shape."""
    scales = [numpy_helper.from_array(np.float32(value), f's{k}')
              for k, value in enumerate((1.0, -2.0, 0.5, 3.0))]
    nodes = [helper.make_node('Mul', ['x', f's{k}'], [f'p{k}']) for k in range(4)]
    nodes.append(helper.make_node('Concat', [f'p{k}' for k in range(4)], ['c'], axis=1))
    nodes.append(helper.make_node('DepthToSpace', ['c'], ['y'], blocksize=2, mode='DCR'))
    return graph_model(nodes, channels, channels, scales)


def run_ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=['CPUExecutionProvider'])
    return session.run(None, {'x': x})[0]


def run_opencv(model: onnx.ModelProto, x: np.ndarray, tmp_path) -> np.ndarray:
    path = str(tmp_path / 'rewritten.onnx')
    onnx.save(model, path)
    net = cv2.dnn.readNet(path)
    net.setInput(x)
    return net.forward()


def op_counts(model: onnx.ModelProto) -> collections.Counter:
    return collections.Counter(node.op_type for node in model.graph.node)


@pytest.mark.parametrize('build,channels', [
    (lambda c: plain('DCR', 2, c), 3), (lambda c: plain('CRD', 2, c), 3),
    (lambda c: plain('DCR', 3, c), 2), (lambda c: plain('CRD', 3, c), 2),
    (concatenated, 5)])
def test_rewrite_is_bit_identical_at_every_size(build, channels, tmp_path):
    original = build(channels)
    rewritten = build(channels)
    assert replace_depth_to_space(rewritten) == 1
    onnx.checker.check_model(rewritten)
    assert 'DepthToSpace' not in op_counts(rewritten)
    rng = np.random.default_rng(channels)
    for width, height in SIZES:
        x = rng.normal(size=(1, original.graph.input[0].type.tensor_type.shape.dim[1].dim_value,
                             height, width)).astype(np.float32)
        x[0, 0, 0, :3] = (0.0, -0.0, 1e-30)  # zeros of both signs and a tiny value
        expected = run_ort(original, x)
        np.testing.assert_array_equal(run_ort(rewritten, x), expected)
        np.testing.assert_array_equal(run_opencv(rewritten, x, tmp_path), expected)


def test_unpool_shape_loses_its_concat_and_keeps_the_rest():
    model = concatenated(4)
    replace_depth_to_space(model)
    counts = op_counts(model)
    assert counts['Concat'] == 0 and counts['Mul'] == 4
    assert counts['ConvTranspose'] == 4 and counts['Add'] == 3
    assert [node.output[0] for node in model.graph.node][-1] == 'y'


def test_a_dynamic_channel_count_is_refused_by_name():
    node = helper.make_node('DepthToSpace', ['x'], ['y'], blocksize=2, mode='DCR', name='d2s')
    graph = helper.make_graph(
        [node], 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 'c', 4, 4])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    with pytest.raises(ValueError, match=r"'d2s'.*channel"):
        replace_depth_to_space(model)


def group(node: onnx.NodeProto) -> int:
    return next((helper.get_attribute_value(attr) for attr in node.attribute
                 if attr.name == 'group'), 1)


def test_embedded_model_is_in_the_rewritten_form():
    model = onnx.load(EMBEDDED)
    counts = op_counts(model)
    assert 'DepthToSpace' not in counts
    constants = {node.output[0]: numpy_helper.to_array(node.attribute[0].t)
                 for node in model.graph.node if node.op_type == 'Constant'}
    placements = [(node, group(node)) for node in model.graph.node
                  if node.op_type == 'ConvTranspose' and group(node) > 1]
    # Two unpoolings (64 and 16 channels), 4 window pixels each.
    assert [channels for _, channels in placements] == [64] * 4 + [16] * 4
    for index, (node, channels) in enumerate(placements):
        np.testing.assert_array_equal(constants[node.input[1]],
                                      one_hot_kernels(channels, 2)[index % 4])
    # Rewriting again changes nothing.
    assert replace_depth_to_space(model) == 0


def test_embedded_model_runs_the_same_on_opencv_and_onnxruntime(tmp_path):
    session = onnxruntime.InferenceSession(EMBEDDED, providers=['CPUExecutionProvider'])
    for width, height in ((256, 128), (320, 96)):
        frame = np.random.default_rng(width).integers(0, 256, (height, width, 3), np.uint8)
        blob = cv2.dnn.blobFromImage(frame, 1 / 255, swapRB=True)
        net = cv2.dnn.readNet(EMBEDDED)  # one Net per input size (OpenCV DNN keeps the first)
        net.setInput(blob)
        classes = net.forward().argmax(axis=1)
        reference = session.run(None, {'input': blob})[0].argmax(axis=1)
        assert np.mean(classes == reference) >= 0.999


def test_command_line_rewrites_a_file_and_refuses_a_bad_one(tmp_path):
    source = tmp_path / 'plain.onnx'
    onnx.save(plain('DCR', 2, 3), str(source))
    target = tmp_path / 'out.onnx'
    command = [sys.executable, '-m', 'seg_ros.tools.depth_to_space']
    done = subprocess.run(command + [str(source), '--output', str(target)], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert '1 DepthToSpace node(s) replaced' in done.stdout
    assert 'DepthToSpace' not in op_counts(onnx.load(str(target)))
    (tmp_path / 'bad.onnx').write_bytes(b'not a model')
    refused = subprocess.run(command + [str(tmp_path / 'bad.onnx')], cwd=REPO_ROOT,
                             capture_output=True, text=True, check=False)
    assert refused.returncode == 2
    assert 'Traceback' not in refused.stderr and 'bad.onnx' in refused.stderr
