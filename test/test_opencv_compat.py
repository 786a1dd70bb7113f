"""seg_ros.tools.opencv_compat: the Equal and Sub(C, x) rewrites for OpenCV 4.5.4, exactly."""

import collections
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

onnx = pytest.importorskip('onnx', reason='an optional tool (pip install onnx), not on a robot')
helper, numpy_helper, TensorProto = onnx.helper, onnx.numpy_helper, onnx.TensorProto

from seg_ros.tools.opencv_compat import (make_opencv_compatible,  # noqa: E402
                                         replace_constant_minuend, replace_max_equal,
                                         zero_test)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMBEDDED = os.path.join(REPO_ROOT, 'models', 'enet-synth', 'enet-synth.onnx')
F32 = np.float32
SMALLEST = np.nextafter(F32(0), F32(1))  # the smallest subnormal, 2**-149
TINY = np.finfo(F32).tiny  # the smallest normal, 2**-126
LARGEST = np.finfo(F32).max


def equal_reference(x: np.ndarray, maximum: np.ndarray) -> np.ndarray:
    """Return what ``Cast(Equal(x, M), FLOAT)`` gives: IEEE equality (-0 == +0) as +1.0 / +0.0."""
    return (np.asarray(x, F32) == np.asarray(maximum, F32)).astype(F32)


def assert_identical(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal values and equal signs of zero (assert_array_equal takes -0.0 == +0.0)."""
    np.testing.assert_array_equal(actual, expected)
    np.testing.assert_array_equal(np.signbit(actual), np.signbit(expected))


def test_zero_test_is_equality_on_random_values():
    rng = np.random.default_rng(27)
    shape = (4, 100_000)
    # Magnitudes from 1e-37 to 1e37, both signs, and a quarter of the entries tied.
    values = (rng.standard_normal(shape) * 10.0 ** rng.uniform(-37, 37, shape)).astype(F32)
    values[:, rng.random(shape[1]) < 0.25] = values[0, 0]
    x = values[0]
    maximum = values.max(axis=0)
    # Some maxima one step above x: the nearest value that is not equal.
    near = rng.random(shape[1]) < 0.1
    maximum[near] = np.nextafter(x[near], F32(np.inf))
    expected = equal_reference(x, maximum)
    assert 0.2 < expected.mean() < 0.6
    assert_identical(zero_test(x, maximum), expected)


@pytest.mark.parametrize('x,maximum', [
    # equal values, zeros of both signs
    (0.0, 0.0), (-0.0, 0.0), (0.0, -0.0), (-0.0, -0.0), (1.0, 1.0), (-7.5, -7.5),
    (LARGEST, LARGEST), (-LARGEST, -LARGEST), (TINY, TINY), (SMALLEST, SMALLEST),
    # one step apart, at every scale
    (1.0, np.nextafter(F32(1), F32(2))), (-SMALLEST, 0.0), (0.0, SMALLEST),
    (SMALLEST, 2 * SMALLEST), (TINY - SMALLEST, TINY), (TINY, TINY + SMALLEST),
    (1.5 * TINY, 1.5 * TINY + SMALLEST), (2 ** -103, 2 ** -103 + 2 ** -126),
    (np.nextafter(LARGEST, F32(0)), LARGEST),
    # far apart: x - M overflows to -inf
    (-LARGEST, LARGEST), (-3e38, 3e38), (-1.0, 1e30), (1e-30, 1e30)])
def test_zero_test_is_equality_on_edge_values(x, maximum):
    x, maximum = F32(x), F32(maximum)
    assert x <= maximum
    assert_identical(zero_test(x, maximum), equal_reference(x, maximum))


def graph_model(nodes, outputs: int, initializers=()) -> onnx.ModelProto:
    """Return a model (1, 4, h, w) -> (1, outputs, h, w) with dynamic h and w."""
    graph = helper.make_graph(
        nodes, 'compat',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 4, 'h', 'w'])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, outputs, 'h', 'w'])],
        list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def channel_slices() -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes splitting ``x`` into its channels ``a``, ``b``, ``c``, ``d`` (Slice, as torch)."""
    bounds = [numpy_helper.from_array(np.array([k], np.int64), f'k{k}') for k in range(5)]
    nodes = [helper.make_node('Slice', ['x', f'k{k}', f'k{k + 1}', 'k1'], [name])
             for k, name in enumerate('abcd')]
    return nodes, bounds


def unpool_like() -> onnx.ModelProto:
    """
    Masks of a window's maximum as the unpooling exports them, and ``C - x``.

    ``y`` = [a == max(a, b, c, d), c == max(...) (operands swapped), b == max(a, b),
    1 - a (initializer), 0.25 - b (Constant node)].
    """
    nodes, initializers = channel_slices()
    initializers.append(numpy_helper.from_array(np.array(1.0, F32), 'one'))
    nodes += [
        helper.make_node('Max', ['a', 'b'], ['ab']),
        helper.make_node('Max', ['c', 'd'], ['cd']),
        helper.make_node('Max', ['ab', 'cd'], ['m']),
        helper.make_node('Equal', ['a', 'm'], ['e1']),
        helper.make_node('Equal', ['m', 'c'], ['e2']),
        helper.make_node('Equal', ['b', 'ab'], ['e3']),
        helper.make_node('Constant', [], ['quarter'],
                         value=numpy_helper.from_array(np.array([0.25], F32), 'quarter')),
        helper.make_node('Sub', ['one', 'a'], ['y4']),
        helper.make_node('Sub', ['quarter', 'b'], ['y5'])]
    nodes += [helper.make_node('Cast', [f'e{k}'], [f'y{k}'], to=TensorProto.FLOAT)
              for k in (1, 2, 3)]
    nodes.append(helper.make_node('Concat', [f'y{k}' for k in range(1, 6)], ['y'], axis=1))
    return graph_model(nodes, 5, initializers)


def unpool_like_reference(x: np.ndarray) -> np.ndarray:
    a, b, c, d = (x[:, k:k + 1] for k in range(4))
    maximum = np.maximum(np.maximum(a, b), np.maximum(c, d))
    return np.concatenate([equal_reference(a, maximum), equal_reference(c, maximum),
                           equal_reference(b, np.maximum(a, b)), F32(1) - a,
                           F32(0.25) - b], axis=1)


def run_model(runtime: str, model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """Run ``model`` on one runtime (OpenVINO in f32); skip the test where it is missing."""
    if runtime == 'opencv':
        net = cv2.dnn.readNetFromONNX(np.frombuffer(model.SerializeToString(), np.uint8))
        net.setInput(x)
        return net.forward()
    if runtime == 'onnxruntime':
        onnxruntime = pytest.importorskip('onnxruntime', reason='an optional runtime')
        session = onnxruntime.InferenceSession(model.SerializeToString(),
                                               providers=['CPUExecutionProvider'])
        return session.run(None, {'x': x})[0]
    openvino = pytest.importorskip('openvino', reason='an optional runtime')
    core = openvino.Core()
    core.set_property('CPU', {'INFERENCE_PRECISION_HINT': 'f32'})
    compiled = core.compile_model(core.read_model(model.SerializeToString(), b''), 'CPU')
    return np.asarray(compiled(x)[0])


def window_values(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(1, 4, h, w) values with many ties, zeros of both signs, large and small magnitudes."""
    x = (rng.integers(-3, 4, (1, 4, height, width)) * 0.5).astype(F32)
    x[x == 0] = np.where(rng.random(np.count_nonzero(x == 0)) < 0.5, F32(0), F32(-0.0))
    spread = rng.random(x.shape) < 0.3
    x[spread] = (rng.standard_normal(np.count_nonzero(spread))
                 * 10.0 ** rng.uniform(-20, 30, np.count_nonzero(spread))).astype(F32)
    x[0, :, 0, 0] = (-3e38, 3e38, 3e38, 1.0)  # a - max overflows; a tie at 3e38
    return x


@pytest.mark.parametrize('runtime', ['opencv', 'onnxruntime', 'openvino'])
def test_rewritten_graph_gives_the_reference_on_every_runtime(runtime):
    original = unpool_like()
    rewritten = unpool_like()
    counts = make_opencv_compatible(rewritten)
    onnx.checker.check_model(rewritten)
    assert counts == {'depth_to_space': 0, 'equal': 3, 'equal_left': 0, 'sub': 2}
    ops = collections.Counter(node.op_type for node in rewritten.graph.node)
    assert 'Equal' not in ops and 'Cast' not in ops
    # Every Sub left is between two tensors: none has a constant first operand.
    constants = {node.output[0] for node in rewritten.graph.node if node.op_type == 'Constant'}
    constants |= {tensor.name for tensor in rewritten.graph.initializer}
    assert not [node for node in rewritten.graph.node
                if node.op_type == 'Sub' and node.input[0] in constants]
    rng = np.random.default_rng(5)
    for height, width in ((6, 10), (32, 48)):
        x = window_values(rng, height, width)
        expected = unpool_like_reference(x)
        assert_identical(run_model(runtime, rewritten, x), expected)
        if runtime != 'opencv':  # OpenCV's own import of Equal is what the rewrite replaces
            assert_identical(run_model(runtime, original, x), expected)


def test_another_equal_is_left_and_counted():
    nodes, initializers = channel_slices()
    nodes += [
        helper.make_node('Max', ['a', 'b'], ['ab']),
        helper.make_node('Equal', ['a', 'b'], ['e1']),  # no Max of its operand
        helper.make_node('Equal', ['c', 'ab'], ['e2']),  # c is not one of the Max's inputs
        helper.make_node('Equal', ['a', 'ab'], ['e3']),  # cast to int64, not float
        helper.make_node('Cast', ['e1'], ['y1'], to=TensorProto.FLOAT),
        helper.make_node('Cast', ['e2'], ['y2'], to=TensorProto.FLOAT),
        helper.make_node('Cast', ['e3'], ['i3'], to=TensorProto.INT64),
        helper.make_node('Cast', ['i3'], ['y3'], to=TensorProto.FLOAT),
        helper.make_node('Sub', ['a', 'b'], ['y4']),  # no constant: stays
        helper.make_node('Concat', ['y1', 'y2', 'y3', 'y4'], ['y'], axis=1)]
    model = graph_model(nodes, 4, initializers)
    before = model.SerializeToString()
    assert replace_max_equal(model) == (0, 3)
    assert replace_constant_minuend(model) == 0
    assert model.SerializeToString() == before


def test_embedded_model_is_in_the_opencv_454_form():
    model = onnx.load(EMBEDDED)
    ops = collections.Counter(node.op_type for node in model.graph.node)
    assert 'DepthToSpace' not in ops and 'Equal' not in ops
    # Rewriting it again changes nothing.
    before = model.SerializeToString()
    assert make_opencv_compatible(model) == {'depth_to_space': 0, 'equal': 0, 'equal_left': 0,
                                             'sub': 0}
    assert model.SerializeToString() == before


def test_command_line_rewrites_a_file_and_refuses_a_bad_one(tmp_path):
    source = tmp_path / 'unpool.onnx'
    onnx.save(unpool_like(), str(source))
    target = tmp_path / 'out.onnx'
    command = [sys.executable, '-m', 'seg_ros.tools.opencv_compat']
    done = subprocess.run(command + [str(source), '--output', str(target)], cwd=REPO_ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert '0 DepthToSpace, 3 Equal and 2 Sub(constant, x) node(s) replaced' in done.stdout
    assert 'Equal' not in {node.op_type for node in onnx.load(str(target)).graph.node}
    (tmp_path / 'bad.onnx').write_bytes(b'not a model')
    refused = subprocess.run(command + [str(tmp_path / 'bad.onnx')], cwd=REPO_ROOT,
                             capture_output=True, text=True, check=False)
    assert refused.returncode == 2
    assert 'Traceback' not in refused.stderr and 'bad.onnx' in refused.stderr
