"""
The segmentation node: camera images in, class map, colour mask, overlay and class metadata out.

Topics (relative names, remap them): subscribes ``image`` (or ``image/compressed``) and
``camera_info``; publishes ``~/class_map``, ``~/color_mask``, ``~/overlay``, each also as
``<topic>/compressed``, ``~/mask/<class>``, ``~/camera_info`` (only at model resolution),
``~/labels``, ``~/label_info`` (where vision_msgs is installed) and ``/diagnostics``, and with
instances (an instance model, or ``instance_classes``) ``~/instance_map`` (mono16) and
``~/instances`` (vision_msgs/Detection2DArray, where vision_msgs is installed); with depth or
``freespace_classes``, ``~/points``, ``~/obstacle_points`` and ``~/freespace``
(:mod:`seg_ros.ros.depth_outputs`).
Parameters: :mod:`seg_ros.ros.parameters`.
"""

import re
import sys
import threading
import time

import cv2
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header, String

try:  # vision_msgs is a ROS package (apt install ros-jazzy-vision-msgs), not on PyPI
    from vision_msgs.msg import (Detection2D, Detection2DArray, LabelInfo,
                                 ObjectHypothesisWithPose, VisionClass)
except ImportError as error:
    Detection2D = Detection2DArray = LabelInfo = ObjectHypothesisWithPose = VisionClass = None
    VISION_MSGS_ERROR = str(error)

from seg_ros.core.decode.instances import Instances
from seg_ros.core.latest_frame import LatestFrameSlot
from seg_ros.core.segmenter import DESCRIPTION_FIELDS, Segmenter, SegmenterConfig
from seg_ros.core.stats import DurationWindow, RateMeter, StageClock, StageProfile
from seg_ros.output_topics import class_mask_indices, IMAGE_OUTPUTS
from seg_ros.paths import default_label_paths, embedded_model_path
from seg_ros.ros import compressed, qos
from seg_ros.ros.depth_outputs import class_ids, DepthOutputs
from seg_ros.ros.image_conversion import (array_to_image, image_to_array, ImageConversionError,
                                          NODE_ENCODINGS, to_bgr8, to_rgb8)
from seg_ros.ros.parameters import PARAMETERS, PARAMETERS_BY_NAME
from seg_ros.ros.runner import events_executor, run_node, StartupError


class SharedNetwork:
    """
    One network for the camera nodes of one process: the first node loads it.

    Every node must be given the same network parameters (those that rebuild the network and
    the instance ones): a node that differs is refused at start-up, naming the parameter.
    """

    def __init__(self) -> None:
        """Hold no network yet."""
        self.segmenter: Segmenter | None = None
        self._values: dict = {}
        self._first = ''

    def segmenter_for(self, values: dict, namespace: str, build) -> Segmenter:
        """
        Return the shared network, built by ``build(values)`` for the first camera.

        :raises StartupError: a network parameter differs from the first camera's.
        """
        wanted = {name: values[name] for name in NETWORK_VALUES}
        if self.segmenter is None:
            self.segmenter, self._values, self._first = build(values), wanted, namespace
            return self.segmenter
        for name, value in wanted.items():
            if value != self._values[name]:
                raise StartupError(
                    f'parameter {name} of {namespace} is {value!r} but {self._first} has '
                    f'{self._values[name]!r}: the cameras of one process share one network')
        return self.segmenter


class UnsupportedEncoding(ImageConversionError):
    """An image whose encoding the node does not take."""


def _deserialise(data: bytes, message_type: type):
    """Return the message serialised in ``data``; raise ImageConversionError if it is not one."""
    try:
        return deserialize_message(data, message_type)
    except Exception as error:  # rclpy raises its own types for a message it cannot read
        raise ImageConversionError(f'cannot deserialise a {message_type.__name__} message of '
                                   f'{len(data)} bytes: {error}') from error


INSTANCE_VALUES = ('instance_classes', 'score_threshold', 'nms_iou', 'max_instances',
                   'min_instance_area')
WARN_THROTTLE_S = 5.0
# A frame's path in the worker (receive: deserialise, check, view; convert: to the colour
# encoding; segment: Segmenter.run; publish: the messages), and segment's own split.
FRAME_STAGES = ('receive', 'convert', 'segment', 'publish')
SEGMENT_STAGES = ('prepare', 'network', 'decode', 'render')
# What a network shared by several cameras fixes for all of them.
NETWORK_VALUES = tuple(spec.name for spec in PARAMETERS
                       if spec.rebuilds_network or spec.name in INSTANCE_VALUES)
# What varies between two rejections of one kind: sizes and quoted values.
_REJECTION_DETAILS = re.compile(r"\d+|'[^']*'")


def segmenter_config(values: dict) -> SegmenterConfig:
    """
    Turn parameter values into the segmenter's configuration, filling in the defaults.

    An empty ``model_path`` means the embedded model; empty label paths mean the single
    ``*classes.txt`` / ``*colors.txt`` beside the model, if there is one.
    """
    model_path = values['model_path'] or embedded_model_path()
    default_classes, default_colors = default_label_paths(model_path)
    description = {name: values[name] for name in DESCRIPTION_FIELDS if name in values}
    for name in ('image_mean', 'image_std'):
        # A params file's [] arrives as None (unset).
        description[name] = tuple(float(value) for value in description.get(name) or ())
    return SegmenterConfig(
        model_path=model_path, preset=values['preset'], backend=values['backend'],
        target=values['target'], require_cuda=values['require_cuda'],
        classes_path=values['classes_path'] or default_classes,
        colors_path=values['colors_path'] or default_colors,
        config_path=values['config_path'], precision=values['precision'],
        instance_classes=tuple(values['instance_classes'] or ()),
        score_threshold=values['score_threshold'], nms_iou=values['nms_iou'],
        max_instances=values['max_instances'], min_instance_area=values['min_instance_area'],
        **description)


def detections(instances: Instances, header) -> 'Detection2DArray':
    """
    Return the instances as a Detection2DArray with ``header``.

    Per instance: ``id`` its instance-map id, one hypothesis (class id as a string, score), the
    box centre and size in input-image pixels.
    """
    array = Detection2DArray(header=header)
    for instance_id, class_id, score, (x0, y0, x1, y1) in zip(
            instances.ids.tolist(), instances.class_id.tolist(), instances.score.tolist(),
            instances.xyxy.tolist()):
        detection = Detection2D(header=header, id=str(instance_id))
        detection.bbox.center.position.x = (x0 + x1) / 2
        detection.bbox.center.position.y = (y0 + y1) / 2
        detection.bbox.size_x, detection.bbox.size_y = x1 - x0, y1 - y0
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = str(class_id)
        hypothesis.hypothesis.score = float(score)
        detection.results = [hypothesis]
        array.detections.append(detection)
    return array


def _percent(share: float | None) -> str:
    """Return a 0-1 share as a percentage with 2 decimals, or 'n/a' for None."""
    return 'n/a' if share is None else f'{100 * share:.2f}'


def describe_error(error: ValueError) -> str:
    """Return the error's message, naming its parameter and value when it has them."""
    message = str(error)
    parameter = getattr(error, 'parameter', None)
    if parameter and parameter not in message:
        message = f'{parameter}={getattr(error, "value", None)!r}: {message}'
    return message


def scale_camera_info(info: CameraInfo, width: int, height: int) -> CameraInfo:
    """Return ``info`` rescaled to ``width`` x ``height`` (intrinsics and projection)."""
    scale_x = width / info.width
    scale_y = height / info.height
    scaled = CameraInfo()
    scaled.header = info.header
    scaled.width, scaled.height = width, height
    scaled.distortion_model = info.distortion_model
    scaled.d = info.d
    scaled.r = info.r
    k = list(info.k)
    k[0], k[2], k[4], k[5] = k[0] * scale_x, k[2] * scale_x, k[4] * scale_y, k[5] * scale_y
    scaled.k = k
    p = list(info.p)
    p[0], p[2], p[3] = p[0] * scale_x, p[2] * scale_x, p[3] * scale_x
    p[5], p[6], p[7] = p[5] * scale_y, p[6] * scale_y, p[7] * scale_y
    scaled.p = p
    return scaled


class SegmentationNode(Node):
    """Run a segmentation network on the newest camera frame and publish what subscribers want."""

    # What a hub of several cameras gives (seg_ros.ros.multi_camera); a managed node has none.
    _network: 'SharedNetwork | None' = None
    _given_slot: LatestFrameSlot | None = None

    def __init__(self, *, network: 'SharedNetwork | None' = None,
                 slot: LatestFrameSlot | None = None, **kwargs) -> None:
        """
        Load the network (or share one), create the topics, start the workers.

        :param network: the network of several cameras' nodes in one process
            (:mod:`seg_ros.ros.multi_camera`): the first node loads it, the others share it;
            its parameters are then fixed.
        :param slot: the slot that process's one worker takes this camera's frames from (this
            node then starts no segmentation worker of its own).
        :param kwargs: for :class:`rclpy.node.Node` (namespace, cli_args, ...).
        """
        super().__init__('segmentation', **kwargs)
        self._network, self._given_slot = network, slot
        # The stages a managed node (seg_ros.ros.managed_node) runs as lifecycle transitions.
        self._set_up()
        self._configure()
        self._activate()
        self._start_workers()

    # ---- set-up -------------------------------------------------------------------------------
    def _set_up(self) -> None:
        """Declare the parameters; make the counters, /diagnostics and the parameter callbacks."""
        self._values = self._declare_parameters()
        self._segmenter_lock = threading.Lock()
        self._shared = self._network is not None
        self._segmenter: Segmenter | None = None
        self._pending_segmenter: Segmenter | None = None

        self._slot: LatestFrameSlot[tuple] = self._given_slot or LatestFrameSlot()
        self._depth_outputs: DepthOutputs | None = None
        self._encode_slot: LatestFrameSlot[tuple] = LatestFrameSlot()
        self._received = RateMeter()
        self._published = RateMeter()
        self._inference_ms = DurationWindow()
        self._stages = StageProfile(FRAME_STAGES)
        self._segment_split = {name: DurationWindow() for name in SEGMENT_STAGES}
        self._latency_ms = DurationWindow()
        self._encoding_ms = {output.codec: DurationWindow() for output in IMAGE_OUTPUTS}
        self._rejected = 0
        self._rejection_logged: dict[str, float] = {}
        self._last_rejection = ''
        self._last_accepted: float | None = None
        self._skipped_no_subscribers = 0
        self._failed = 0
        self._last_error = ''
        self._started = time.monotonic()
        self._camera_info: CameraInfo | None = None
        self._output_messages: dict = {}

        values = self._values
        self._output_qos = qos.image_qos(values['output_qos'], values['output_depth'])
        self._masks_lock = threading.Lock()
        self._mask_publishers: dict[int, object] = {}
        self._pending_masks: dict[int, str] = {}
        self._pending_instance_settings = None
        self._image_topic = self.resolve_topic_name('image')
        self._diagnostics_publisher = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_timer(values['diagnostics_period'], self.diagnostics_callback)
        self.add_on_set_parameters_callback(self.validate_parameters_callback)
        if hasattr(self, 'add_post_set_parameters_callback'):
            self.add_post_set_parameters_callback(self.apply_parameters_callback)

    def _configure(self) -> None:
        """Load and warm the model, then make the output publishers; raises StartupError."""
        if self._network is None:
            segmenter = self._build_segmenter(self._values)
        else:
            segmenter = self._network.segmenter_for(self._values, self.get_namespace(),
                                                    self._build_segmenter)
        self._log_segmenter(segmenter)
        indices = self._class_mask_indices(self._values['class_masks'], segmenter)
        self._segmenter = segmenter
        self._create_outputs()
        self._set_class_masks(indices)

    def _create_outputs(self) -> None:
        self._outputs = {output.name: self._make_publisher(Image, output.topic, self._output_qos)
                         for output in IMAGE_OUTPUTS}
        self._compressed_outputs = {
            output.name: self._make_publisher(
                CompressedImage, output.topic + '/compressed', self._output_qos)
            for output in IMAGE_OUTPUTS}
        self._camera_info_publisher = self._make_publisher(
            CameraInfo, '~/camera_info', self._output_qos)
        self._labels_publisher = self._make_publisher(String, '~/labels', qos.latched_qos())
        self._label_info_publisher = None
        if LabelInfo is None:
            self.get_logger().warning(
                f'vision_msgs cannot be imported ({VISION_MSGS_ERROR}): ~/label_info is not '
                'published, the classes are on ~/labels (JSON) only; on a robot: apt install '
                'ros-$ROS_DISTRO-vision-msgs')
        else:
            self._label_info_publisher = self._make_publisher(
                LabelInfo, '~/label_info', qos.latched_qos())
        self._instance_map_publisher = self._make_publisher(Image, '~/instance_map',
                                                            self._output_qos)
        self._instances_publisher = None
        if Detection2DArray is not None:
            self._instances_publisher = self._make_publisher(
                Detection2DArray, '~/instances', self._output_qos)
        elif self._segmenter.makes_instances:
            self.get_logger().warning(
                f'~/instances is not published: vision_msgs cannot be imported '
                f'({VISION_MSGS_ERROR}); install ros-$ROS_DISTRO-vision-msgs. ~/instance_map '
                'and the overlay still show the instances')

    def _make_publisher(self, msg_type, topic: str, qos_profile):
        """Create one output publisher (a managed node makes lifecycle publishers)."""
        return self.create_publisher(msg_type, topic, qos_profile)

    def _drop_publisher(self, publisher) -> None:
        """Destroy one output publisher made by :meth:`_make_publisher`."""
        self.destroy_publisher(publisher)

    def _activate(self) -> list:
        """Publish the latched class metadata, subscribe to the camera; return the subscribers."""
        self._publish_labels()
        values = self._values
        input_qos = qos.image_qos(values['input_qos'], values['input_depth'])
        # Frames arrive serialised (raw): only the one the worker takes is deserialised and
        # converted, so a frame that is dropped for a newer one costs no more than its copy.
        if values['input_transport'] == 'compressed':
            image_topic = self.resolve_topic_name('image') + '/compressed'
            image = self.create_subscription(CompressedImage, image_topic,
                                             self.compressed_image_callback, input_qos,
                                             raw=True)
        else:
            image_topic = self.resolve_topic_name('image')
            image = self.create_subscription(Image, 'image', self.image_callback, input_qos,
                                             raw=True)
        self._image_topic = image_topic
        camera_info = self.create_subscription(CameraInfo, 'camera_info',
                                               self.camera_info_callback, input_qos)
        if self._depth_outputs is None:  # made once: its depth input and 3-D outputs
            self._depth_outputs = DepthOutputs(self, values, self._output_qos, input_qos,
                                               lambda: self._camera_info,
                                               self._segmenter.labels.names)
        self.get_logger().info(
            f'Subscribed to {image_topic} ({qos.describe(input_qos)}); '
            f'outputs under {self.get_fully_qualified_name()}/ '
            f'({qos.describe(self._output_qos)})')
        return [image, camera_info]

    def _start_workers(self) -> None:
        self._worker = None
        if self._given_slot is None:  # else the process's one worker serves this camera
            self._worker = threading.Thread(target=self._work, name='segmentation', daemon=True)
            self._worker.start()
        # Compression runs beside the segmentation, so it adds no time to the next frame's.
        self._encoder = threading.Thread(target=self._encode_work, name='compression',
                                         daemon=True)
        self._encoder.start()

    def _declare_parameters(self) -> dict:
        values = {}
        for spec in PARAMETERS:
            # An array that may be empty is declared by type: rclpy cannot type [].
            default = spec.default
            if spec.item_type and not spec.default:
                default = Parameter.Type(spec.parameter_type())
            try:
                parameter = self.declare_parameter(spec.name, default, spec.descriptor())
            except Exception as error:  # rclpy raises several types for a bad override
                raise StartupError(f'parameter {spec.name}: {error}') from error
            value = parameter.value
            if value is None:
                value = spec.default
                if spec.item_type:
                    # Give the typed empty array its value: an unset one breaks `ros2 param dump`.
                    self.set_parameters([Parameter(spec.name, default, list(value))])
            values[spec.name] = value
            reason = spec.check(value)
            if reason:
                raise StartupError(f'parameter {reason}')
        return values

    def _build_segmenter(self, values: dict) -> Segmenter:
        config = segmenter_config(values)
        try:
            return Segmenter(config)
        except ValueError as error:
            raise StartupError(describe_error(error)) from error

    def _class_mask_indices(self, names: list[str], segmenter: Segmenter) -> dict[int, str]:
        try:
            return class_mask_indices(list(names), segmenter.labels.names)
        except ValueError as error:
            raise StartupError(str(error)) from error

    def _set_class_masks(self, indices: dict[int, str]) -> None:
        """Create the mask publishers of ``indices`` (class id to topic); drop the others."""
        with self._masks_lock:
            current = self._mask_publishers
            publishers = {}
            for class_id, topic in indices.items():
                publisher = current.pop(class_id, None)
                if publisher is None or publisher.topic_name != self.resolve_topic_name(topic):
                    if publisher is not None:
                        self._drop_publisher(publisher)
                    publisher = self._make_publisher(Image, topic, self._output_qos)
                publishers[class_id] = publisher
            for publisher in current.values():
                self._drop_publisher(publisher)
            self._mask_publishers = publishers

    def _log_segmenter(self, segmenter: Segmenter) -> None:
        logger = self.get_logger()
        config = segmenter.config
        described = segmenter.backend.description
        logger.info(f'Model {config.model_path} at {described.input_width}x'
                    f'{described.input_height}, {len(segmenter.labels.names)} classes; '
                    f'output {described.output_name!r} ({described.output_layout}); inference: '
                    f'{segmenter.backend.describe()}')
        cuda_asked = config.target == 'cuda'
        for note in segmenter.notes:
            if cuda_asked and 'cuda' in note.lower():
                logger.warning(note)
            else:
                logger.info(note)
        for warning in segmenter.warnings:
            logger.warning(warning)

    def _publish_labels(self) -> None:
        labels = self._segmenter.labels
        self._labels_publisher.publish(String(data=labels.to_json()))
        if self._label_info_publisher is not None:
            info = LabelInfo(threshold=0.0)  # every pixel gets its highest-scoring class
            info.header.stamp = self.get_clock().now().to_msg()
            info.class_map = [VisionClass(class_id=class_id, class_name=name)
                              for class_id, name in enumerate(labels.names)]
            self._label_info_publisher.publish(info)

    # ---- callbacks ----------------------------------------------------------------------------
    def image_callback(self, data: bytes) -> None:
        """Hand a serialised frame to the worker, replacing any frame still waiting."""
        self._received.tick()
        self._slot.put((data, Image))

    def compressed_image_callback(self, data: bytes) -> None:
        """Hand a serialised compressed frame to the worker, replacing any frame waiting."""
        self._received.tick()
        self._slot.put((data, CompressedImage))

    def camera_info_callback(self, msg: CameraInfo) -> None:
        """Keep the newest camera_info to scale it for model-resolution outputs."""
        self._camera_info = msg

    def validate_parameters_callback(self, parameters: list[Parameter]) -> SetParametersResult:
        """Accept a change only if every value is valid and a new network really loads."""
        changed = {}
        for parameter in parameters:
            spec = PARAMETERS_BY_NAME.get(parameter.name)
            if spec is None:
                continue
            value = spec.default if parameter.value is None else parameter.value
            reason = spec.check(value)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
            changed[parameter.name] = value
        segmenter = self._segmenter
        rebuild = any(PARAMETERS_BY_NAME[name].rebuilds_network for name in changed)
        shared = [name for name in changed if name in INSTANCE_VALUES or
                  PARAMETERS_BY_NAME[name].rebuilds_network]
        if self._shared and shared:
            return SetParametersResult(
                successful=False,
                reason=f'{", ".join(shared)}: the network is shared by every camera of this '
                       'process (one_process): change it in the params file and restart')
        if not rebuild and any(name in INSTANCE_VALUES for name in changed):
            values = {**self._values, **changed}
            try:
                self._pending_instance_settings = self._segmenter.instance_settings_for(
                    tuple(values['instance_classes'] or ()),
                    *(values[name] for name in INSTANCE_VALUES[1:]))
            except ValueError as error:
                return SetParametersResult(successful=False, reason=describe_error(error))
        if rebuild:
            try:
                segmenter = Segmenter(segmenter_config({**self._values, **changed}))
            except ValueError as error:
                return SetParametersResult(
                    successful=False,
                    reason=f'network not rebuilt, old one kept: {describe_error(error)}')
        try:
            self._pending_masks = class_mask_indices(
                list(changed.get('class_masks', self._values['class_masks'])),
                segmenter.labels.names)
        except ValueError as error:
            return SetParametersResult(successful=False, reason=str(error))
        for name in ('obstacle_classes', 'freespace_classes'):
            if name in changed or (rebuild and self._depth_outputs is not None):
                _, unknown = class_ids(list(changed.get(name, self._values[name]) or ()),
                                       segmenter.labels.names)
                if unknown:
                    return SetParametersResult(
                        successful=False,
                        reason=f'{name}: {", ".join(map(repr, unknown))} is not a class of the '
                               f'model (name or id); its classes are: '
                               f'{", ".join(segmenter.labels.names)}')
        if segmenter is not self._segmenter:
            self._pending_segmenter = segmenter
        if not hasattr(self, 'add_post_set_parameters_callback'):
            self.apply_parameters_callback(parameters)  # Humble has no post-set callbacks
        return SetParametersResult(successful=True)

    def apply_parameters_callback(self, parameters: list[Parameter]) -> None:
        """Apply accepted changes; swap in the rebuilt network between two frames."""
        for parameter in parameters:
            spec = PARAMETERS_BY_NAME.get(parameter.name)
            if spec is not None:
                self._values[parameter.name] = (
                    spec.default if parameter.value is None else parameter.value)
        self._set_class_masks(self._pending_masks)
        if any(parameter.name in INSTANCE_VALUES for parameter in parameters) \
                and self._pending_segmenter is None:
            self._segmenter.instance_settings = self._pending_instance_settings
        if self._pending_segmenter is not None:
            with self._segmenter_lock:
                self._segmenter, self._pending_segmenter = self._pending_segmenter, None
            self._log_segmenter(self._segmenter)
            self._publish_labels()

    def diagnostics_callback(self) -> None:
        """Publish backend, rates, timings and counters on /diagnostics."""
        now = time.monotonic()
        backend = self._segmenter.backend
        inference = self._inference_ms.summary()
        latency = self._latency_ms.summary()
        last_frame = self._received.last_time
        silent_for = now - (last_frame if last_frame is not None else self._started)
        last_accepted = self._last_accepted
        unusable_for = now - (last_accepted if last_accepted is not None else self._started)
        status = DiagnosticStatus(
            name=f'{self.get_fully_qualified_name()}: segmentation',
            hardware_id=f'{backend.name}/{backend.device}')
        if self._last_error:
            status.level, status.message = DiagnosticStatus.ERROR, self._last_error
        elif silent_for > self._values['stale_timeout']:
            status.level = DiagnosticStatus.WARN
            status.message = f'no image for {silent_for:.1f} s on {self._image_topic}'
        elif unusable_for > self._values['stale_timeout']:
            # Frames arrive but none can be used (wrong encoding, malformed): not 'segmenting'.
            status.level = DiagnosticStatus.WARN
            status.message = (f'every image rejected for {unusable_for:.1f} s, last: '
                              f'{self._last_rejection}')
        else:
            status.level, status.message = DiagnosticStatus.OK, 'segmenting'
        values = {
            'backend': backend.name,
            'device': backend.device,
            'inference': backend.describe(),
            'model': self._segmenter.config.model_path,
            'model file running': self._segmenter.model_file,
            'precision fast agreement with f32 (%)': _percent(self._segmenter.fast_agreement),
            'output verified': self._segmenter.verification or 'not needed (runs as exported)',
            'input size': f'{backend.description.input_width}x'
                          f'{backend.description.input_height}',
            'input rate (Hz)': f'{self._received.rate(now):.2f}',
            'output rate (Hz)': f'{self._published.rate(now):.2f}',
            'inference mean (ms)': f'{inference["mean"]:.1f}',
            'inference p99 (ms)': f'{inference["p99"]:.1f}',
            'stage means, wall/worker CPU (ms)': self._stages.line(),
            'segment split, wall (ms)': ', '.join(
                f'{name} {window.summary()["mean"]:.1f}'
                for name, window in self._segment_split.items()),
            'latency p50 (ms)': f'{latency["p50"]:.1f}',
            'latency p99 (ms)': f'{latency["p99"]:.1f}',
            'frames received': str(self._received.total),
            'frames processed': str(self._published.total),
            'frames dropped (replaced by newer)': str(self._slot.dropped),
            'frames rejected': str(self._rejected),
            'frames skipped (no subscribers)': str(self._skipped_no_subscribers),
            'processing failures': str(self._failed),
            'compressed outputs dropped (encoder busy)': str(self._encode_slot.dropped),
            **{f'{codec} encoding mean (ms)': f'{window.summary()["mean"]:.1f}'
               for codec, window in self._encoding_ms.items()},
            'seconds since last frame': f'{silent_for:.1f}',
            **(self._depth_outputs.diagnostics() if self._depth_outputs else {}),
        }
        status.values = [KeyValue(key=key, value=value) for key, value in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_publisher.publish(array)

    # ---- worker -------------------------------------------------------------------------------
    def _reject(self, reason: str, kind: str | None = None) -> None:
        self._rejected += 1
        self._last_rejection = reason
        # One throttle per kind of fault (rclpy's throttles one call site), so a stream of
        # one malformed kind cannot hide another; the kind is the message without its values.
        kind = kind or _REJECTION_DETAILS.sub('', reason)
        now = time.monotonic()
        if now - self._rejection_logged.get(kind, -WARN_THROTTLE_S) >= WARN_THROTTLE_S:
            self._rejection_logged[kind] = now
            self.get_logger().warning(f'frame rejected: {reason}')

    def _subscribed(self, publishers: dict) -> dict[str, bool]:
        return {name: self._values[f'publish_{name}'] and publisher.get_subscription_count() > 0
                for name, publisher in publishers.items()}

    def _wanted_instance_outputs(self) -> tuple[bool, bool]:
        if not self._segmenter.makes_instances:
            return False, False
        publisher = self._instances_publisher
        return (publisher is not None and self._values['publish_instances'] and
                publisher.get_subscription_count() > 0,
                self._values['publish_instance_map'] and
                self._instance_map_publisher.get_subscription_count() > 0)

    def _work(self) -> None:
        while not self._slot.closed:
            item = self._slot.take(timeout=0.2)
            if item is not None:
                self.handle_frame(item)

    def handle_frame(self, item: tuple) -> None:
        """Segment one frame taken from this node's slot and publish its outputs."""
        clock = StageClock(self._stages)
        frame_of = self._compressed_frame if item[1] is CompressedImage else self._raw_frame
        try:
            header, frame, encoding = frame_of(item[0])
        except ImageConversionError as error:
            self._reject(str(error),
                         kind='encoding' if isinstance(error, UnsupportedEncoding) else None)
            return
        self._last_accepted = time.monotonic()
        clock.lap('receive')
        try:
            self._process(header, frame, encoding, clock)
            self._last_error = ''
        except Exception as error:  # keep segmenting after any per-frame failure
            self._failed += 1
            self._last_error = f'processing failed: {error}'
            self.get_logger().error(self._last_error, throttle_duration_sec=WARN_THROTTLE_S)

    @staticmethod
    def _raw_frame(data: bytes) -> tuple[Header, np.ndarray, str]:
        """
        Deserialise and check a ``sensor_msgs/Image``.

        :raises ImageConversionError: an undecodable message, an encoding the node does not
            take, a malformed image.
        """
        msg = _deserialise(data, Image)
        if msg.encoding not in NODE_ENCODINGS:
            raise UnsupportedEncoding(f'encoding {msg.encoding!r} is not supported '
                                      f'(accepted: {", ".join(NODE_ENCODINGS)})')
        return msg.header, image_to_array(msg), msg.encoding

    @staticmethod
    def _compressed_frame(data: bytes) -> tuple[Header, np.ndarray, str]:
        """Deserialise and decode a ``sensor_msgs/CompressedImage``."""
        msg = _deserialise(data, CompressedImage)
        frame, encoding = compressed.decode(msg.data, msg.format)
        return msg.header, frame, encoding

    def _process(self, header: Header, frame, frame_encoding: str,
                 clock: StageClock | None = None) -> None:
        raw = self._subscribed(self._outputs)
        packed = self._subscribed(self._compressed_outputs)
        with self._masks_lock:
            masks = {class_id: publisher for class_id, publisher in self._mask_publishers.items()
                     if publisher.get_subscription_count() > 0}
        wanted = {name: raw[name] or packed[name] for name in raw}
        model_resolution = self._values['output_resolution'] == 'model'
        want_camera_info = (model_resolution and self._camera_info is not None and
                            self._camera_info_publisher.get_subscription_count() > 0)
        want_instances, want_instance_map = self._wanted_instance_outputs()
        want_3d = self._depth_outputs.wanted()
        if not any(wanted.values()) and not (masks or want_camera_info or want_instances or
                                             want_instance_map or want_3d):
            self._skipped_no_subscribers += 1
            return
        encoding = self._values['color_encoding']
        convert = to_rgb8 if encoding == 'rgb8' else to_bgr8
        image = convert(frame, frame_encoding)
        if clock is not None:
            clock.lap('convert')
        with self._segmenter_lock:
            segmenter = self._segmenter
            result = segmenter.run(
                image, class_map=wanted['class_map'] or want_camera_info or bool(masks) or want_3d,
                color_mask=wanted['color_mask'], overlay=wanted['overlay'],
                full_resolution=not model_resolution, encoding=encoding,
                alpha=self._values['alpha'])
        self._inference_ms.add(result.inference_ms)
        if clock is not None:
            clock.lap('segment')
            for name, milliseconds in segmenter.backend.last_stages.items():
                self._segment_split[name].add(milliseconds)
            self._segment_split['render'].add(result.total_ms - result.inference_ms)
        class_map = result.class_map if model_resolution else result.class_map_full
        images = {'class_map': (class_map, 'mono8'), 'color_mask': (result.color_mask, encoding),
                  'overlay': (result.overlay, encoding)}
        for name, (pixels, pixel_encoding) in images.items():
            if raw[name]:
                self._publish_image(self._outputs[name], name, pixels, pixel_encoding, header)
        jobs = [(name, pixels, pixel_encoding)
                for name, (pixels, pixel_encoding) in images.items() if packed[name]]
        if jobs:
            # The backend may re-use its model-size class map for the next frame.
            jobs = [(name, pixels.copy() if pixels is result.class_map else pixels, pixel_encoding)
                    for name, pixels, pixel_encoding in jobs]
            self._encode_slot.put((header, jobs))
        for class_id, publisher in masks.items():
            mask = cv2.compare(class_map, class_id, cv2.CMP_EQ)  # 255 where equal, else 0
            self._publish_image(publisher, ('mask', class_id), mask, 'mono8', header)
        if result.instances is not None:
            if want_instance_map:
                self._publish_image(self._instance_map_publisher, 'instance_map',
                                    result.instance_map, 'mono16', header)
            if want_instances:
                self._instances_publisher.publish(detections(result.instances, header))
        if want_camera_info:
            info = scale_camera_info(self._camera_info, class_map.shape[1], class_map.shape[0])
            info.header = header
            self._camera_info_publisher.publish(info)
        if want_3d:
            self._depth_outputs.process(header, result, segmenter.labels)
        self._published.tick()
        if clock is not None:
            clock.lap('publish')
        stamp = header.stamp
        now = self.get_clock().now().nanoseconds
        self._latency_ms.add((now - (stamp.sec * 1_000_000_000 + stamp.nanosec)) / 1e6)

    def _publish_image(self, publisher, key, pixels, encoding: str, header: Header) -> None:
        # publish() serialises at once, so the message's buffer is re-used next frame.
        out = array_to_image(pixels, encoding, header, msg=self._output_messages.get(key))
        self._output_messages[key] = out
        publisher.publish(out)

    def _encode_work(self) -> None:
        """Compress and publish the newest frame's outputs; older ones waiting are dropped."""
        outputs = {output.name: output for output in IMAGE_OUTPUTS}
        while not self._encode_slot.closed:
            item = self._encode_slot.take(timeout=0.2)
            if item is None:
                continue
            header, jobs = item
            for name, pixels, encoding in jobs:
                codec = outputs[name].codec
                try:
                    started = time.perf_counter()
                    text, data = compressed.encode(
                        pixels, encoding, codec, jpeg_quality=self._values['jpeg_quality'],
                        png_level=self._values['png_level'])
                    self._encoding_ms[codec].add((time.perf_counter() - started) * 1e3)
                    self._compressed_outputs[name].publish(
                        compressed.fill_compressed(CompressedImage(), header, text, data))
                except Exception as error:  # never let one frame stop the compressed outputs
                    self._failed += 1
                    self.get_logger().error(f'compressing {name} failed: {error}',
                                            throttle_duration_sec=WARN_THROTTLE_S)

    def destroy_node(self) -> None:
        """Stop the worker (it finishes the frame in hand), then destroy the node."""
        self._slot.close()
        self._encode_slot.close()
        for thread in (self._worker, self._encoder):
            if thread is not None and thread.is_alive():
                thread.join(timeout=1.5)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Run the segmentation node until SIGINT/SIGTERM; a start-up error exits with status 1."""
    return run_node(SegmentationNode, 'segmentation', args, events_executor)


if __name__ == '__main__':
    sys.exit(main())
