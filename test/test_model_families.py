"""
The model families people bring, exported the usual ways, on every backend.

Small random-weight versions of torchvision FCN-ResNet50, DeepLabV3-MobileNetV3, LR-ASPP-
MobileNetV3 and a SegFormer-B0-like network (see :mod:`architectures`), from both torch
exporters; each backend's class map is compared with onnxruntime + NumPy
(:func:`architectures.reference_scores`). A backend either agrees (every pixel, except where the
two best reference scores are within float rounding of each other) or refuses the model with a
ModelError: none crashes the process, none answers with another output.
"""

import os

import numpy as np
import pytest

from models import ambiguous_pixels

pytest.importorskip('onnxruntime')
pytest.importorskip('transformers')
architectures = pytest.importorskip('architectures')

from runtimes import INSTALLED  # noqa: E402
from seg_ros.core.backends import open_backend  # noqa: E402
from seg_ros.core.errors import ModelError  # noqa: E402

WIDTH, HEIGHT = 96, 64
# Float32 summation order differs between runtimes; deep random networks amplify it a little.
TIE_TOLERANCE = 1e-3
# What OpenCV DNN 4.x refuses (with a reason): external data, and SegFormer's attention
# (its importer fails on the broadcast Add); it runs the other exports, whose dynamic input
# dims seg_ros fixes in a copy for it.
OPENCV_REFUSES = {'segformer_b0'}
CASES = [(family, exporter) for family in architectures.FAMILIES
         for exporter in architectures.EXPORTERS]


@pytest.fixture(scope='module')
def exports() -> dict:
    try:
        import torch  # noqa: F401
        architectures._import_torchvision()
    except ImportError as error:
        pytest.skip(f'torch / torchvision missing: {error}')
    return architectures.export_all()


@pytest.fixture(scope='module', params=CASES, ids=['-'.join(case) for case in CASES])
def exported(request, exports):
    family, exporter = request.param
    path = exports[(family, exporter, False)]
    frame = architectures.street_frame(seed=len(family))
    scores = architectures.reference_scores(path, frame, WIDTH, HEIGHT)
    return family, exporter, path, frame, scores


def agreement(class_map: np.ndarray, scores: np.ndarray) -> tuple[int, int]:
    """Return (pixels that differ, of those, pixels not explained by a near-tie)."""
    differs = class_map != np.argmax(scores, axis=0)
    return int(differs.sum()), int((differs & ~ambiguous_pixels(scores, TIE_TOLERANCE)).sum())


@pytest.mark.parametrize('backend', INSTALLED)
def test_every_backend_agrees_with_the_reference_or_refuses(exported, backend):
    family, exporter, path, frame, scores = exported
    expected = np.argmax(scores, axis=0)
    assert len(np.unique(expected)) >= 2, 'a random network with one class proves little'
    try:
        opened = open_backend(path, {'input_width': WIDTH, 'input_height': HEIGHT}, backend,
                              'cpu', preset='imagenet')
    except ModelError as error:
        # Only OpenCV DNN may refuse, only what it cannot read, with a reason naming the backend.
        assert backend == 'opencv' and error.parameter == 'backend', str(error)
        if exporter == 'dynamo':
            assert 'external data' in str(error)
        else:
            assert family in OPENCV_REFUSES, str(error)
        return
    assert opened.description.output_name == architectures.FAMILIES[family][1][0]
    assert opened.output_names == architectures.FAMILIES[family][1]
    _, unexplained = agreement(opened.infer(frame), scores)
    assert unexplained == 0, f'{family} {exporter} on {backend}'


def test_dynamo_exports_keep_their_weights_outside(exported):
    family, exporter, path, _, _ = exported
    assert os.path.exists(path + '.data') == (exporter == 'dynamo')


def test_segformer_scores_are_low_resolution_and_upsampled_bilinearly(exports):
    path = exports[('segformer_b0', 'torchscript', False)]
    frame = architectures.street_frame(seed=3)
    backend = INSTALLED[-1]
    opened = open_backend(path, {'input_width': WIDTH, 'input_height': HEIGHT}, backend, 'cpu',
                          preset='imagenet')
    logits = opened.forward(opened.prepare(frame))['logits']
    assert logits.shape[2:] == (HEIGHT // 4, WIDTH // 4)
    scores = architectures.reference_scores(path, frame, WIDTH, HEIGHT)
    assert agreement(opened.infer(frame), scores)[1] == 0
    nearest = open_backend(path, {'input_width': WIDTH, 'input_height': HEIGHT,
                                  'upsample': 'nearest'}, backend, 'cpu', preset='imagenet')
    assert agreement(nearest.infer(frame), scores)[0] > 0  # the two really differ


def test_nhwc_export_declared_nhwc_agrees(exports):
    path = exports[('lraspp_mobilenet_v3', 'torchscript', True)]
    frame = architectures.street_frame(seed=4)
    scores = architectures.reference_scores(path, frame, WIDTH, HEIGHT, nhwc=True)
    for backend in INSTALLED:
        try:
            opened = open_backend(path, {'input_width': WIDTH, 'input_height': HEIGHT,
                                         'output_layout': 'NHWC'}, backend, 'cpu',
                                  preset='imagenet')
        except ModelError as error:
            assert backend == 'opencv' and error.parameter == 'backend', str(error)
            continue
        assert opened.input_shape == (1, HEIGHT, WIDTH, 3)
        assert agreement(opened.infer(frame), scores)[1] == 0, backend
    with pytest.raises(ModelError, match='output_layout NHWC'):
        open_backend(path, {'input_width': WIDTH, 'input_height': HEIGHT}, INSTALLED[-1],
                     'cpu', preset='imagenet')
