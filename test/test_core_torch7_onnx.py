"""
The torch-free Torch7 -> fused ONNX conversion, its cache and its check against OpenCV DNN.

A small network written here in the Torch7 format (``torch7_writer``) is read by OpenCV DNN's
own Torch importer and by seg_ros's converter; scores and class maps of every installed
backend are compared with OpenCV DNN's and with a NumPy reference of the max-unpooling. The real
ENet (``../shared/models/enet-cityscapes``) is checked on the two street photos.
"""

import glob
import os

import cv2
import numpy as np
import pytest
import torch7_writer
from torch7_writer import Module, save_torch7, small_enet

from runtimes import ONNX_RUNTIMES, runtimes_or_skip
from seg_ros.core import loading as model_cache
from seg_ros.core.backends import open_backend, Preprocess
from seg_ros.core.errors import ModelError
from seg_ros.core.model.torch7_file import read_torch7, Torch7FormatError
from seg_ros.core.model.torch7_onnx import save_model, torch7_to_onnx
from seg_ros.core.segmenter import Segmenter, SegmenterConfig

onnx = pytest.importorskip('onnx')

SHARED = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'shared')
ENET = os.path.join(SHARED, 'models', 'enet-cityscapes', 'enet-model.net')
PHOTOS = sorted(glob.glob(os.path.join(SHARED, 'images', '*.jpg')))
SIZE = (96, 64)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test converts into its own cache folder."""
    monkeypatch.setenv(model_cache.CACHE_VARIABLE, str(tmp_path / 'cache'))


@pytest.fixture(scope='module')
def small_net(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp('torch7') / 'small-enet.net')
    save_torch7(path, small_enet())
    return path


def frame(seed: int = 3, size: tuple[int, int] = SIZE) -> np.ndarray:
    """Return a smooth random BGR image made of blocks, so that the network sees structure."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    return cv2.resize(small, size, interpolation=cv2.INTER_LINEAR)


def opencv_scores(net_path: str, image: np.ndarray) -> np.ndarray:
    net = cv2.dnn.readNet(net_path)
    net.setInput(cv2.dnn.blobFromImage(image, 1 / 255, SIZE, (0, 0, 0), True, False))
    return net.forward()


# ---- the reader -----------------------------------------------------------------------------
def first_output(opened, network_input: np.ndarray) -> np.ndarray:
    """Return the model's first output for a prepared input."""
    return opened.forward(network_input)[opened.output_names[0]]


def test_reader_returns_the_module_tree_with_shared_objects(small_net):
    root = read_torch7(small_net)
    assert root.class_name == 'nn.Sequential'
    children = [root.get('modules')[key] for key in sorted(root.get('modules'))]
    assert [child.type_name for child in children[:4]] == [
        'ConcatTable', 'JoinTable', 'SpatialBatchNormalization', 'PReLU']
    expected = small_enet().fields['modules'][2].fields
    np.testing.assert_array_equal(children[2].get('running_var'), expected['running_var'])
    assert children[2].get('eps') == pytest.approx(1e-3)
    # The unpooling refers to the very pooling object of the downsampling branch.
    down, up = children[5], children[6]
    pool = down.get('modules')[1].get('modules')[2].get('modules')[1]
    unpool = up.get('modules')[1].get('modules')[2].get('modules')[3]
    assert unpool.type_name == 'SpatialMaxUnpooling' and unpool.get('pooling') is pool


def test_reader_rejects_other_files(tmp_path):
    path = tmp_path / 'text.net'
    path.write_text('not a torch file at all')
    with pytest.raises(Torch7FormatError):
        read_torch7(str(path))
    truncated = tmp_path / 'truncated.net'
    writer = torch7_writer.Torch7Writer()
    writer.write(small_enet())
    truncated.write_bytes(writer.data()[:5000])
    with pytest.raises(Torch7FormatError, match='truncated'):
        read_torch7(str(truncated))


# ---- the converter against OpenCV DNN and NumPy ---------------------------------------------
@pytest.mark.parametrize('backend', ONNX_RUNTIMES + ['opencv'])
def test_scores_form_matches_opencv_dnn_on_the_torch7_file(small_net, tmp_path, backend):
    path = str(tmp_path / 'scores.onnx')
    save_model(torch7_to_onnx(small_net, fused=False), path)
    image = frame()
    expected = opencv_scores(small_net, image)
    blob = cv2.dnn.blobFromImage(image, 1 / 255, SIZE, (0, 0, 0), True, False)
    opened = open_backend(path, Preprocess(*SIZE), backend=backend, target='cpu')
    scores = first_output(opened, blob)
    assert scores.shape == expected.shape == (1, 5, SIZE[1], SIZE[0])
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize('backend', ONNX_RUNTIMES)
def test_fused_form_gives_opencv_dnn_class_map(small_net, tmp_path, backend):
    path = str(tmp_path / 'fused.onnx')
    proto = torch7_to_onnx(small_net, width=SIZE[0], height=SIZE[1])
    save_model(proto, path)
    props = {prop.key: prop.value for prop in proto.metadata_props}
    assert props['seg_ros.format'] == 'fused' and props['seg_ros.num_classes'] == '5'
    ops = {node.op_type for node in proto.graph.node}
    assert not ops & {'MaxUnpool', 'ScatterND', 'ScatterElements'}
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    opened = open_backend(path, Preprocess(0, 0), backend=backend, target='cpu')
    for seed in range(3):
        image = frame(seed)
        expected = opencv_scores(small_net, image)[0].argmax(axis=0)
        assert np.mean(opened.infer(image, 'bgr8') == expected) >= 0.999


def numpy_unpool(values: np.ndarray, pre_pool: np.ndarray) -> np.ndarray:
    """Max-unpool with NumPy: each value goes to the first maximum of its 2x2 window."""
    n, c, h, w = values.shape
    windows = pre_pool.reshape(n, c, h, 2, w, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        n, c, h, w, 4)
    first = windows.argmax(axis=-1)
    out = np.zeros((n, c, h, w, 4), values.dtype)
    np.put_along_axis(out, first[..., None], values[..., None], axis=-1)
    return out.reshape(n, c, h, w, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, 2 * h, 2 * w)


def test_max_unpooling_and_padding_match_numpy(tmp_path):
    """A pool -> pad -> unpool network, with ties in the windows, against a NumPy reference."""
    pool = torch7_writer.max_pool()
    root = torch7_writer.container(
        'nn.Sequential',
        torch7_writer.container(
            'nn.ConcatTable', Module('nn.Identity'),
            torch7_writer.container('nn.Sequential', pool, Module('nn.ReLU'),
                                    torch7_writer.max_unpool(pool))),
        Module('nn.JoinTable', dimension=1, nInputDims=3),
        Module('nn.Padding', dim=1, pad=-1, nInputDim=3, value=2.5, index=1),
        Module('nn.SpatialDropout', p=0.2))
    net_path = str(tmp_path / 'unpool.net')
    save_torch7(net_path, root)
    path = str(tmp_path / 'unpool.onnx')
    save_model(torch7_to_onnx(net_path, fused=False), path)
    rng = np.random.default_rng(5)
    # Few distinct values: many windows hold their maximum twice or more.
    blob = rng.integers(-2, 3, (1, 3, 8, 12)).astype(np.float32)
    pooled = blob.reshape(1, 3, 4, 2, 6, 2).max(axis=(3, 5))
    unpooled = numpy_unpool(np.maximum(pooled, 0), blob)
    joined = np.concatenate([np.full((1, 1, 8, 12), 2.5, np.float32), blob, unpooled], axis=1)
    expected = joined * np.float32(0.8)
    for backend in runtimes_or_skip(ONNX_RUNTIMES, 'the unpooling graph'):
        opened = open_backend(path, Preprocess(12, 8), backend=backend, target='cpu')
        np.testing.assert_allclose(first_output(opened, blob), expected, rtol=1e-6, atol=1e-6)


def test_module_missing_a_field_is_a_clear_error(tmp_path):
    net_path = str(tmp_path / 'broken.net')
    rng = np.random.default_rng(0)
    broken = torch7_writer.conv(rng, 3, 4, 3, 1, 1)
    del broken.fields['nInputPlane']
    save_torch7(net_path, torch7_writer.container('nn.Sequential', broken))
    with pytest.raises(ValueError, match='lacks a field'):
        torch7_to_onnx(net_path)


def test_unsupported_module_is_named(tmp_path):
    net_path = str(tmp_path / 'avg.net')
    save_torch7(net_path, torch7_writer.container(
        'nn.Sequential', Module('nn.SpatialAveragePooling', kW=2, kH=2, dW=2, dH=2, padW=0,
                                padH=0, ceil_mode=False, count_include_pad=True)))
    with pytest.raises(ValueError, match='nn.SpatialAveragePooling is not supported'):
        torch7_to_onnx(net_path)


# ---- the cache and the hook in the model loading -------------------------------------------
needs_onnx_backend = pytest.mark.skipif(not ONNX_RUNTIMES,
                                        reason='neither openvino nor onnxruntime is installed')


@needs_onnx_backend
def test_segmenter_runs_a_torch7_file_as_its_cached_conversion(small_net):
    config = SegmenterConfig(model_path=small_net, input_width=SIZE[0], input_height=SIZE[1])
    segmenter = Segmenter(config)
    assert segmenter.backend.name == ONNX_RUNTIMES[0]
    assert segmenter.model_file.startswith(model_cache.cache_dir())
    assert segmenter.model_file.endswith('.onnx') and os.path.isfile(segmenter.model_file)
    assert segmenter.backend.kind == 'fused' and not segmenter.warnings
    assert any(note.startswith(f'model: running {segmenter.model_file}')
               for note in segmenter.notes)
    image = frame(7)
    expected = opencv_scores(small_net, image)[0].argmax(axis=0).astype(np.uint8)
    result = segmenter.run(image, encoding='bgr8')
    assert np.mean(result.class_map == expected) >= 0.999
    # Same content: the cached file is used again, not rewritten.
    written = os.stat(segmenter.model_file).st_mtime_ns
    again = Segmenter(config)
    assert again.model_file == segmenter.model_file
    assert os.stat(again.model_file).st_mtime_ns == written
    assert any('found the conversion' in note for note in again.notes)


def test_cache_key_follows_content_and_normalisation(small_net, tmp_path):
    copy = tmp_path / 'copy.net'
    copy.write_bytes(open(small_net, 'rb').read())
    other = tmp_path / 'other.net'
    save_torch7(str(other), small_enet(seed=1))
    base = Preprocess(*SIZE)
    key = os.path.basename(model_cache.converted_path(small_net, base))
    assert key.split('-')[-3] == os.path.basename(
        model_cache.converted_path(str(copy), base)).split('-')[-3]
    assert model_cache.converted_path(str(other), base) != model_cache.converted_path(
        str(copy), base)
    assert model_cache.converted_path(small_net, Preprocess(*SIZE, swap_rb=False)) != \
        model_cache.converted_path(small_net, base)


def test_opencv_backend_keeps_the_torch7_file(small_net):
    segmenter = Segmenter(SegmenterConfig(model_path=small_net, input_width=SIZE[0],
                                          input_height=SIZE[1], backend='opencv'))
    assert segmenter.backend.name == 'opencv' and segmenter.model_file == small_net
    assert not os.path.exists(os.path.join(model_cache.cache_dir(), 'torch7-onnx'))


@needs_onnx_backend
def test_unconvertible_file_keeps_opencv_with_a_warning(tmp_path):
    """A module OpenCV DNN reads but the converter does not: auto keeps OpenCV, and says so."""
    net_path = str(tmp_path / 'avg.net')
    rng = np.random.default_rng(0)
    save_torch7(net_path, torch7_writer.container(
        'nn.Sequential', torch7_writer.conv(rng, 3, 4, 3, 1, 1),
        Module('nn.SpatialAveragePooling', kW=2, kH=2, dW=2, dH=2, padW=0, padH=0,
               ceil_mode=False, count_include_pad=True),
        torch7_writer.full_conv(rng, 4, 4, 2, 2, 0, 0)))
    segmenter = Segmenter(SegmenterConfig(model_path=net_path, input_width=SIZE[0],
                                          input_height=SIZE[1]))
    assert segmenter.backend.name == 'opencv' and segmenter.model_file == net_path
    assert len(segmenter.warnings) == 1
    assert 'SpatialAveragePooling is not supported' in segmenter.warnings[0]
    with pytest.raises(ModelError, match=f"backend '{ONNX_RUNTIMES[0]}' needs") as error:
        Segmenter(SegmenterConfig(model_path=net_path, input_width=SIZE[0],
                                  input_height=SIZE[1], backend=ONNX_RUNTIMES[0]))
    assert error.value.parameter == 'backend'


@needs_onnx_backend
def test_conversion_below_the_agreement_threshold_is_refused(small_net):
    """The check itself: with a threshold no model can reach, OpenCV DNN runs the .net."""
    opened = model_cache.open_model(small_net, Preprocess(*SIZE), min_agreement=1.0 + 1e-9)
    assert opened.backend.name == 'opencv' and opened.model_file == small_net
    assert opened.conversion_agreement >= 0.999
    assert len(opened.warnings) == 1 and 'refused the conversion' in opened.warnings[0]


# ---- the real ENet --------------------------------------------------------------------------
needs_enet = pytest.mark.skipif(not os.path.isfile(ENET) or len(PHOTOS) < 2,
                                reason='the real ENet and street photos of ../shared are absent')


@needs_enet
@needs_onnx_backend
@pytest.mark.parametrize('backend', ONNX_RUNTIMES)
def test_real_enet_conversion_agrees_with_opencv_dnn_on_the_photos(backend):
    segmenter = Segmenter(SegmenterConfig(model_path=ENET, backend=backend))
    assert segmenter.backend.name == backend and segmenter.backend.kind == 'fused'
    assert segmenter.model_file != ENET and not segmenter.warnings
    original = open_backend(ENET, Preprocess(1024, 512), backend='opencv', target='cpu')
    for photo in PHOTOS:
        image = cv2.imread(photo)
        agree = np.mean(segmenter.backend.infer(image, 'bgr8') == original.infer(image, 'bgr8'))
        assert agree >= 0.999, f'{photo}: {100 * agree:.3f} %'


@needs_enet
@pytest.mark.skipif('openvino' not in ONNX_RUNTIMES, reason='openvino is not installed')
def test_real_enet_fast_precision_reports_its_agreement():
    segmenter = Segmenter(SegmenterConfig(model_path=ENET, precision='fast'))
    if segmenter.backend.precision == 'f32':
        pytest.skip('this CPU has no lower precision than f32')
    assert 0.9 < segmenter.fast_agreement <= 1.0
    assert any(note.startswith(f'precision fast ({segmenter.backend.precision}): ')
               for note in segmenter.notes)


@needs_onnx_backend
def test_cli_segment_names_the_conversion_it_runs(small_net, tmp_path, capsys):
    from seg_ros.cli import main

    image_path = str(tmp_path / 'street.png')
    cv2.imwrite(image_path, frame(9, (120, 80)))
    status = main(['segment', image_path, '--model', small_net, '--width', str(SIZE[0]),
                   '--height', str(SIZE[1]), '-o', str(tmp_path / 'out'), '--quiet'])
    out = capsys.readouterr().out
    assert status == 0
    running = model_cache.converted_path(small_net, Preprocess(*SIZE))
    assert f'running its conversion {running}' in out
    class_map = cv2.imread(str(tmp_path / 'out' / 'street_classmap.png'), cv2.IMREAD_UNCHANGED)
    net = cv2.dnn.readNet(small_net)
    net.setInput(cv2.dnn.blobFromImage(cv2.imread(image_path), 1 / 255, SIZE, (0, 0, 0), True,
                                       False))
    expected = cv2.resize(net.forward()[0].argmax(axis=0).astype(np.uint8), (120, 80),
                          interpolation=cv2.INTER_NEAREST_EXACT)
    assert np.mean(class_map == expected) >= 0.999
