"""The model description (sidecar, metadata, presets, overrides) on every backend."""

import json
import os

import numpy as np
import pytest

from models import (ambiguous_pixels, expected_class_map, make_detection_shaped_model, make_frame,
                    make_nhwc_model, make_opencv_crashing_model, make_scores_model,
                    make_two_output_model, reference_normalised_scores, reference_scores,
                    save_with_external_data)
from runtimes import INSTALLED, ONNX_RUNTIMES, runtimes_or_skip
from seg_ros.core.backends import inspect_model, open_backend
from seg_ros.core.errors import ModelError
from seg_ros.core.model.description import (describe_model, IMAGENET_MEAN, IMAGENET_STD,
                                            ModelDescription)
from seg_ros.core.segmenter import Segmenter, SegmenterConfig

WIDTH, HEIGHT = 64, 32


@pytest.fixture
def scores_model(tmp_path) -> str:
    return make_scores_model(tmp_path / 'model.onnx', 5)


def write_sidecar(model_path: str, values: dict, suffix: str = '.seg_ros.json') -> str:
    path = os.path.splitext(model_path)[0] + suffix
    with open(path, 'w', encoding='utf-8') as sidecar:
        if suffix.endswith('.json'):
            json.dump(values, sidecar)
        else:
            import yaml
            yaml.safe_dump(values, sidecar)
    return path


# --- where the values come from ---------------------------------------------------------------

def test_defaults_are_the_unit_preset():
    assert ModelDescription() == ModelDescription.preset('unit')
    imagenet = ModelDescription.preset('imagenet')
    assert imagenet.image_mean == IMAGENET_MEAN and imagenet.image_std == IMAGENET_STD
    assert imagenet.rescale_factor == 1 / 255 and imagenet.channel_order == 'RGB'


@pytest.mark.parametrize('suffix', ['.seg_ros.json', '.seg_ros.yaml'])
def test_sidecar_then_preset_then_overrides(scores_model, suffix):
    write_sidecar(scores_model, {'image_mean': [0.5, 0.25, 0.125], 'input_width': 96,
                                 'input_height': 48, 'upsample': 'nearest'}, suffix)
    description, notes = describe_model(scores_model)
    assert description.image_mean == (0.5, 0.25, 0.125)
    assert (description.input_width, description.input_height, description.upsample) == \
        (96, 48, 'nearest')
    assert any(os.path.basename(scores_model)[:-5] + suffix in note for note in notes)
    # A preset named by the caller replaces the sidecar's normalisation, not its other keys.
    description, _ = describe_model(scores_model, preset='imagenet')
    assert description.image_mean == IMAGENET_MEAN and description.input_width == 96
    # Overrides win over everything.
    description, _ = describe_model(scores_model, overrides={'image_mean': (1.0, 2.0, 3.0)},
                                    preset='imagenet')
    assert description.image_mean == (1.0, 2.0, 3.0) and description.image_std == IMAGENET_STD


def test_sidecar_preset_applies_under_its_own_keys(scores_model):
    write_sidecar(scores_model, {'preset': 'imagenet', 'image_std': [0.5, 0.5, 0.5]})
    description, _ = describe_model(scores_model)
    assert description.image_mean == IMAGENET_MEAN and description.image_std == (0.5,) * 3


def test_huggingface_preprocessor_config_is_read(tmp_path, scores_model):
    (tmp_path / 'preprocessor_config.json').write_text(json.dumps({
        'do_normalize': True, 'do_rescale': True, 'do_resize': True,
        'image_mean': list(IMAGENET_MEAN), 'image_std': list(IMAGENET_STD),
        'rescale_factor': 0.00392156862745098, 'size': {'height': 64, 'width': 128},
        'image_processor_type': 'SegformerImageProcessor'}))
    description, _ = describe_model(scores_model)
    assert description.image_mean == IMAGENET_MEAN and description.image_std == IMAGENET_STD
    assert (description.input_width, description.input_height) == (128, 64)
    # Run as HuggingFace runs it: PIL's resize (its resample, default bilinear), logits to the
    # frame size before the argmax.
    assert (description.resize, description.resample, description.postprocess) == \
        ('pil', 2, 'logits')


@pytest.mark.parametrize('key, value', [('resize', 'skimage'), ('resample', 7),
                                        ('resample', True), ('postprocess', 'softmax')])
def test_bad_resize_resample_or_postprocess_is_refused_naming_it(key, value):
    with pytest.raises(ModelError, match=key) as raised:
        ModelDescription(**{key: value})
    assert raised.value.parameter == key


def test_metadata_description_and_ultralytics_metadata(tmp_path):
    path = make_scores_model(tmp_path / 'meta.onnx', 3, metadata={
        'seg_ros.description': json.dumps({'image_std': [2.0, 2.0, 2.0],
                                           'output_layout': 'NCHW'}),
        'seg_ros.upsample': 'nearest'})
    description, notes = describe_model(path, inspect_model(path).metadata)
    assert description.image_std == (2.0,) * 3 and description.upsample == 'nearest'
    assert any('metadata' in note for note in notes)
    description, _ = describe_model(path, {'task': 'segment', 'imgsz': '[480, 640]',
                                           'names': "{0: 'person', 1: 'car'}"})
    assert description.task == 'yolo_seg'
    assert (description.input_width, description.input_height) == (640, 480)
    assert description.class_names == ('person', 'car')


@pytest.mark.parametrize('values, parameter', [
    ({'imagemean': [0, 0, 0]}, 'model_path'), ({'image_mean': [1, 2]}, 'image_mean'),
    ({'channel_order': 'RBG'}, 'channel_order'), ({'task': 'detect'}, 'task'),
    ({'preset': 'coco'}, 'preset'), ({'output_layout': 'HWC'}, 'output_layout')])
def test_bad_sidecar_values_name_the_key(scores_model, values, parameter):
    write_sidecar(scores_model, values)
    with pytest.raises(ModelError) as raised:
        describe_model(scores_model)
    assert raised.value.parameter == parameter
    assert list(values)[0] in str(raised.value) or list(values.values())[0] in str(raised.value)


def test_unreadable_sidecar_names_the_file(scores_model):
    path = os.path.splitext(scores_model)[0] + '.seg_ros.json'
    with open(path, 'w') as sidecar:
        sidecar.write('{"image_mean": [0.1, ')
    with pytest.raises(ModelError, match='not valid') as raised:
        describe_model(scores_model)
    assert path in str(raised.value)


# --- per-channel mean and std, on every backend ------------------------------------------------

@pytest.mark.parametrize('backend', INSTALLED)
def test_imagenet_normalisation_matches_the_numpy_reference(tmp_path, backend):
    bias_scale = 1 / 255 / 0.225
    path = make_scores_model(tmp_path / 'imagenet.onnx', 6, scale=bias_scale)
    frame = make_frame(90, 45, seed=21)
    scores = reference_normalised_scores(frame, 6, width=WIDTH, height=HEIGHT, rescale=1 / 255,
                                         mean=IMAGENET_MEAN, std=IMAGENET_STD, scale=bias_scale)
    expected = np.argmax(scores, axis=0)
    assert len(np.unique(expected)) >= 4
    opened = open_backend(path, {'input_width': WIDTH, 'input_height': HEIGHT}, backend, 'cpu',
                          preset='imagenet')
    differs = opened.infer(frame) != expected
    assert not (differs & ~ambiguous_pixels(scores, 1e-2)).any()
    # The same frame as RGB, and the description given as BGR network order: the same map.
    np.testing.assert_array_equal(opened.infer(frame[:, :, ::-1].copy(), 'rgb8'),
                                  opened.infer(frame))
    # Without the std (the old single-scale approximation) the map really differs.
    plain = open_backend(path, {'input_width': WIDTH, 'input_height': HEIGHT,
                                'image_mean': IMAGENET_MEAN}, backend, 'cpu')
    assert (plain.infer(frame) != expected).mean() > 0.01


@pytest.mark.parametrize('backend', INSTALLED)
def test_bgr_channel_order_takes_the_mean_in_rgb_order(scores_model, backend):
    frame = make_frame(WIDTH, HEIGHT, seed=22)
    mean_rgb = (10.0, 50.0, 90.0)
    opened = open_backend(scores_model, {'input_width': WIDTH, 'input_height': HEIGHT,
                                         'rescale_factor': 1.0, 'channel_order': 'BGR',
                                         'image_mean': mean_rgb}, backend, 'cpu')
    # The network sees B, G, R minus (90, 50, 10): the red mean stays with the red channel.
    expected = expected_class_map(frame, 5, width=WIDTH, height=HEIGHT, swap_rb=False,
                                  mean=mean_rgb[::-1])
    np.testing.assert_array_equal(opened.infer(frame), expected)


# --- outputs: by name, declared layouts, clear refusals ---------------------------------------

@pytest.mark.parametrize('backend', INSTALLED)
def test_the_first_output_by_default_and_a_named_one_on_every_backend(tmp_path, backend):
    path = make_two_output_model(tmp_path / 'two.onnx', 4)
    frame = make_frame(WIDTH, HEIGHT, seed=23)
    size = {'input_width': WIDTH, 'input_height': HEIGHT, 'rescale_factor': 1.0}
    opened = open_backend(path, size, backend, 'cpu')
    assert opened.output_names == ('out', 'aux') and opened.description.output_name == 'out'
    outputs = opened.forward(opened.prepare(frame))
    assert list(outputs) == ['out', 'aux']
    expected = expected_class_map(frame, 4, width=WIDTH, height=HEIGHT)
    np.testing.assert_array_equal(opened.infer(frame), expected)
    aux = open_backend(path, {**size, 'output_name': 'aux'}, backend, 'cpu')
    # aux holds the classes in reverse order.
    aux_expected = np.argmax(reference_scores(frame, 4, width=WIDTH, height=HEIGHT)[::-1],
                             axis=0)
    np.testing.assert_array_equal(aux.infer(frame), aux_expected)
    assert (aux_expected != expected).mean() > 0.1
    with pytest.raises(ModelError, match="'out', 'aux'|out, aux") as raised:
        open_backend(path, {**size, 'output_name': 'logits'}, backend, 'cpu')
    assert raised.value.parameter == 'output_name'


@pytest.mark.parametrize('backend', INSTALLED)
def test_nhwc_model_declared_nhwc_matches_the_reference(tmp_path, backend):
    path = make_nhwc_model(tmp_path / 'nhwc.onnx', 4, width=WIDTH, height=HEIGHT)
    frame = make_frame(80, 50, seed=24)
    expected = expected_class_map(frame, 4, width=WIDTH, height=HEIGHT)
    try:
        opened = open_backend(path, {'rescale_factor': 1.0, 'output_layout': 'NHWC'}, backend,
                              'cpu')
    except ModelError as error:  # OpenCV DNN 4.x may not run the transposes: refused clearly
        assert backend == 'opencv' and error.parameter == 'backend', error
        return
    assert opened.input_shape == (1, HEIGHT, WIDTH, 3)
    assert opened.description.input_layout == 'NHWC'
    np.testing.assert_array_equal(opened.infer(frame), expected)


def test_nhwc_scores_read_as_nchw_are_refused_naming_output_layout(tmp_path):
    path = make_nhwc_model(tmp_path / 'nhwc.onnx', 4, width=WIDTH, height=HEIGHT)
    with pytest.raises(ModelError, match='set output_layout NHWC') as raised:
        open_backend(path, {}, INSTALLED[-1], 'cpu')
    assert raised.value.parameter == 'output_layout'
    assert '(1, 32, 64, 4)' in str(raised.value)


@pytest.mark.parametrize('backend', INSTALLED)
def test_a_detection_output_is_refused_naming_what_was_found(tmp_path, backend):
    path = make_detection_shaped_model(tmp_path / 'yolo.onnx', width=WIDTH, height=HEIGHT)
    with pytest.raises(ModelError) as raised:
        open_backend(path, {}, backend, 'cpu')
    assert raised.value.parameter == 'output_layout'
    assert "output 'output0'" in str(raised.value)
    assert f'(1, 116, {WIDTH * HEIGHT})' in str(raised.value)
    assert 'detection/instance output, not (1, C, H, W) scores' in str(raised.value)


def test_instance_tasks_load_and_run_without_the_semantic_checks(tmp_path):
    path = make_detection_shaped_model(tmp_path / 'yolo.onnx', width=WIDTH, height=HEIGHT)
    for backend in INSTALLED:
        opened = open_backend(path, {'task': 'yolo_seg'}, backend, 'cpu')
        assert opened.task == 'yolo_seg' and opened.num_classes == 0
        outputs = opened.forward(opened.prepare(make_frame(WIDTH, HEIGHT)))
        assert outputs['output0'].shape == (1, 116, WIDTH * HEIGHT)
    # The segmenter decodes YOLO-seg (test_core_segmenter_instances.py); this model has no
    # prototypes output, so it is refused at start naming its outputs.
    with pytest.raises(ModelError, match='YOLO-seg model has 2 outputs') as raised:
        Segmenter(SegmenterConfig(path, task='yolo_seg', backend=INSTALLED[-1]))
    assert raised.value.parameter == 'model_path'


# --- OpenCV: external data, and auto going on -------------------------------------------------

def test_external_data_is_refused_by_opencv_and_auto_goes_on(tmp_path):
    path = save_with_external_data(make_scores_model(tmp_path / 'one.onnx', 4),
                                   tmp_path / 'external.onnx')
    assert os.path.exists(path + '.data') and inspect_model(path).external_data
    with pytest.raises(ModelError, match='external data') as raised:
        open_backend(path, {'input_width': WIDTH, 'input_height': HEIGHT}, 'opencv')
    assert raised.value.parameter == 'backend'
    others = runtimes_or_skip(ONNX_RUNTIMES, 'that another backend runs external data')
    frame = make_frame(WIDTH, HEIGHT, seed=25)
    for backend in others:
        opened = open_backend(path, {'input_width': WIDTH, 'input_height': HEIGHT,
                                     'rescale_factor': 1.0}, backend, 'cpu')
        np.testing.assert_array_equal(opened.infer(frame),
                                      expected_class_map(frame, 4, width=WIDTH, height=HEIGHT))


def test_a_model_that_crashes_opencv_is_refused_and_this_process_lives(tmp_path):
    path = make_opencv_crashing_model(tmp_path / 'crash.onnx')
    with pytest.raises(ModelError, match='SIGFPE') as raised:
        open_backend(path, {}, 'opencv')
    assert raised.value.parameter == 'backend' and path in str(raised.value)
    assert 'this one is unharmed' in str(raised.value)
    # Refused again from the cached probe result, at once.
    with pytest.raises(ModelError, match='SIGFPE'):
        open_backend(path, {}, 'opencv')
