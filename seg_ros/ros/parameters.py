"""
The segmentation node's parameters, as one declarative table.

The table builds the ROS parameter declarations (with descriptors: description, ranges,
read-only), the checks of every value (:meth:`ParamSpec.check`, a parameter's own rule in its
``validate``) and what a runtime change needs (``change``); :mod:`seg_ros.ros.parameter_table`
declares, reads and checks any such table on a node, so declarations, validation, the launch
files and the README cannot drift apart.
"""

from dataclasses import dataclass
from typing import Any, Callable

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

from seg_ros.core.model.description import (CHANNEL_ORDERS, INPUT_LAYOUTS, OUTPUT_LAYOUTS, PRESETS,
                                            TASKS, UPSAMPLING)
# The model's parameters are seg_ros.core.options.MODEL_OPTIONS (names, types, defaults,
# choices), which the CLI's flags come from too; test/test_options.py checks they agree.
from seg_ros.core.options import BACKENDS, PRECISIONS, TARGETS
from seg_ros.core.track.settings import TRACK_OPTIONS

COLOR_ENCODINGS = ('rgb8', 'bgr8')
OUTPUT_RESOLUTIONS = ('input', 'model')
INPUT_QOS_PROFILES = ('sensor_data', 'reliable')
OUTPUT_QOS_PROFILES = ('reliable', 'best_effort')
INPUT_TRANSPORTS = ('raw', 'compressed')
MIN_INPUT_SIZE, MAX_INPUT_SIZE = 16, 8192

# What a runtime change of a parameter needs besides its new value (ParamSpec.change); a
# parameter without one is read where it is used, at every frame.
NETWORK = 'network'            # a new network, built before it replaces the old one
INSTANCES = 'instances'        # new instance settings, between two frames
CLASS_MASKS = 'class_masks'    # the ~/mask/<class> publishers made again
CLASS_LISTS = 'class_lists'    # names checked against the model's classes
TRACKS = 'tracks'              # the camera's tracker made again: its tracks start afresh


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its name, default, meaning and the values it accepts."""

    name: str
    default: Any
    description: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    read_only: bool = False
    #: What a runtime change needs: NETWORK, INSTANCES, CLASS_MASKS, CLASS_LISTS, TRACKS or ''.
    change: str = ''
    #: Element type of an array parameter (float or str); its default may then be empty.
    item_type: type | None = None
    # Declared with dynamic typing: an empty list default, integer or float lists accepted.
    dynamic_typing: bool = False
    #: This parameter's own rule: returns why a value (already in range and choices) is refused.
    validate: Callable[[Any], str | None] | None = None

    @property
    def rebuilds_network(self) -> bool:
        """Return whether a runtime change rebuilds the network."""
        return self.change == NETWORK

    def descriptor(self) -> ParameterDescriptor:
        """Return the ROS parameter descriptor: type, ranges, read-only flag."""
        text = self.description
        if self.choices:
            text += ' One of: ' + _choices_text(self.choices) + '.'
        if self.rebuilds_network:
            text += ' Changing it at runtime rebuilds the network.'
        descriptor = ParameterDescriptor(
            name=self.name, type=self.parameter_type(), description=text,
            read_only=self.read_only, dynamic_typing=self.dynamic_typing)
        if self.choices:
            descriptor.additional_constraints = 'one of: ' + _choices_text(self.choices)
        if self.minimum is not None and isinstance(self.default, bool) is False:
            if isinstance(self.default, int):
                descriptor.integer_range = [IntegerRange(
                    from_value=int(self.minimum), to_value=int(self.maximum), step=1)]
            elif isinstance(self.default, float):
                descriptor.floating_point_range = [FloatingPointRange(
                    from_value=float(self.minimum), to_value=float(self.maximum), step=0.0)]
        return descriptor

    def parameter_type(self) -> int:
        """Return the ROS parameter type (a ParameterType constant)."""
        if self.item_type is str:
            return ParameterType.PARAMETER_STRING_ARRAY
        if self.item_type is float:
            return ParameterType.PARAMETER_DOUBLE_ARRAY
        return _parameter_type(self.default)

    def check(self, value: Any) -> str | None:
        """Return why ``value`` is not acceptable for this parameter, or None when it is."""
        if self.choices and value not in self.choices:
            return f'{self.name}={value!r} is not one of {_choices_text(self.choices)}'
        if self.minimum is not None and not self.minimum <= value <= self.maximum:
            return f'{self.name}={value!r} is outside [{self.minimum}, {self.maximum}]'
        reason = self.validate(value) if self.validate is not None else None
        if reason is None and self.item_type is str and len(set(value)) != len(value):
            return f'{self.name}={list(value)!r} names an entry twice'
        return reason

    def accept(self, value: Any) -> Any:
        """
        Return the value this parameter takes for ``value``: unset (None) is the default.

        :raises ValueError: why the value is refused (:meth:`check`).
        """
        value = self.default if value is None else value
        reason = self.check(value)
        if reason:
            raise ValueError(reason)
        return value


def _choices_text(choices: tuple[str, ...]) -> str:
    return ', '.join(choice or "''" for choice in choices)


def _parameter_type(default: Any) -> int:
    if isinstance(default, bool):
        return ParameterType.PARAMETER_BOOL
    if isinstance(default, int):
        return ParameterType.PARAMETER_INTEGER
    if isinstance(default, float):
        return ParameterType.PARAMETER_DOUBLE
    if isinstance(default, str):
        return ParameterType.PARAMETER_STRING
    if isinstance(default, list):
        return ParameterType.PARAMETER_DOUBLE_ARRAY
    raise TypeError(f'no ROS parameter type for default {default!r}')


# ---- the rules of single parameters (ParamSpec.validate) -------------------------------------
def _network_size(name: str) -> Callable[[Any], str | None]:
    def reason(value: Any) -> str | None:
        if 0 < value < MIN_INPUT_SIZE:
            return (f'{name}={value!r} must be 0 (from the model) or {MIN_INPUT_SIZE} to '
                    f'{MAX_INPUT_SIZE}')
        return None
    return reason


def _channel_list(name: str, zero_allowed: bool = True) -> Callable[[Any], str | None]:
    def reason(value: Any) -> str | None:
        values = [] if value is None else value  # a params file's [] arrives unset
        if not (isinstance(values, (list, tuple)) and len(values) in (0, 1, 3) and
                all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)):
            return (f'{name}={value!r} must be [] (from the model) or 1 or 3 numbers, '
                    'R, G, B order')
        if not zero_allowed and 0 in list(values):
            return f'{name}={list(values)!r} holds a zero'
        return None
    return reason


def _depth_range(value: Any) -> str | None:
    values = list(value or ())
    if len(values) != 2 or not 0.0 <= values[0] < values[1]:
        return f'depth_range={values!r} must be [min, max] metres with 0 <= min < max'
    return None


def _grid_size(value: Any) -> str | None:
    values = list(value or ())
    if len(values) != 2 or not all(0.0 < size <= 1000.0 for size in values):
        return f'grid_size={values!r} must be [x, y] metres, each in (0, 1000]'
    return None


PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec('model_path', '',
              'Network file read by the selected backend (ONNX, Torch7 .net, Caffe, TensorFlow). '
              'Empty: the embedded ENet trained by seg_ros on synthetic street scenes.',
              change=NETWORK),
    ParamSpec('config_path', '',
              'Network description of a two-file model, read with model_path by OpenCV DNN: '
              'Caffe .prototxt (required for .caffemodel), TensorFlow .pbtxt (optional for .pb), '
              'Darknet .cfg (required for .weights). Empty for single-file models (ONNX, Torch7).',
              change=NETWORK),
    ParamSpec('classes_path', '',
              'Class names, one a line. Empty: classes.txt beside the model, else class_<i>.',
              change=NETWORK),
    ParamSpec('colors_path', '',
              'Class colours, one R,G,B line a class. Empty: colors.txt beside the model, '
              'else a generated palette.',
              change=NETWORK),
    ParamSpec('input_width', 0,
              'Network input width in pixels (frames are resized to it). 0: from the model '
              'description, else the size the model declares, else 1024x512.',
              minimum=0, maximum=MAX_INPUT_SIZE, change=NETWORK,
              validate=_network_size('input_width')),
    ParamSpec('input_height', 0, 'Network input height in pixels; 0 with input_width 0.',
              minimum=0, maximum=MAX_INPUT_SIZE, change=NETWORK,
              validate=_network_size('input_height')),
    ParamSpec('preset', '',
              'Pre-processing preset: imagenet (x/255, RGB, ImageNet mean and std: torchvision, '
              'timm, HuggingFace) or unit (x/255, RGB: ENet). Empty: the model description '
              '(sidecar, metadata). The parameters below override it.',
              choices=('',) + tuple(PRESETS), change=NETWORK),
    ParamSpec('rescale_factor', 0.0,
              'Pixel (0-255) multiplier applied first: input = (pixel * rescale_factor - '
              'image_mean) / image_std. 0: from the model (default 1/255).',
              minimum=0.0, maximum=1e3, change=NETWORK),
    ParamSpec('image_mean', [],
              'Mean subtracted after rescaling, 3 values in R, G, B order (or 1 for all). '
              '[]: from the model (default 0).',
              change=NETWORK, dynamic_typing=True, validate=_channel_list('image_mean')),
    ParamSpec('image_std', [],
              'Divisor after the mean, 3 values in R, G, B order (or 1). []: from the model '
              '(default 1).',
              change=NETWORK, dynamic_typing=True,
              validate=_channel_list('image_std', zero_allowed=False)),
    ParamSpec('channel_order', '',
              'Channel order the network takes. Empty: from the model (default RGB).',
              choices=('',) + CHANNEL_ORDERS, change=NETWORK),
    ParamSpec('input_layout', '',
              'Network input layout. Empty: as the input shape of the model says.',
              choices=('',) + INPUT_LAYOUTS, change=NETWORK),
    ParamSpec('output_name', '',
              'Network output holding the scores or class ids. Empty: the first output of the '
              'model (the same on every backend).',
              change=NETWORK),
    ParamSpec('output_layout', '',
              'Layout of that output: NCHW or NHWC scores, or class_ids. Empty: from the model '
              '(default NCHW scores for float outputs, class ids for integer ones).',
              choices=('',) + OUTPUT_LAYOUTS, change=NETWORK),
    ParamSpec('upsample', '',
              'Scores smaller than the input: bilinear (resize the scores, then argmax) or '
              'nearest (argmax, then resize the class map). Empty: from the model (bilinear).',
              choices=('',) + UPSAMPLING, change=NETWORK),
    ParamSpec('task', '',
              'Model task: semantic, maskrcnn or yolo_seg. Empty: from the model (semantic).',
              choices=('',) + TASKS, change=NETWORK),
    ParamSpec('backend', 'auto',
              'Inference runtime; auto picks the fastest one really usable on this machine.',
              choices=BACKENDS, change=NETWORK),
    ParamSpec('target', 'auto',
              'Device; auto uses CUDA when the runtime and the machine really have it.',
              choices=TARGETS, change=NETWORK),
    ParamSpec('require_cuda', False,
              'Fail instead of falling back to the CPU when CUDA is asked for but unusable.',
              change=NETWORK),
    ParamSpec('precision', 'f32',
              'Inference precision: f32 (all backends agree), or fast: lower precision where the '
              'hardware has it (OpenVINO bf16 on CPU, f16 on GPU; an FP16 TensorRT engine with '
              'onnxruntime; slightly different masks, faster). Other backends run f32. The '
              'diagnostics name the precision used.',
              choices=PRECISIONS, change=NETWORK),
    ParamSpec('confidence', False,
              'Class-id models (the argmax inside the network, as the Torch7 ENet runs once '
              'converted): add the probability behind the argmax as a network output so that '
              '~/confidence is published (OpenVINO); it is computed every frame, subscribed or '
              'not (about 6 % more CPU). Models that output scores publish ~/confidence without '
              'it, computing it only on frames it has a subscriber.',
              change=NETWORK),
    ParamSpec('alpha', 0.5, 'Overlay weight of the mask: (1 - alpha) image + alpha mask.',
              minimum=0.0, maximum=1.0),
    ParamSpec('publish_class_map', True, 'Publish ~/class_map (mono8 class indices).'),
    ParamSpec('publish_color_mask', True, 'Publish ~/color_mask.'),
    ParamSpec('publish_overlay', True, 'Publish ~/overlay.'),
    ParamSpec('output_resolution', 'input',
              'Size of ~/class_map and ~/color_mask: the input image size, or the network size '
              '(then ~/camera_info is published, scaled from the input camera_info).',
              choices=OUTPUT_RESOLUTIONS),
    ParamSpec('color_encoding', 'rgb8', 'Encoding of ~/color_mask and ~/overlay.',
              choices=COLOR_ENCODINGS),
    ParamSpec('class_masks', [],
              'Class names (of the model, any case) to publish as binary masks on '
              '~/mask/<name> (mono8, 255 where the class is, else 0; lower-case name, other '
              "characters than letters and digits become '_'), e.g. ['Road', 'Sidewalk'].",
              item_type=str, change=CLASS_MASKS),
    ParamSpec('jpeg_quality', 80,
              'JPEG quality (1-100) of ~/overlay/compressed and ~/color_mask/compressed.',
              minimum=1, maximum=100),
    ParamSpec('png_level', 1,
              'PNG compression level (0-9) of ~/class_map/compressed (lossless whatever the '
              'level; higher is smaller and slower).',
              minimum=0, maximum=9),
    ParamSpec('input_transport', 'raw',
              'How the camera is read, as image_transport names it: raw (sensor_msgs/Image on '
              'image) or compressed (sensor_msgs/CompressedImage, JPEG or PNG, on '
              'image/compressed).',
              choices=INPUT_TRANSPORTS, read_only=True),
    ParamSpec('input_qos', 'sensor_data',
              'Image subscription QoS: sensor_data (best effort) or reliable.',
              choices=INPUT_QOS_PROFILES, read_only=True),
    ParamSpec('input_depth', 1, 'Image subscription queue depth.',
              minimum=1, maximum=100, read_only=True),
    ParamSpec('output_qos', 'reliable', 'QoS reliability of the image outputs.',
              choices=OUTPUT_QOS_PROFILES, read_only=True),
    ParamSpec('output_depth', 1, 'Queue depth of the image outputs.',
              minimum=1, maximum=100, read_only=True),
    ParamSpec('diagnostics_period', 1.0, 'Seconds between /diagnostics messages.',
              minimum=0.1, maximum=60.0, read_only=True),
    ParamSpec('stale_timeout', 2.0,
              'Seconds without an input frame after which diagnostics report WARN.',
              minimum=0.1, maximum=3600.0),
)

# Instances (seg_ros.core.decode.instance_decoders): applied between two frames, no rebuild.
INSTANCE_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec('instance_classes', [],
              'Semantic models: the classes whose connected components become instances, e.g. '
              "['Car', 'Person'] ([]: none). Instance models (task maskrcnn, yolo_seg): the "
              'classes kept ([]: all).', item_type=str, change=INSTANCES),
    ParamSpec('score_threshold', 0.5, 'Instance models: keep detections scoring above this.',
              minimum=0.0, maximum=1.0, change=INSTANCES),
    ParamSpec('nms_iou', 0.5,
              'YOLO-seg: suppress a detection overlapping a better one of its class by more '
              'than this IoU.', minimum=0.0, maximum=1.0, change=INSTANCES),
    ParamSpec('max_instances', 100, 'At most this many instances a frame, best first.',
              minimum=1, maximum=65535, change=INSTANCES),
    ParamSpec('min_instance_area', 100,
              'instance_classes of a semantic model: smallest connected component kept, in '
              'input-image pixels.', minimum=0, maximum=100_000_000, change=INSTANCES),
    ParamSpec('publish_instances', True,
              'Publish ~/instances (vision_msgs/Detection2DArray; needs vision_msgs).'),
    ParamSpec('publish_instance_map', True, 'Publish ~/instance_map (mono16 instance ids).'),
)

# Object tracks (seg_ros.frame_tracks): a change makes the camera's tracker again.
TRACK_PARAMETERS: tuple[ParamSpec, ...] = tuple(
    ParamSpec(option.name, option.default, option.help_text,
              minimum=None if isinstance(option.default, bool) else option.minimum,
              maximum=None if isinstance(option.default, bool) else option.maximum,
              change=TRACKS)
    for option in TRACK_OPTIONS)

# Depth, points and the freespace grid (seg_ros.ros.depth_outputs).
DEPTH_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec('depth_topic', '',
              'Depth image registered to the colour camera (16UC1 millimetres or 32FC1 metres, '
              "REP 118), e.g. '/camera/aligned_depth_to_color/image_raw'. Empty: no depth, no "
              '~/points; ~/freespace then intersects pixel rays with the ground.',
              read_only=True),
    ParamSpec('depth_max_skew', 0.0,
              'Largest stamp difference (seconds) between a colour frame and its depth; 0: the '
              'stamps must be equal. Unpaired frames get no points (counted in /diagnostics).',
              minimum=0.0, maximum=1.0),
    ParamSpec('depth_range', [0.1, 20.0],
              'Valid depth [min, max] in metres; 0, NaN and values outside it give no point.',
              item_type=float, validate=_depth_range),
    ParamSpec('cloud_stride', 2,
              'One point (and one ground ray) every cloud_stride columns and rows.',
              minimum=1, maximum=64),
    ParamSpec('cloud_organized', False,
              "~/points organized and pixel-aligned with ~/class_map (what Nav2's semantic "
              'segmentation layer reads): height x width of the class map, point (r, c) from '
              'class-map pixel (c, r) with the depth sampled there, x y z NaN where the depth '
              'is invalid, is_dense false; cloud_stride then does not apply to ~/points.'),
    ParamSpec('min_object_points', 10,
              'Valid depth points an instance needs for its entry in ~/objects.',
              minimum=1, maximum=100_000),
    ParamSpec('obstacle_classes', [],
              'Classes (names, any case, or ids) of ~/obstacle_points, e.g. '
              "['car', 'person']. []: ~/obstacle_points is not published.", item_type=str,
              change=CLASS_LISTS),
    ParamSpec('freespace_classes', [],
              'Classes (names or ids) that are free space in ~/freespace, e.g. '
              "['road', 'sidewalk']; cells seeing another class are 100. []: no ~/freespace.",
              item_type=str, change=CLASS_LISTS),
    ParamSpec('grid_frame', 'base_link',
              'Frame of ~/freespace, its ground at z = 0; the camera pose comes from tf.'),
    ParamSpec('grid_resolution', 0.1, 'Metres a cell of ~/freespace.',
              minimum=0.01, maximum=10.0),
    ParamSpec('grid_size', [10.0, 10.0],
              'Extent [x, y] of ~/freespace in metres: from the robot, x ahead, y centred.',
              item_type=float, validate=_grid_size),
    ParamSpec('tf_timeout', 0.05,
              'Seconds to wait for the camera pose at the image stamp before the grid is '
              'skipped for that frame (counted in /diagnostics).', minimum=0.0, maximum=1.0),
)
PARAMETERS = PARAMETERS + INSTANCE_PARAMETERS + TRACK_PARAMETERS + DEPTH_PARAMETERS

PARAMETERS_BY_NAME: dict[str, ParamSpec] = {spec.name: spec for spec in PARAMETERS}
