"""
The model options, each defined once: its name, CLI flag, type, default, choices and help.

One name serves three places: the :class:`~seg_ros.core.segmenter.SegmenterConfig` field, the
node parameter (``seg_ros/ros/parameters.py``) and, for the options that override the model
description, the :class:`~seg_ros.core.model.description.ModelDescription` key (sidecar file,
ONNX metadata). Only the command line spells it otherwise (``--width`` for ``input_width``),
and that spelling is here too, so ``seg-ros segment`` and ``seg-ros bag`` build their flags from
:data:`MODEL_OPTIONS` and name them in their errors (:mod:`seg_ros.offline.model_options`).

The description keys with no option (:data:`DESCRIPTION_ONLY_KEYS`) come only from a sidecar or
the model's metadata. ``test/test_options.py`` checks that every description key is one or the
other and that the node's parameter table agrees with this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seg_ros.core.model.description import (CHANNEL_ORDERS, INPUT_LAYOUTS, OUTPUT_LAYOUTS, PRESETS,
                                            TASKS, UPSAMPLING)

#: Inference runtimes; ``auto`` picks the fastest one really usable.
BACKENDS = ('auto', 'opencv', 'onnxruntime', 'openvino')
#: Devices; ``auto`` is CUDA where the runtime and the machine really have it.
TARGETS = ('auto', 'cuda', 'cpu')
#: ``f32``: every backend in float32, all agree; ``fast``: OpenVINO bf16 / f16 where it can.
PRECISIONS = ('f32', 'fast')

#: Model description keys that only a sidecar or the model's metadata set (no option).
DESCRIPTION_ONLY_KEYS = ('resize', 'resample', 'postprocess', 'class_names', 'colors',
                         'size_divisor')


@dataclass(frozen=True)
class ModelOption:
    """
    One option of a model: the same name in the configuration, the node and the description.

    :ivar name: the SegmenterConfig field, node parameter and (``describes``) description key.
    :ivar flag: the command line's flag, '' where the CLI has none.
    :ivar kind: the type of a value (of each value of a list).
    :ivar default: the default ('' / 0 / () leave it to the model).
    :ivar help_text: the command line's help text.
    :ivar choices: the accepted values besides the default ('' where that is the default).
    :ivar many: a list of values (``nargs='+'``, a ROS array parameter).
    :ivar describes: it overrides the model description key of the same name.
    :ivar node: the node has a parameter of this name.
    :ivar metavar: the command line's name for a value.
    """

    name: str
    flag: str
    kind: type
    default: Any
    help_text: str
    choices: tuple[str, ...] = ()
    many: bool = False
    describes: bool = False
    node: bool = True
    metavar: str = ''


MODEL_OPTIONS: tuple[ModelOption, ...] = (
    ModelOption('model_path', '--model', str, '', 'network file (default: the embedded ENet)',
                metavar='FILE'),
    ModelOption('config_path', '--config', str, '',
                'second file of a two-file model: Caffe .prototxt, TensorFlow .pbtxt, '
                'Darknet .cfg', metavar='FILE'),
    ModelOption('classes_path', '--classes', str, '',
                'class names, one a line (default: the *classes.txt beside the model)',
                metavar='FILE'),
    ModelOption('colors_path', '--colors', str, '',
                "class colours, one 'R,G,B' a line (default: the *colors.txt beside the model)",
                metavar='FILE'),
    ModelOption('input_width', '--width', int, 0,
                "network input width (default: the model description's, the embedded ENet's "
                '512x256, else the size the model declares, else 1024x512); alone, the height '
                "keeps the model's aspect ratio",
                describes=True, metavar='W'),
    ModelOption('input_height', '--height', int, 0,
                "network input height; alone, the width keeps the model's aspect ratio",
                describes=True, metavar='H'),
    ModelOption('preset', '--preset', str, '',
                'imagenet: x/255, RGB, ImageNet mean/std (torchvision, timm, HuggingFace); '
                "unit: x/255, RGB (ENet). Default: the model description's (sidecar, metadata)",
                choices=tuple(PRESETS)),
    ModelOption('rescale_factor', '--rescale-factor', float, 0.0,
                'pixel (0-255) multiplier: input = (pixel * rescale_factor - mean) / std '
                '(default 1/255)', describes=True, metavar='F'),
    ModelOption('image_mean', '--mean', float, (), 'mean after rescaling, R G B (or one value)',
                many=True, describes=True, metavar='M'),
    ModelOption('image_std', '--std', float, (), 'std after the mean, R G B (or one value)',
                many=True, describes=True, metavar='S'),
    ModelOption('channel_order', '--channel-order', str, '',
                "channel order the network takes (default: the model's, else RGB)",
                choices=CHANNEL_ORDERS, describes=True),
    ModelOption('input_layout', '--input-layout', str, '',
                "network input layout (default: as the model's input shape says)",
                choices=INPUT_LAYOUTS, describes=True),
    ModelOption('output_name', '--output-name', str, '',
                'output holding the scores or class ids (default: the first)', describes=True,
                metavar='NAME'),
    ModelOption('output_layout', '--output-layout', str, '',
                'NCHW / NHWC scores or class_ids (default: NCHW for a float output, class ids '
                'for an integer one)', choices=OUTPUT_LAYOUTS, describes=True),
    ModelOption('upsample', '--upsample', str, '',
                'low-resolution scores: bilinear before the argmax (default) or nearest after it',
                choices=UPSAMPLING, describes=True),
    ModelOption('task', '--task', str, '',
                "what the model is (default: the model description's; ultralytics YOLO-seg "
                'exports say so themselves, a Mask R-CNN export needs --task maskrcnn or a '
                'sidecar)', choices=TASKS, describes=True),
    ModelOption('num_classes', '', int, 0, 'class count of a class-id output', describes=True,
                node=False),
    ModelOption('backend', '--backend', str, 'auto',
                'inference runtime; auto: the fastest one really usable here',
                choices=BACKENDS),
    ModelOption('target', '--target', str, 'auto',
                'device; auto: CUDA where the runtime and the machine really have it, else the '
                'CPU', choices=TARGETS),
    ModelOption('require_cuda', '--require-cuda', bool, False,
                'fail (exit status 2) instead of running on the CPU when CUDA is unusable'),
    ModelOption('precision', '--precision', str, 'f32',
                'fast: OpenVINO may use bf16/f16 (faster, slightly different masks)',
                choices=PRECISIONS),
    ModelOption('confidence', '', bool, False,
                'class-id models (the argmax inside the network): add the probability behind '
                'the argmax as a network output, computed every frame, so a confidence map can '
                'be made (OpenVINO); models with scores make one without it'),
    ModelOption('instance_classes', '--instance-classes', str, (),
                'semantic models: classes whose connected components become instances (e.g. '
                'Car Person, any case); instance models: the classes kept (default: all)',
                many=True, metavar='CLASS'),
    ModelOption('score_threshold', '--score-threshold', float, 0.5,
                'instance models: keep detections scoring above (default 0.5)', metavar='SCORE'),
    ModelOption('nms_iou', '--nms-iou', float, 0.5,
                'YOLO-seg: suppress overlaps of one class above this IoU (0.5)', metavar='IOU'),
    ModelOption('max_instances', '--max-instances', int, 100,
                'at most this many instances a frame, best first (100)', metavar='N'),
    ModelOption('min_instance_area', '--min-instance-area', int, 100,
                'instance_classes: smallest component kept, in pixels (100)', metavar='PIXELS'),
)
MODEL_OPTIONS_BY_NAME: dict[str, ModelOption] = {option.name: option for option in MODEL_OPTIONS}
#: The configuration fields that override the model description, by the description's key.
DESCRIPTION_OPTIONS = tuple(option.name for option in MODEL_OPTIONS if option.describes)
