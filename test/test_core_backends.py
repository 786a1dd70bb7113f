"""Tests of seg_ros.core.backends on real runtimes with the tiny models of test/models.py."""

import os
import threading

import cv2
import numpy as np
import pytest

from models import (ambiguous_pixels, bilinear_resize, expected_class_map, make_frame,
                    make_fused_model, make_scores_model, reference_scores)
from runtimes import INSTALLED, ONNX_RUNTIMES, runtimes_or_skip
from seg_ros.core.backends import (class_map_from_scores, cuda_problems,
                                   DEFAULT_INPUT_SIZE, inspect_model, ModelDescription,
                                   open_backend, ort_providers, Preprocess, tensorrt_cache_dir)
from seg_ros.core.errors import ModelError

WIDTH, HEIGHT = 64, 32


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp('models')


@pytest.fixture(scope='module')
def scores_model(model_dir) -> str:
    return make_scores_model(model_dir / 'scores.onnx', 5)


@pytest.fixture(scope='module')
def fused_model(model_dir) -> str:
    return make_fused_model(model_dir / 'fused.onnx', 5)


def open_with_notes(*args, **kwargs):
    opened = open_backend(*args, **kwargs)
    return opened, opened.notes


def no_cuda_anywhere() -> bool:
    return all(problem is not None for problem in cuda_problems().values())


# --- the argmax -------------------------------------------------------------------------------

def test_class_map_from_scores_equals_numpy_argmax_with_ties():
    rng = np.random.default_rng(5)
    scores = rng.standard_normal((1, 20, 31, 47)).astype(np.float32)
    scores[0, 7] = scores[0, 3]            # exact ties: the lower id must win
    scores[0, 19, :5] = scores[0, :, :5].max(axis=0)
    scores[0, :, 10] = 0.0                 # a row where every class ties: class 0
    expected = np.argmax(scores[0], axis=0).astype(np.uint8)
    class_map = class_map_from_scores(scores)
    assert class_map.dtype == np.uint8 and class_map.shape == (31, 47)
    np.testing.assert_array_equal(class_map, expected)
    assert (class_map[10] == 0).all()
    np.testing.assert_array_equal(class_map_from_scores(scores[0].astype(np.float16)),
                                  np.argmax(scores[0].astype(np.float16), axis=0))


def test_class_map_from_scores_handles_256_classes():
    rng = np.random.default_rng(6)
    scores = rng.standard_normal((256, 9, 11)).astype(np.float32)
    np.testing.assert_array_equal(class_map_from_scores(scores), np.argmax(scores, axis=0))


# --- scores models on every installed backend -----------------------------------------------

@pytest.mark.parametrize('backend', INSTALLED)
@pytest.mark.parametrize('static', [False, True])
def test_scores_model_matches_the_numpy_reference(model_dir, backend, static):
    size = {'width': WIDTH, 'height': HEIGHT} if static else {}
    path = make_scores_model(model_dir / f'scores_{static}.onnx', 5, tie=True, **size)
    opened, notes = open_with_notes(path, Preprocess(WIDTH, HEIGHT, scale=1.0), backend, 'cpu')
    assert opened.name == backend and opened.num_classes == 5 and opened.kind == 'scores'
    assert opened.describe().startswith(backend)
    for seed, frame_size in ((0, (WIDTH, HEIGHT)), (1, (101, 77))):
        frame = make_frame(*frame_size, seed=seed)
        expected = expected_class_map(frame, 5, width=WIDTH, height=HEIGHT, tie=True)
        assert set(np.unique(expected)) == {0, 1, 2, 3}  # class 4 ties with 0 and never wins
        class_map = opened.infer(frame)
        assert class_map.shape == (HEIGHT, WIDTH) and class_map.dtype == np.uint8
        np.testing.assert_array_equal(class_map, expected)


@pytest.mark.parametrize('backend', INSTALLED)
def test_threads_sharing_one_backend_get_the_answers_of_one_at_a_time(scores_model, backend):
    """The workers of one process share a backend: concurrent calls equal serial ones."""
    opened = open_backend(scores_model, Preprocess(WIDTH, HEIGHT, scale=1.0), backend, 'cpu')
    frames = [make_frame(WIDTH, HEIGHT, seed=seed) for seed in range(8)]
    serial = [opened.infer(frame) for frame in frames]
    if backend == 'openvino':  # one thread at a time (warm-up, then a worker): one request
        assert len(opened._idle_requests) == 1
    results: dict[tuple[int, int], np.ndarray] = {}
    stages: list[dict] = []

    def work(worker: int) -> None:
        for round_index in range(5):
            for index, frame in enumerate(frames):
                results[worker, round_index * len(frames) + index] = opened.infer(frame)
        stages.append(opened.last_stages)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 3 * 5 * len(frames)
    for (_, index), class_map in results.items():
        assert np.array_equal(class_map, serial[index % len(frames)]), (backend, index)
    # Each thread reads the stage times of its own last call.
    assert len(stages) == 3 and all(set(value) == {'prepare', 'network', 'decode'}
                                    for value in stages)
    if backend == 'openvino':  # at most one request a call that was in flight at once
        assert 1 <= len(opened._idle_requests) <= 3


@pytest.mark.parametrize('backend', INSTALLED)
def test_preprocess_mean_swap_and_rgb_frames(scores_model, backend):
    frame = make_frame(80, 40, seed=2)
    mean = (10.0, 50.0, 90.0)
    for swap_rb in (True, False):
        opened = open_backend(scores_model, Preprocess(WIDTH, HEIGHT, 1.0, mean, swap_rb),
                              backend, 'cpu')
        expected = expected_class_map(frame, 5, width=WIDTH, height=HEIGHT, mean=mean,
                                      swap_rb=swap_rb)
        np.testing.assert_array_equal(opened.infer(frame), expected)
        # The same picture as RGB must give the same classes.
        np.testing.assert_array_equal(opened.infer(frame[:, :, ::-1].copy(), 'rgb8'), expected)


@pytest.mark.parametrize('backend', INSTALLED)
def test_scaled_input_matches_the_reference_except_near_ties(model_dir, backend):
    scale = 1 / 255
    path = make_scores_model(model_dir / 'scaled.onnx', 8, scale=scale)
    opened = open_backend(path, Preprocess(WIDTH, HEIGHT, scale), backend, 'cpu')
    frame = make_frame(WIDTH, HEIGHT, seed=3)
    scores = reference_scores(frame, 8, width=WIDTH, height=HEIGHT, scale=scale)
    expected = np.argmax(scores, axis=0)
    assert len(np.unique(expected)) >= 6
    differs = opened.infer(frame) != expected
    assert not (differs & ~ambiguous_pixels(scores, 1e-3)).any()


@pytest.mark.parametrize('backend', INSTALLED)
def test_low_resolution_output_is_upsampled_to_the_input_size(model_dir, backend):
    path = make_scores_model(model_dir / 'strided.onnx', 4, stride=2)
    frame = make_frame(WIDTH, HEIGHT, seed=4)
    # nearest: the argmax at the output size, each class repeated over its 2x2 input pixels.
    opened = open_backend(path, {'input_width': WIDTH, 'input_height': HEIGHT,
                                 'rescale_factor': 1.0, 'upsample': 'nearest'}, backend, 'cpu')
    expected = expected_class_map(frame, 4, width=WIDTH, height=HEIGHT, stride=2)
    np.testing.assert_array_equal(opened.infer(frame), expected)
    # bilinear (the default): the scores resized to the input size, then the argmax.
    opened = open_backend(path, Preprocess(WIDTH, HEIGHT, scale=1.0), backend, 'cpu')
    scores = bilinear_resize(reference_scores(frame, 4, width=WIDTH, height=HEIGHT, stride=2),
                             WIDTH, HEIGHT)
    differs = opened.infer(frame) != np.argmax(scores, axis=0)
    assert not (differs & ~ambiguous_pixels(scores, 1e-2)).any()
    assert (np.argmax(scores, axis=0) != expected).mean() > 0.01  # the two really differ


@pytest.mark.parametrize('backend', INSTALLED)
def test_grey_frames_are_fed_as_three_equal_channels(scores_model, backend):
    opened = open_backend(scores_model, Preprocess(WIDTH, HEIGHT, scale=1.0), backend, 'cpu')
    grey = make_frame(WIDTH, HEIGHT, seed=5)[:, :, 1].copy()
    expected = expected_class_map(cv2.merge((grey, grey, grey)), 5, width=WIDTH, height=HEIGHT)
    np.testing.assert_array_equal(opened.infer(grey), expected)


# --- fused models -----------------------------------------------------------------------------

@pytest.mark.parametrize('backend', INSTALLED)
@pytest.mark.parametrize('output_dtype', [np.uint8, np.int64])
def test_fused_model_matches_the_numpy_reference(model_dir, backend, output_dtype):
    path = make_fused_model(model_dir / f'fused_{np.dtype(output_dtype).name}.onnx', 5,
                            output_dtype=output_dtype, tie=True)
    opened, notes = open_with_notes(path, Preprocess(WIDTH, HEIGHT), backend, 'cpu')
    assert opened.kind == 'fused' and opened.num_classes == 5
    assert any('fused model' in note for note in notes)
    frame = make_frame(90, 50, seed=6)
    expected = expected_class_map(frame, 5, width=WIDTH, height=HEIGHT, fused=True, tie=True)
    np.testing.assert_array_equal(opened.infer(frame), expected)
    np.testing.assert_array_equal(opened.infer(frame[:, :, ::-1].copy(), 'rgb8'), expected)


def test_fused_model_opencv_cannot_run_names_backend(model_dir):
    path = make_fused_model(model_dir / 'fused_bitwise.onnx', 3, opencv_unsupported=True)
    error = assert_model_error('backend', 'opencv', 'use backend onnxruntime or openvino', path,
                               Preprocess(WIDTH, HEIGHT), 'opencv')
    assert 'fused' in str(error)
    others = runtimes_or_skip(ONNX_RUNTIMES, 'that auto goes on to another backend')
    opened = open_backend(path, Preprocess(WIDTH, HEIGHT), 'auto')
    assert opened.name == others[0]
    frame = make_frame(WIDTH, HEIGHT, seed=11)
    np.testing.assert_array_equal(
        opened.infer(frame), expected_class_map(frame, 3, width=WIDTH, height=HEIGHT, fused=True))


def test_fused_model_size_from_metadata_when_asked(model_dir):
    path = make_fused_model(model_dir / 'fused_sized.onnx', 3,
                            metadata={'seg_ros.num_classes': '3', 'seg_ros.input_width': '48',
                                      'seg_ros.input_height': '24'})
    opened, notes = open_with_notes(path, Preprocess(0, 0))
    assert (opened.description.input_width, opened.description.input_height) == (48, 24)
    assert opened.input_shape == (1, 24, 48, 3)
    assert opened.infer(make_frame(100, 60)).shape == (24, 48)
    assert any('input_height, input_width, num_classes from the model metadata' in note
               for note in notes)
    opened = open_backend(path, Preprocess(WIDTH, HEIGHT))
    assert opened.input_shape == (1, HEIGHT, WIDTH, 3)


def test_fused_model_without_class_count_is_rejected(model_dir):
    path = make_fused_model(model_dir / 'fused_nometa.onnx', 3, metadata={})
    with pytest.raises(ModelError, match='seg_ros.num_classes') as raised:
        open_backend(path, Preprocess(WIDTH, HEIGHT), INSTALLED[-1])
    assert raised.value.parameter == 'num_classes'
    opened = open_backend(path, {'input_width': WIDTH, 'input_height': HEIGHT,
                                 'num_classes': 3}, INSTALLED[-1])
    assert opened.num_classes == 3


def test_auto_prefers_openvino_then_onnxruntime_for_onnx(scores_model):
    opened, notes = open_with_notes(scores_model, Preprocess(WIDTH, HEIGHT), 'auto', 'cpu')
    preferred = [name for name in ('openvino', 'onnxruntime', 'opencv') if name in INSTALLED]
    assert opened.name == preferred[0]
    assert f'auto: chose {opened.name}' in notes


def test_inspect_model_reads_the_onnx_header(model_dir):
    path = make_fused_model(model_dir / 'fused_static.onnx', 3, width=40, height=20)
    info = inspect_model(path)
    assert info.file_format == 'onnx' and info.kind == 'fused' and not info.external_data
    assert info.input_shape == (1, 20, 40, 3) and info.inputs[0].name == 'image'
    assert info.output_names == ('class_map',) and info.outputs[0].dims == (1, 20, 40)
    assert info.metadata['seg_ros.num_classes'] == '3'


def test_the_header_reader_without_onnx_reads_what_the_onnx_library_reads(model_dir):
    from seg_ros.core.model.files import _read_onnx
    from seg_ros.core.model.onnx_header import read_header
    for path in (make_fused_model(model_dir / 'fused_header.onnx', 3, width=40, height=20),
                 make_scores_model(model_dir / 'scores_header.onnx', 4)):
        with open(path, 'rb') as model_file:
            fallback = read_header(model_file.read())
        library = _read_onnx(path)
        for key in ('inputs', 'outputs', 'external_data', 'metadata'):
            assert fallback[key] == library[key], key


# --- CUDA -------------------------------------------------------------------------------------

@pytest.mark.skipif(not no_cuda_anywhere(), reason='this machine has a CUDA backend')
@pytest.mark.parametrize('backend', ['auto', *INSTALLED])
def test_required_cuda_without_cuda_names_target(scores_model, backend):
    with pytest.raises(ModelError, match='CUDA') as raised:
        open_backend(scores_model, Preprocess(WIDTH, HEIGHT), backend, 'cuda', require_cuda=True)
    assert raised.value.parameter == 'target' and raised.value.value == 'cuda'


@pytest.mark.skipif(not no_cuda_anywhere(), reason='this machine has a CUDA backend')
@pytest.mark.parametrize('backend', INSTALLED)
def test_cuda_asked_without_cuda_runs_on_cpu_with_a_note(scores_model, backend):
    opened, notes = open_with_notes(scores_model, Preprocess(WIDTH, HEIGHT, 1.0), backend, 'cuda')
    assert not opened.uses_cuda
    assert any(backend in note and 'CUDA' in note for note in notes)
    frame = make_frame(WIDTH, HEIGHT)
    np.testing.assert_array_equal(opened.infer(frame),
                                  expected_class_map(frame, 5, width=WIDTH, height=HEIGHT))


def test_require_cuda_with_cpu_target_names_target(scores_model):
    with pytest.raises(ModelError) as raised:
        open_backend(scores_model, Preprocess(WIDTH, HEIGHT), 'auto', 'cpu', require_cuda=True)
    assert raised.value.parameter == 'target'


# --- ModelError cases -------------------------------------------------------------------------

def assert_model_error(parameter: str, value, match: str, *args, **kwargs) -> ModelError:
    with pytest.raises(ModelError, match=match) as raised:
        open_backend(*args, **kwargs)
    assert isinstance(raised.value, ValueError)
    assert raised.value.parameter == parameter and raised.value.value == value
    return raised.value


@pytest.mark.parametrize('backend', ['auto', *INSTALLED])
def test_bad_model_files_name_model_path(tmp_path, scores_model, backend):
    preprocess = Preprocess(WIDTH, HEIGHT)
    missing = str(tmp_path / 'missing.onnx')
    assert_model_error('model_path', missing, 'does not exist', missing, preprocess, backend)
    assert_model_error('model_path', str(tmp_path), 'directory', str(tmp_path), preprocess,
                       backend)
    empty = tmp_path / 'empty.onnx'
    empty.write_bytes(b'')
    assert_model_error('model_path', str(empty), 'empty', str(empty), preprocess, backend)
    with open(scores_model, 'rb') as model_file:
        data = model_file.read()
    for cut in (20, 150, len(data) // 2):
        truncated = tmp_path / f'truncated{cut}.onnx'
        truncated.write_bytes(data[:cut])
        assert_model_error('model_path', str(truncated), 'not a valid ONNX', str(truncated),
                           preprocess, backend)
    text = tmp_path / 'text.onnx'
    text.write_text('this is not a model\n')
    assert_model_error('model_path', str(text), 'not a valid ONNX', str(text), preprocess,
                       backend)
    assert_model_error('model_path', '', 'empty', '', preprocess, backend)


@pytest.mark.skipif(os.geteuid() == 0, reason='root can read a chmod 000 file')
def test_unreadable_model_names_model_path(tmp_path, scores_model):
    locked = tmp_path / 'locked.onnx'
    with open(scores_model, 'rb') as model_file:
        locked.write_bytes(model_file.read())
    locked.chmod(0)
    assert_model_error('model_path', str(locked), 'cannot be read', str(locked),
                       Preprocess(WIDTH, HEIGHT))


def test_text_file_with_an_opencv_extension_names_model_path(tmp_path):
    fake = tmp_path / 'fake.net'
    fake.write_text('not a Torch7 file\n')
    assert_model_error('model_path', str(fake), 'OpenCV DNN cannot read', str(fake),
                       Preprocess(WIDTH, HEIGHT))
    unknown = tmp_path / 'model.bin'
    unknown.write_text('what is this\n')
    assert_model_error('model_path', str(unknown), 'unknown model format', str(unknown),
                       Preprocess(WIDTH, HEIGHT))


@pytest.mark.parametrize('backend', [name for name in INSTALLED if name != 'opencv'])
def test_optional_runtimes_refuse_non_onnx_formats(tmp_path, backend):
    torch7 = tmp_path / 'model.net'
    torch7.write_bytes(b'\x04\x00\x00\x00')
    assert_model_error('backend', backend, 'only ONNX', str(torch7), Preprocess(WIDTH, HEIGHT),
                       backend)


def test_bad_backend_and_target_names(scores_model):
    preprocess = Preprocess(WIDTH, HEIGHT)
    assert_model_error('backend', 'tensorflow', 'backend must be one of', scores_model,
                       preprocess, 'tensorflow')
    assert_model_error('target', 'gpu', 'target must be one of', scores_model, preprocess,
                       'auto', 'gpu')


@pytest.mark.parametrize('width, height, parameter', [
    (-1, 32, 'input_width'), (64, -5, 'input_height'), (64.0, 32, 'input_width'),
    (True, 32, 'input_width'), (0, 32, 'input_width'), ('64', 32, 'input_width')])
def test_bad_sizes_name_the_size_parameter(width, height, parameter):
    with pytest.raises(ModelError) as raised:
        Preprocess(width, height)
    assert raised.value.parameter == parameter


@pytest.mark.parametrize('field, value', [('rescale_factor', 0.0),
                                          ('rescale_factor', float('nan')),
                                          ('image_mean', (1.0, 2.0)),
                                          ('image_mean', 5.0),
                                          ('image_std', (1.0, 0.0, 1.0))])
def test_bad_normalisation_names_the_parameter(scores_model, field, value):
    with pytest.raises(ModelError) as raised:
        ModelDescription(**{field: value})
    assert raised.value.parameter == field
    with pytest.raises(ModelError) as raised:
        open_backend(scores_model, {field: value})
    assert raised.value.parameter == field


def test_size_conflicting_with_a_static_model_names_the_size(model_dir):
    path = make_scores_model(model_dir / 'static.onnx', 3, width=WIDTH, height=HEIGHT)
    error = assert_model_error('input_width', 100, '64x32', path, Preprocess(100, HEIGHT))
    assert '100x32' in str(error)
    assert_model_error('input_height', 10, '64x32', path, Preprocess(WIDTH, 10))
    opened = open_backend(path, Preprocess(0, 0))
    assert opened.input_shape == (1, 3, HEIGHT, WIDTH)
    assert (opened.description.input_width, opened.description.input_height) == (WIDTH, HEIGHT)


def test_model_size_not_declared_anywhere_is_the_default_with_a_note(scores_model):
    opened, notes = open_with_notes(scores_model, {}, INSTALLED[-1])
    assert opened.input_shape == (1, 3, DEFAULT_INPUT_SIZE[1], DEFAULT_INPUT_SIZE[0])
    assert any('declares no input size' in note for note in notes)


# --- precision --------------------------------------------------------------------------------

@pytest.mark.parametrize('backend', INSTALLED)
def test_default_precision_is_f32_and_described(scores_model, backend):
    opened, notes = open_with_notes(scores_model, Preprocess(WIDTH, HEIGHT, scale=1.0),
                                    backend, 'cpu')
    assert opened.precision == 'f32' and 'precision f32' in opened.describe()
    assert not any('precision' in note for note in notes)


@pytest.mark.parametrize('backend', [name for name in INSTALLED if name != 'openvino'])
def test_fast_precision_on_float32_only_backends_runs_f32_with_a_note(scores_model, backend):
    opened, notes = open_with_notes(scores_model, Preprocess(WIDTH, HEIGHT, scale=1.0),
                                    backend, 'cpu', precision='fast')
    assert opened.precision == 'f32' and 'precision f32' in opened.describe()
    assert any('precision fast' in note and 'f32' in note for note in notes)
    frame = make_frame(WIDTH, HEIGHT)
    np.testing.assert_array_equal(opened.infer(frame),
                                  expected_class_map(frame, 5, width=WIDTH, height=HEIGHT))


@pytest.mark.skipif('openvino' not in INSTALLED, reason='OpenVINO is not installed')
def test_openvino_fast_precision_runs_and_names_the_precision_used(scores_model):
    import openvino
    opened, notes = open_with_notes(scores_model, Preprocess(WIDTH, HEIGHT), 'openvino',
                                    'cpu', precision='fast')
    capabilities = openvino.Core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES')
    expected = 'bf16' if 'BF16' in capabilities else 'f16' if 'FP16' in capabilities else 'f32'
    assert opened.precision == expected
    assert f'precision {expected}' in opened.describe()
    assert (expected == 'f32') == any('precision fast' in note for note in notes)
    class_map = opened.infer(make_frame(WIDTH, HEIGHT))
    assert class_map.shape == (HEIGHT, WIDTH) and class_map.max() < 5


def test_bad_precision_names_precision(scores_model):
    assert_model_error('precision', 'f16', 'precision must be one of', scores_model,
                       Preprocess(WIDTH, HEIGHT), precision='f16')


def test_onnxruntime_providers_put_gpu_first_and_cache_tensorrt_engines(monkeypatch, tmp_path):
    monkeypatch.setenv('SEG_ROS_TRT_CACHE', str(tmp_path))
    assert tensorrt_cache_dir() == str(tmp_path)
    providers = ort_providers(['TensorrtExecutionProvider', 'CUDAExecutionProvider'], 'fast')
    assert providers[1:] == ['CUDAExecutionProvider', 'CPUExecutionProvider']
    name, options = providers[0]
    assert name == 'TensorrtExecutionProvider'
    assert options == {'trt_engine_cache_enable': True, 'trt_engine_cache_path': str(tmp_path),
                       'trt_fp16_enable': True}
    assert ort_providers(['TensorrtExecutionProvider'], 'f32')[0][1]['trt_fp16_enable'] is False
    assert ort_providers([], 'f32') == ['CPUExecutionProvider']


# --- every output, by name and with the file's rank, on every backend -------------------------

def make_two_output_model(path) -> str:
    """Write a model with a (1, 3, 8, 8) scores output and a 1-D (3,) per-channel maximum."""
    from models import helper, onnx, TensorProto

    image = helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 3, 8, 8])
    scores = helper.make_tensor_value_info('scores', TensorProto.FLOAT, [1, 3, 8, 8])
    peaks = helper.make_tensor_value_info('peaks', TensorProto.FLOAT, [3])
    axes = helper.make_tensor('axes', TensorProto.INT64, [3], [0, 2, 3])
    graph = helper.make_graph(
        [helper.make_node('Identity', ['image'], ['scores']),
         helper.make_node('ReduceMax', ['image', 'axes'], ['peaks'], keepdims=0)],
        'two_outputs', [image], [scores, peaks], [axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 18)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


@pytest.mark.parametrize('backend', INSTALLED)
def test_forward_gives_every_output_with_the_declared_shape(model_dir, backend):
    path = make_two_output_model(model_dir / 'two_outputs.onnx')
    opened = open_backend(path, {'input_width': 8, 'input_height': 8}, backend, 'cpu')
    network_input = np.random.default_rng(3).random((1, 3, 8, 8), np.float32)
    outputs = opened.forward(network_input)
    assert opened.output_names == ('scores', 'peaks')
    assert list(outputs) == ['scores', 'peaks']
    # OpenCV DNN gives a 1-D output as (3, 1) by itself: the backend restores (3,).
    assert outputs['peaks'].shape == (3,)
    np.testing.assert_allclose(outputs['peaks'], network_input.max(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(outputs['scores'], network_input, rtol=1e-6)
