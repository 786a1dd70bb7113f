"""
The confidence map against an independent reference: SciPy's softmax of independently run scores.

The reference of every case is ``round(255 * max softmax)`` (``scipy.special.softmax`` in float64,
``np.rint``) of the same frame's scores: the backend's own output for it, upsampled by
:func:`models.bilinear_resize` where the class map's argmax is taken after a bilinear
upsampling, and sampled at pixel centres where the class map is resized nearest; for a fused
model, whose scores never leave the graph, the scores of its scores-out twin (the same weights)
on onnxruntime, with the pre-processing done here. Real inference: the embedded ENet, a
random-weight SegFormer (scores at a quarter of the input: both ``upsample`` modes and
HuggingFace's post-processing at frame size), the fused test model on OpenVINO (the probability
computed in the graph) and, where ``../shared`` has it, the real ENet Cityscapes ``.net`` (its
fused conversion on OpenVINO). Float32 against float64: a pixel may differ by one level where
``255 p`` lies within rounding of a half; never by more, and rarely.
"""

import os
import shutil

import cv2
import numpy as np
import pytest

from models import bilinear_resize, make_fused_model, reference_scores
from seg_ros.core.backends import available_backends
from seg_ros.core.decode.semantic import (class_map_and_confidence, class_map_from_scores,
                                          probability_to_confidence, streamed_confidence)
from seg_ros.core.segmenter import Segmenter, SegmenterConfig

special = pytest.importorskip('scipy.special', reason="the reference softmax is SciPy's")
onnxruntime = pytest.importorskip('onnxruntime', reason='the reference scores run on onnxruntime')

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMAGES_DIR = os.path.join(os.path.dirname(REPO_ROOT), 'shared', 'images')
EMBEDDED = os.path.join(REPO_ROOT, 'models', 'enet-synth', 'enet-synth.onnx')
INSTALLED = [name for name, problem in available_backends().items() if problem is None]
IN_GRAPH = 'seg_ros_confidence'
# At most this share of pixels may differ by one level from the reference; none by more.
ONE_LEVEL_SHARE = 0.01


def reference_confidence(scores: np.ndarray) -> np.ndarray:
    """Return round(255 * max softmax) of (C, h, w) scores: SciPy, float64."""
    probabilities = special.softmax(np.asarray(scores, np.float64), axis=0)
    return np.rint(255.0 * probabilities.max(axis=0)).astype(np.uint8)


def nearest(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Sample an image at the pixel centres of a (height, width) grid (nearest), in NumPy."""
    rows = np.minimum(((np.arange(height) + 0.5) * image.shape[0] / height).astype(int),
                      image.shape[0] - 1)
    columns = np.minimum(((np.arange(width) + 0.5) * image.shape[1] / width).astype(int),
                         image.shape[1] - 1)
    return image[rows][:, columns]


def source_pixels(model_shape: tuple[int, int], frame_shape: tuple[int, int]) -> np.ndarray:
    """Return, per frame pixel, the flat model-size pixel the class map at frame size reads."""
    index = np.arange(model_shape[0] * model_shape[1], dtype=np.int32).reshape(model_shape)
    return cv2.resize(index, frame_shape[::-1], interpolation=cv2.INTER_NEAREST_EXACT)


def assert_close_confidence(found: np.ndarray, expected: np.ndarray,
                            where: np.ndarray | None = None) -> float:
    """Check the confidence map level by level; return the share of identical pixels."""
    assert found is not None and found.dtype == np.uint8 and found.shape == expected.shape
    difference = np.abs(found.astype(int) - expected.astype(int))
    if where is not None:
        difference = difference[where]
    assert difference.max(initial=0) <= 1, f'{int((difference > 1).sum())} pixels off by > 1'
    assert np.mean(difference == 1) <= ONE_LEVEL_SHARE
    return float(np.mean(difference == 0))


def unit_input(frame_bgr: np.ndarray, width: int, height: int) -> np.ndarray:
    """Return the NCHW float32 input of a ``unit`` model: resize, RGB, x / 255."""
    resized = cv2.resize(frame_bgr, (width, height), interpolation=cv2.INTER_LINEAR)
    rgb = resized[:, :, ::-1].astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))[np.newaxis]


def onnxruntime_scores(path: str, network_input: np.ndarray, output: str = '') -> np.ndarray:
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    name = output or session.get_outputs()[0].name
    input_name = session.get_inputs()[0].name
    return session.run([name], {input_name: network_input})[0][0].astype(np.float64)


def backend_scores(segmenter: Segmenter, frame: np.ndarray) -> np.ndarray:
    """Return the (C, h, w) float64 scores the segmenter's backend gives for a frame."""
    backend = segmenter.backend
    outputs = backend.forward(backend.prepare(frame, 'bgr8'))
    return outputs[backend.description.output_name][0].astype(np.float64)


def street_photo(width: int = 1280, height: int = 720) -> np.ndarray:
    path = os.path.join(IMAGES_DIR, 'leuvenA.jpg')
    if os.path.isfile(path):
        return cv2.resize(cv2.imread(path), (width, height), interpolation=cv2.INTER_AREA)
    from seg_ros.data.synthetic import render_scene
    return render_scene(np.random.default_rng(5), width, height)[0]


# ---- the arithmetic ----------------------------------------------------------------------------
def test_the_confidence_of_scores_is_the_softmax_of_the_argmax_class():
    rng = np.random.default_rng(0)
    scores = (rng.standard_normal((19, 64, 96)) * 3).astype(np.float32)
    scores[:, 0, :10] = 0.0                                  # all classes tie: p = 1 / 19
    scores[:2, 1, :10] = 50.0                                # two tie on top: p = 1 / 2
    scores[0, 2, :10] = 500.0                                # one dominates: p = 1
    class_map, confidence = class_map_and_confidence(scores)
    assert np.array_equal(class_map, class_map_from_scores(scores))
    assert np.array_equal(class_map, np.argmax(scores, axis=0))
    expected = reference_confidence(scores)
    assert assert_close_confidence(confidence, expected) > 0.999
    assert set(confidence[0, :10].tolist()) == {13}           # 255 / 19 = 13.4
    assert set(confidence[1, :10].tolist()) == {128}          # 127.5, halves to even
    assert set(confidence[2, :10].tolist()) == {255}
    streamed = streamed_confidence(iter(scores))
    assert assert_close_confidence(streamed, expected) > 0.999


def test_probabilities_become_levels_without_error():
    probabilities = np.array([[0.0, 0.5 / 255, 1.5 / 255, 0.5, 1.0, 1.2, np.nan]], np.float32)
    levels = probability_to_confidence(probabilities)
    assert levels.tolist() == [[0, 0, 2, 128, 255, 255, 0]]   # halves to even; NaN: 0


# ---- real inference ----------------------------------------------------------------------------
@pytest.mark.parametrize('backend', INSTALLED)
def test_embedded_enet_confidence_matches_the_softmax_of_its_scores(backend):
    segmenter = Segmenter(SegmenterConfig(EMBEDDED, backend=backend, confidence=True))
    assert segmenter.makes_confidence and segmenter.confidence_reason == ''
    # Scores out: NumPy makes it, on the frames that ask, whatever the backend.
    assert IN_GRAPH not in segmenter.backend.output_names
    frame = street_photo()
    result = segmenter.run(frame, encoding='bgr8', color_mask=False, overlay=False)
    scores = backend_scores(segmenter, frame)
    agree = result.class_map == np.argmax(scores, axis=0)
    assert agree.mean() > 0.999
    expected = reference_confidence(scores)
    assert assert_close_confidence(result.confidence, expected, agree) > 0.98
    # At frame size: each pixel's class and confidence come from one model-size pixel.
    source = source_pixels(result.class_map.shape, frame.shape[:2])
    assert np.array_equal(result.class_map_full, result.class_map.reshape(-1)[source])
    assert np.array_equal(result.confidence_full, result.confidence.reshape(-1)[source])
    # Not asked for: none made.
    assert segmenter.run(frame, encoding='bgr8', confidence=False).confidence is None


@pytest.fixture(scope='module')
def segformer():
    architectures = pytest.importorskip('architectures')
    try:
        import torch  # noqa: F401
        architectures._import_torchvision()
        return architectures, architectures.export('segformer_b0', 'torchscript')
    except ImportError as error:
        pytest.skip(f'torch / transformers missing: {error}')


@pytest.mark.parametrize('upsample', ['bilinear', 'nearest'])
def test_random_segformer_confidence_follows_the_upsampling(segformer, upsample):
    architectures, path = segformer
    width, height = 96, 64
    segmenter = Segmenter(SegmenterConfig(path, input_width=width, input_height=height,
                                          preset='imagenet', upsample=upsample, backend='auto',
                                          confidence=True))
    frame = architectures.street_frame(200, 150, seed=7)
    result = segmenter.run(frame, encoding='bgr8', overlay=False, color_mask=False)
    low = backend_scores(segmenter, frame)
    assert low.shape[1:] == (height // 4, width // 4)
    if upsample == 'bilinear':
        scores = bilinear_resize(low, width, height)
        classes, expected = np.argmax(scores, axis=0), reference_confidence(scores)
    else:
        classes = nearest(np.argmax(low, axis=0), width, height)
        expected = nearest(reference_confidence(low), width, height)
    agree = result.class_map == classes
    assert agree.mean() > 0.99
    assert assert_close_confidence(result.confidence, expected, agree) > 0.98


def test_random_segformer_confidence_at_frame_size_with_huggingface_postprocessing(
        segformer, tmp_path):
    architectures, path = segformer
    width, height = 96, 64
    model = str(tmp_path / 'segformer.onnx')
    shutil.copy(path, model)
    with open(str(tmp_path / 'segformer.seg_ros.json'), 'w') as sidecar:
        sidecar.write('{"postprocess": "logits", "upsample": "bilinear"}')
    segmenter = Segmenter(SegmenterConfig(model, input_width=width, input_height=height,
                                          preset='imagenet', confidence=True))
    frame = architectures.street_frame(150, 110, seed=9)
    result = segmenter.run(frame, encoding='bgr8', overlay=False, color_mask=False)
    scores = bilinear_resize(backend_scores(segmenter, frame), 150, 110)  # frame size, argmax
    agree = result.class_map_full == np.argmax(scores, axis=0)
    assert agree.mean() > 0.99
    assert assert_close_confidence(result.confidence_full, reference_confidence(scores),
                                   agree) > 0.98
    source = source_pixels(result.class_map_full.shape, result.class_map.shape)
    assert np.array_equal(result.confidence, result.confidence_full.reshape(-1)[source])


# ---- class ids ---------------------------------------------------------------------------------
def test_a_class_id_model_says_why_it_has_no_confidence(tmp_path):
    path = make_fused_model(tmp_path / 'fused.onnx', 5, width=80, height=48)
    for backend in [name for name in INSTALLED if name != 'openvino']:
        segmenter = Segmenter(SegmenterConfig(path, backend=backend, confidence=True))
        assert not segmenter.makes_confidence
        assert 'class ids' in segmenter.confidence_reason
        assert 'OpenVINO can' in segmenter.confidence_reason
        result = segmenter.run(np.zeros((48, 80, 3), np.uint8), encoding='bgr8')
        assert result.confidence is None and result.class_map is not None
    if 'openvino' in INSTALLED:
        unasked = Segmenter(SegmenterConfig(path, backend='openvino'))
        assert 'confidence set' in unasked.confidence_reason
        assert unasked.run(np.zeros((48, 80, 3), np.uint8), confidence=True).confidence is None


@pytest.mark.skipif('openvino' not in INSTALLED, reason="the in-graph confidence is OpenVINO's")
def test_openvino_computes_the_confidence_behind_a_fused_argmax(tmp_path):
    path = make_fused_model(tmp_path / 'fused.onnx', 5, width=80, height=48, tie=True)
    segmenter = Segmenter(SegmenterConfig(path, backend='openvino', confidence=True))
    assert segmenter.makes_confidence, segmenter.confidence_reason
    assert 'seg_ros_confidence' in segmenter.backend.output_names
    frame = cv2.resize(street_photo(320, 200), (160, 96))
    result = segmenter.run(frame, encoding='bgr8', overlay=False, color_mask=False)
    scores = reference_scores(frame, 5, width=80, height=48, fused=True, tie=True)
    assert np.array_equal(result.class_map, np.argmax(scores, axis=0))
    expected = reference_confidence(scores)
    assert assert_close_confidence(result.confidence, expected) > 0.999
    assert (expected == 128).any(), 'the tied class gives p = 1/2 somewhere'


def test_an_instance_model_has_no_confidence(yolo_export):
    segmenter = Segmenter(SegmenterConfig(yolo_export, confidence=True))
    assert 'instance model' in segmenter.confidence_reason
    result = segmenter.run(np.full((96, 128, 3), 90, np.uint8), encoding='bgr8')
    assert result.confidence is None and result.confidence_full is None


# ---- the real ENet -----------------------------------------------------------------------------
@pytest.mark.skipif('openvino' not in INSTALLED, reason='the real ENet runs fused on OpenVINO')
def test_real_enet_confidence_on_street_photos(enet_dir, tmp_path):
    from seg_ros.core.model.torch7_onnx import save_model, torch7_to_onnx
    net = os.path.join(enet_dir, 'enet-model.net')
    segmenter = Segmenter(SegmenterConfig(net, backend='openvino', confidence=True))
    assert segmenter.makes_confidence, segmenter.confidence_reason
    scores_model = str(tmp_path / 'enet-scores.onnx')   # the same weights, scores out
    save_model(torch7_to_onnx(net, fused=False), scores_model)
    for name in sorted(os.listdir(IMAGES_DIR)):
        frame = cv2.imread(os.path.join(IMAGES_DIR, name))
        result = segmenter.run(frame, encoding='bgr8', overlay=False, color_mask=False)
        scores = onnxruntime_scores(scores_model, unit_input(frame, 1024, 512))
        agree = result.class_map == np.argmax(scores, axis=0)
        assert agree.mean() > 0.999, name
        # Two graphs (normalisation inside or out) on two runtimes: the scores differ by float
        # rounding, which moves 255 p across a rounding boundary now and then.
        difference = np.abs(result.confidence.astype(int)
                            - reference_confidence(scores).astype(int))[agree]
        assert np.mean(difference == 0) > 0.98, name
        assert np.mean(difference > 1) < 1e-5 and difference.max() <= 2, name
