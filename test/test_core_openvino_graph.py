"""OpenVINO's argmax rewrite (seg_ros.core.backends.openvino_graph): np.argmax's indices."""

from __future__ import annotations

import numpy as np
import pytest

from models import helper, onnx, TensorProto

ov = pytest.importorskip('openvino', reason='OpenVINO is not installed')

from seg_ros.core.backends.openvino_graph import first_max_rewrites  # noqa: E402,I100


def argmax_model(axis: int, keepdims: int, shape: list[int], *, values_too: bool = False,
                 k: int = 1) -> bytes:
    """Return an ONNX model: float input -> ArgMax (or TopK with its values) over ``axis``."""
    scores = helper.make_tensor_value_info('scores', TensorProto.FLOAT, shape)
    if values_too:
        k_name = 'k'
        nodes = [helper.make_node('TopK', ['scores', k_name], ['values', 'indices'], axis=axis)]
        outputs = [helper.make_tensor_value_info('values', TensorProto.FLOAT, None),
                   helper.make_tensor_value_info('indices', TensorProto.INT64, None)]
        initializers = [onnx.numpy_helper.from_array(np.array([k], np.int64), k_name)]
    else:
        nodes = [helper.make_node('ArgMax', ['scores'], ['indices'], axis=axis,
                                  keepdims=keepdims)]
        outputs = [helper.make_tensor_value_info('indices', TensorProto.INT64, None)]
        initializers = []
    graph = helper.make_graph(nodes, 'argmax', [scores], outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 13)])
    model.ir_version = 8
    return model.SerializeToString()


def compiled(model_bytes: bytes, rewrite: bool) -> tuple[object, int]:
    """Return the model compiled on the CPU (rewritten first or not) and the rewrite count."""
    core = ov.Core()
    model = core.read_model(model_bytes, b'')
    count = first_max_rewrites(model) if rewrite else 0
    return core.compile_model(model, 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'}), count


def layer_types(model) -> set[str]:
    """Return the CPU plugin's layer types of a compiled model."""
    return {op.get_rt_info()['layerType'].astype(str)
            for op in model.get_runtime_model().get_ordered_ops()}


def tied_scores(shape: list[int], seed: int) -> np.ndarray:
    """Scores of few distinct values, so that most pixels have ties for the maximum."""
    rng = np.random.default_rng(seed)
    return rng.integers(-3, 3, size=shape).astype(np.float32)


@pytest.mark.parametrize('axis, keepdims', [(1, 0), (1, 1), (3, 0), (-1, 1)])
def test_argmax_rewritten_gives_numpy_s_first_maximum(axis, keepdims):
    shape = [1, 7, 9, 11]
    model, count = compiled(argmax_model(axis, keepdims, shape), rewrite=True)
    assert count == 1
    assert 'TopK' not in layer_types(model) and 'Reduce' in layer_types(model)
    for seed in range(3):
        scores = tied_scores(shape, seed)
        expected = np.argmax(scores, axis=axis)
        if keepdims:
            expected = np.expand_dims(expected, axis)
        result = model({0: scores})[0]
        assert result.dtype == np.int64 and result.shape == expected.shape
        np.testing.assert_array_equal(result, expected)
        assert model.outputs[0].get_names() == {'indices'}


def test_all_nan_pixels_keep_an_index_in_range():
    shape = [1, 5, 4, 4]
    model, _ = compiled(argmax_model(1, 0, shape), rewrite=True)
    scores = tied_scores(shape, 0)
    scores[0, :, 1, 2] = np.nan
    result = model({0: scores})[0]
    assert 0 <= result.min() and result.max() <= 4
    valid = np.ones((4, 4), bool)
    valid[1, 2] = False
    np.testing.assert_array_equal(result[0][valid], np.argmax(scores, axis=1)[0][valid])


@pytest.mark.parametrize('k', [1, 2])
def test_topk_whose_values_are_used_is_left_alone(k):
    shape = [1, 6, 3, 5]
    model_bytes = argmax_model(1, 0, shape, values_too=True, k=k)
    rewritten, count = compiled(model_bytes, rewrite=True)
    plain, _ = compiled(model_bytes, rewrite=False)
    assert count == 0 and 'TopK' in layer_types(rewritten)
    scores = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    for got, want in zip(rewritten({0: scores}).values(), plain({0: scores}).values()):
        np.testing.assert_array_equal(got, want)


def test_dynamic_class_axis_is_left_alone():
    model_bytes = argmax_model(1, 0, [1, 'classes', 4, 4])
    _, count = compiled(model_bytes, rewrite=True)
    assert count == 0
