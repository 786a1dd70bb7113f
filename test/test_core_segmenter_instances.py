"""
The Segmenter with instances, on every installed backend.

Instance models by their task, instance_classes of semantic models (the embedded ENet on
generated scenes), and random-weight exports of the real architectures.
"""

import numpy as np
import pytest

from instance_models import make_mask_rcnn_model, make_yolo_seg_model, reference_yolo_seg
from instance_scenes import (assert_matches, FRAME_H, FRAME_W, rcnn_constants, RCNN_H, RCNN_W,
                             yolo_constants, YOLO_H, YOLO_W)
from runtimes import INSTALLED
from seg_ros.core.decode.instance_decoders import instances_from_class_map, InstanceSettings
from seg_ros.core.errors import ModelError
from seg_ros.core.segmenter import Segmenter, SegmenterConfig
from seg_ros.data import synthetic
from seg_ros.paths import default_label_paths, embedded_model_path

CAR = int(synthetic.CityscapesClass.CAR)


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp('segmenter_instances')


@pytest.fixture(scope='module')
def yolo_model(folder) -> str:
    return make_yolo_seg_model(folder / 'yolo.onnx', *yolo_constants(), width=YOLO_W,
                               height=YOLO_H)


@pytest.mark.parametrize('backend', INSTALLED)
def test_yolo_seg_model_gives_the_reference_instances_map_and_overlay(yolo_model, backend):
    segmenter = Segmenter(SegmenterConfig(yolo_model, backend=backend, max_instances=10))
    assert segmenter.task == 'yolo_seg' and segmenter.makes_instances
    assert segmenter.labels.names == ('thing0', 'thing1', 'thing2')  # ultralytics' names
    frame = np.full((FRAME_H, FRAME_W, 3), 90, np.uint8)
    result = segmenter.run(frame, encoding='bgr8', alpha=0.5)
    expected = reference_yolo_seg(*yolo_constants(), FRAME_W, FRAME_H, YOLO_W, YOLO_H, 0.5, 0.5,
                                  10)
    assert_matches(result.instances, expected, (FRAME_H, FRAME_W))
    np.testing.assert_array_equal(result.instance_map, result.instances.instance_map())
    assert result.instance_map.dtype == np.uint16
    # The class map is the class of the instance on each pixel.
    classes = np.zeros((FRAME_H, FRAME_W), np.uint8)
    for index in range(len(result.instances)):
        classes[result.instance_map == result.instances.ids[index]] = \
            result.instances.class_id[index]
    np.testing.assert_array_equal(result.class_map_full, classes)
    assert result.class_map.shape == (YOLO_H, YOLO_W)
    painted = (result.overlay != 90).any(axis=2)
    assert painted[result.instance_map > 0].mean() > 0.95  # filled in the instance colours
    assert not painted[:, :3].any() or painted.mean() < 0.6


@pytest.mark.parametrize('backend', INSTALLED)
def test_mask_rcnn_model_by_task_and_class_filter(folder, backend):
    model = make_mask_rcnn_model(folder / f'rcnn_{backend}.onnx', *rcnn_constants(),
                                 width=RCNN_W, height=RCNN_H)
    classes = folder / 'coco.txt'
    classes.write_text(''.join(f'c{index}\n' for index in range(20)))
    segmenter = Segmenter(SegmenterConfig(model, backend=backend, task='maskrcnn',
                                          classes_path=str(classes), instance_classes=('C3',)))
    result = segmenter.run(np.zeros((80, 128, 3), np.uint8), encoding='rgb8')
    assert list(result.instances.class_id) == [3, 3]
    assert list(result.instances.score) == pytest.approx([0.95, 0.8])
    everything = Segmenter(SegmenterConfig(model, backend=backend, task='maskrcnn'))
    assert len(everything.labels.names) == 91  # torchvision's COCO ids by default
    assert len(everything.run(np.zeros((80, 128), np.uint8), encoding='mono8').instances) == 5


def test_unknown_instance_classes_and_bad_settings_are_refused(yolo_model):
    with pytest.raises(ModelError, match=r"instance_classes \['Tree'\] are not classes") as error:
        Segmenter(SegmenterConfig(yolo_model, instance_classes=('thing1', 'Tree')))
    assert error.value.parameter == 'instance_classes'
    segmenter = Segmenter(SegmenterConfig(yolo_model))
    with pytest.raises(ModelError, match='nms_iou'):
        segmenter.configure_instances((), 0.5, 2.0, 10, 0)
    assert segmenter.instance_settings.nms_iou == 0.5  # unchanged
    segmenter.configure_instances(('THING2',), 0.3, 0.5, 10, 0)
    assert segmenter.instance_settings.class_ids == (2,)


def test_instance_model_with_unexpected_outputs_is_refused_at_start(folder):
    detections, prototypes = yolo_constants()
    model = make_yolo_seg_model(folder / 'bad.onnx', detections, prototypes[:, :, :8, :8],
                                width=YOLO_W, height=YOLO_H)
    with pytest.raises(ModelError, match=r"output 'output1' has shape \[1, 32, 8, 8\]"):
        Segmenter(SegmenterConfig(model))


# --- connected components with the embedded model ---------------------------------------------


@pytest.fixture(scope='module')
def embedded_with_cars() -> Segmenter:
    model = embedded_model_path()
    classes, colors = default_label_paths(model)
    return Segmenter(SegmenterConfig(model, classes_path=classes, colors_path=colors,
                                     instance_classes=('Car',), min_instance_area=500))


@pytest.mark.parametrize('scene', [0, 1, 3, 4])  # held-out scenes with separate cars
def test_embedded_model_finds_each_car_of_generated_scenes(embedded_with_cars, scene):
    bgr, truth = synthetic.render_scene(synthetic.held_out_rng(scene), 1024, 512)
    result = embedded_with_cars.run(bgr, encoding='bgr8')
    # The generator's exact class map: each car of at least 2000 pixels, seen on its own.
    cars = instances_from_class_map(truth, InstanceSettings(class_ids=(CAR,),
                                                            min_instance_area=2000))
    assert len(cars) >= 1
    assert (result.instances.class_id == CAR).all()
    for car in range(len(cars)):
        overlaps = [(cars.masks[car] & found).sum() / (cars.masks[car] | found).sum()
                    for found in result.instances.masks]
        best = int(np.argmax(overlaps))
        assert overlaps[best] > 0.5, f'car {car}: best IoU {overlaps[best]:.2f}'
        np.testing.assert_allclose(result.instances.xyxy[best], cars.xyxy[car], atol=40)
    # Instances are outlined on the semantic overlay, not refilled.
    assert result.instance_map.max() == len(result.instances)


# --- random-weight exports of the real architectures (fixtures in conftest.py) ----------------


def check_instances(result, frame_shape, max_instances):
    instances = result.instances
    height, width = frame_shape
    assert len(instances) <= max_instances
    np.testing.assert_array_equal(instances.ids, np.arange(1, len(instances) + 1))
    assert (instances.xyxy[:, 0] >= 0).all() and (instances.xyxy[:, 2] <= width).all()
    assert (instances.xyxy[:, 1] >= 0).all() and (instances.xyxy[:, 3] <= height).all()
    for (u0, v0, u1, v1), mask in zip(instances.regions(), instances.masks):
        outside = mask.copy()
        outside[v0:v1, u0:u1] = False
        assert not outside.any()
    assert result.instance_map.shape == frame_shape


def open_or_skip(config: SegmenterConfig) -> Segmenter:
    """
    Open the model; skip where the runtime refuses it, the refusal naming the model.

    Measured: OpenCV DNN and OpenVINO both refuse torchvision's Mask R-CNN export.
    """
    try:
        return Segmenter(config)
    except ModelError as error:
        if config.backend in ('opencv', 'openvino') and error.parameter in ('backend',
                                                                            'model_path'):
            assert config.model_path in str(error)
            pytest.skip(f'{config.backend} cannot run this export: {error}')
        raise


@pytest.mark.parametrize('backend', INSTALLED)
def test_random_weight_mask_rcnn_export_decodes_on_every_backend(mask_rcnn_export, backend):
    segmenter = open_or_skip(SegmenterConfig(mask_rcnn_export, backend=backend, task='maskrcnn',
                                             score_threshold=0.0, max_instances=7))
    frame = synthetic.render_scene(np.random.default_rng(4), 400, 300)[0]
    result = segmenter.run(frame, encoding='bgr8')
    check_instances(result, (300, 400), 7)
    assert len(result.instances) == 7  # random weights: every box scores about 1/91
    assert result.instances.masks.any()


def test_random_weight_mask_rcnn_export_with_auto_runs_where_it_can(mask_rcnn_export):
    segmenter = Segmenter(SegmenterConfig(mask_rcnn_export, task='maskrcnn',
                                          score_threshold=0.0, max_instances=3))
    result = segmenter.run(np.zeros((240, 320, 3), np.uint8), encoding='bgr8')
    check_instances(result, (240, 320), 3)
    assert segmenter.backend.name in INSTALLED


@pytest.mark.parametrize('backend', INSTALLED)
def test_random_weight_yolo_seg_format_export_decodes_on_every_backend(yolo_export, backend):
    segmenter = open_or_skip(SegmenterConfig(yolo_export, backend=backend,
                                             score_threshold=0.3, max_instances=15))
    assert segmenter.task == 'yolo_seg' and segmenter.labels.names == ('person', 'car', 'dog')
    frame = synthetic.render_scene(np.random.default_rng(5), 320, 200)[0]
    result = segmenter.run(frame, encoding='bgr8')
    check_instances(result, (200, 320), 15)
    assert len(result.instances) >= 1


@pytest.mark.parametrize('backend', INSTALLED)
def test_a_frame_without_detections_gives_every_output(yolo_model, backend):
    # A real model whose every candidate is below the threshold: the frame still gives the class
    # map, colour mask, overlay (the frame itself, nothing drawn), no instances, a zero map.
    segmenter = Segmenter(SegmenterConfig(yolo_model, backend=backend, score_threshold=0.999))
    frame = np.full((FRAME_H, FRAME_W, 3), 90, np.uint8)
    for _ in range(2):
        result = segmenter.run(frame, encoding='bgr8', alpha=0.5)
        assert len(result.instances) == 0
        assert result.instance_map.shape == (FRAME_H, FRAME_W)
        assert result.instance_map.dtype == np.uint16 and not result.instance_map.any()
        assert not result.class_map_full.any() and result.class_map.shape == (YOLO_H, YOLO_W)
        assert result.color_mask is not None and result.overlay.shape == frame.shape
        np.testing.assert_array_equal(result.overlay[result.color_mask.max(axis=2) == 0],
                                      frame[result.color_mask.max(axis=2) == 0])
        assert result.instances.to_json(segmenter.labels.names) == {'instances': []}
    # The same segmenter with detections again on the next frame (a stream that alternates).
    segmenter_with = Segmenter(SegmenterConfig(yolo_model, backend=backend, max_instances=10))
    assert len(segmenter_with.run(frame, encoding='bgr8').instances) > 0
