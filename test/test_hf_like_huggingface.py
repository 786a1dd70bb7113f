"""
A model described by a HuggingFace ``preprocessor_config.json`` runs as HuggingFace's pipeline.

A SegFormer built from a ``SegformerConfig`` (random weights, class scores calibrated to vary:
:func:`architectures.build`) is exported to ONNX with a 384x384 ``preprocessor_config.json``
beside it. HuggingFace's own pipeline (its ``SegformerImageProcessor`` built from that config
dict, the PyTorch network, ``post_process_semantic_segmentation(target_sizes=[frame size])``)
and seg_ros's Segmenter (onnxruntime) each make the class map of the real photos, landscape
and portrait; they must agree on at least 99 % of the pixels (they do on more than 99.9 %).
Today's faster path (``resize: opencv``, ``postprocess: class_map``) is measured beside it.
"""

import json
import os
import shutil
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from seg_ros.core.model.description import describe_model
from seg_ros.core.segmenter import Segmenter, SegmenterConfig

pytest.importorskip('onnxruntime')
torch = pytest.importorskip('torch')
transformers = pytest.importorskip('transformers')
pytest.importorskip('PIL')
architectures = pytest.importorskip('architectures')

IMAGES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared',
                          'images')
PROCESSOR_CONFIG = {
    'do_normalize': True, 'do_rescale': True, 'do_resize': True, 'do_reduce_labels': False,
    'image_mean': [0.485, 0.456, 0.406], 'image_std': [0.229, 0.224, 0.225],
    'rescale_factor': 1 / 255, 'resample': 2, 'size': {'height': 384, 'width': 384},
    'image_processor_type': 'SegformerImageProcessor'}
GOAL = 0.99


@pytest.fixture(scope='module')
def photos() -> dict[str, np.ndarray]:
    """BGR photos: both landscape, and portrait ones (a rotation and an upright crop)."""
    found = {}
    for name in ('leuvenA.jpg', 'leuvenB.jpg'):
        frame = cv2.imread(os.path.join(IMAGES_DIR, name))
        if frame is None:
            pytest.skip(f'the photo {name} is not in {IMAGES_DIR}')
        found[name] = frame
    found['leuvenA-portrait'] = cv2.rotate(found['leuvenA.jpg'], cv2.ROTATE_90_CLOCKWISE)
    found['leuvenB-portrait-crop'] = np.ascontiguousarray(found['leuvenB.jpg'][:, 200:500])
    return found


@pytest.fixture(scope='module')
def segformer(tmp_path_factory):
    """Return (network, ONNX path in a folder with the preprocessor_config.json)."""
    try:
        architectures._import_torchvision()
        path = architectures.export('segformer_b0', 'torchscript')
    except ImportError as error:
        pytest.skip(f'torch / torchvision / transformers missing: {error}')
    folder = tmp_path_factory.mktemp('segformer_hf')
    model = folder / 'model.onnx'
    shutil.copy(path, model)
    (folder / 'preprocessor_config.json').write_text(json.dumps(PROCESSOR_CONFIG))
    network, _ = architectures.build('segformer_b0')
    return network, str(model)


def huggingface_class_map(network, processor, frame_bgr: np.ndarray) -> np.ndarray:
    """Return HuggingFace's class map: processor, PyTorch network, post-process at frame size."""
    rgb = np.ascontiguousarray(frame_bgr[:, :, ::-1])
    inputs = processor(images=rgb, return_tensors='pt')
    with torch.no_grad():
        logits = network(inputs['pixel_values'])[0]
    maps = processor.post_process_semantic_segmentation(
        SimpleNamespace(logits=logits), target_sizes=[frame_bgr.shape[:2]])
    return maps[0].numpy().astype(np.uint8)


def processor_for(name: str):
    """
    Return HuggingFace's processor ``name`` built from the config dict, or skip.

    ``SegformerImageProcessor`` is transformers' default (torchvision's antialiased resize from
    transformers 5, PIL's before); ``SegformerImageProcessorPil`` the PIL one of transformers 5.
    """
    architectures._import_torchvision()  # the default processor imports torchvision
    processor_class = getattr(transformers, name, None)
    if processor_class is None:
        pytest.skip(f'this transformers {transformers.__version__} has no {name}')
    return processor_class(**PROCESSOR_CONFIG)


def test_a_preprocessor_config_asks_for_huggingface_resize_and_post_processing(segformer):
    description, _ = describe_model(segformer[1])
    assert (description.resize, description.resample, description.postprocess) == \
        ('pil', 2, 'logits')
    assert (description.input_width, description.input_height) == (384, 384)


@pytest.mark.parametrize('processor_name', ['SegformerImageProcessor',
                                            'SegformerImageProcessorPil'])
def test_class_map_equals_huggingface_pipeline_in_both_orientations(
        segformer, photos, processor_name):
    network, model = segformer
    processor = processor_for(processor_name)
    exact = Segmenter(SegmenterConfig(model, backend='onnxruntime'))
    fast = Segmenter(SegmenterConfig(model, backend='onnxruntime'))
    # Today's faster path, for the figures: OpenCV's resize, the class map upsampled.
    fast.backend.description = fast.backend.description.replaced(resize='opencv',
                                                                 postprocess='class_map')
    figures = {}
    for name, frame in photos.items():
        expected = huggingface_class_map(network, processor, frame)
        assert len(np.unique(expected)) >= 3, 'a class map of one class proves little'
        result = exact.run(frame, encoding='bgr8')
        assert result.class_map_full.shape == frame.shape[:2]
        assert result.class_map.shape == (384, 384)
        agreement = float((result.class_map_full == expected).mean())
        fast_agreement = float((fast.run(frame, encoding='bgr8').class_map_full
                                == expected).mean())
        figures[name] = (round(agreement * 100, 2), round(fast_agreement * 100, 2))
        assert agreement >= GOAL, (name, figures[name])
    print(f'{processor_name}: % of pixels equal to HF (HF-exact path, fast path):', figures)


def test_the_fast_path_stays_for_descriptions_that_do_not_ask(segformer, tmp_path):
    # Without the HF config (a seg_ros sidecar instead), today's path: OpenCV, class map.
    shutil.copy(segformer[1], tmp_path / 'plain.onnx')
    (tmp_path / 'plain.seg_ros.json').write_text(json.dumps(
        {'preset': 'imagenet', 'input_width': 384, 'input_height': 384}))
    description, _ = describe_model(str(tmp_path / 'plain.onnx'))
    assert (description.resize, description.postprocess) == ('opencv', 'class_map')
    # Either can be asked for by a sidecar too.
    (tmp_path / 'plain.seg_ros.json').write_text(json.dumps(
        {'preset': 'imagenet', 'resize': 'pil', 'resample': 3, 'postprocess': 'logits'}))
    description, _ = describe_model(str(tmp_path / 'plain.onnx'))
    assert (description.resize, description.resample, description.postprocess) == \
        ('pil', 3, 'logits')


def test_frame_size_argmax_equals_resizing_every_plane(segformer, photos):
    # class_map_of_resized_scores interpolates only where the cells' classes differ: the same
    # map as cv2.resize of every plane (PyTorch's interpolate) and np.argmax, on real logits.
    from seg_ros.core.decode.semantic import class_map_of_resized_scores
    segmenter = Segmenter(SegmenterConfig(segformer[1], backend='onnxruntime'))
    for frame in photos.values():
        backend = segmenter.backend
        logits = backend.forward(backend.prepare(frame, 'bgr8'))['logits'][0]
        height, width = frame.shape[:2]
        resized = np.stack([cv2.resize(plane, (width, height), interpolation=cv2.INTER_LINEAR)
                            for plane in logits])
        expected = np.argmax(resized, axis=0)
        top_two = np.sort(resized, axis=0)[-2:]
        decided = top_two[1] - top_two[0] > 1e-5
        class_map = class_map_of_resized_scores(logits, width, height)
        np.testing.assert_array_equal(class_map[decided], expected[decided])
        assert (class_map == expected).mean() > 0.9999
