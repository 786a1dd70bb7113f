"""The segmenter: one frame in, class map, colour mask and overlay out."""

from __future__ import annotations

from dataclasses import dataclass
import time
from typing import Any

import cv2
import numpy as np

from seg_ros.core.backends import Backend
from seg_ros.core.decode.instance_decoders import (decode_mask_rcnn, decode_yolo_seg,
                                                   INSTANCE_TASKS, instances_from_class_map,
                                                   InstanceSettings, Letterbox, mask_rcnn_outputs,
                                                   TASK_YOLO_SEG, yolo_seg_layout)
from seg_ros.core.decode.instances import Instances
from seg_ros.core.decode.semantic import (check_frame_outputs, confidence_to_frame,
                                          decode_to_frame, resize_class_map)
from seg_ros.core.errors import ModelError
from seg_ros.core.loading import open_model
from seg_ros.core.model.labels import Labels, read_class_names
from seg_ros.core.options import DESCRIPTION_OPTIONS
from seg_ros.core.render.color import blend, color_lut, colorize, ENCODINGS
from seg_ros.core.render.instances import draw_instances

FRAME_ENCODINGS = (*ENCODINGS, 'mono8')
# torchvision's Mask R-CNN COCO models: 91 category ids (0 = background).
MASK_RCNN_DEFAULT_CLASSES = 91


# The model description fields a SegmenterConfig may set; '' / 0 / () leave them to the model.
DESCRIPTION_FIELDS = DESCRIPTION_OPTIONS


@dataclass(frozen=True)
class SegmenterConfig:
    """
    Everything that defines a segmenter; see :func:`open_backend`.

    The model description fields (``input_width`` ... ``num_classes``, see
    :class:`seg_ros.core.model.description.ModelDescription`) override the model's sidecar and
    metadata and ``preset`` where set; ``''``, ``0`` and ``()`` leave them to the model
    (``input_width`` x ``input_height`` 0 x 0: the size the model declares, else 1024x512).
    Empty label paths mean the description's class names and colours, else generated names and
    a fixed palette. ``config_path`` is the network description of a two-file model (Caffe
    ``.prototxt``, TensorFlow ``.pbtxt``, Darknet ``.cfg``), else empty; ``precision`` is
    ``'f32'`` or ``'fast'`` (see :func:`open_backend`). ``confidence``: :meth:`Segmenter.run`
    makes the confidence map by default, and a class-id model on OpenVINO gets the output it
    needs for one (see :attr:`Segmenter.confidence_reason`).
    """

    model_path: str
    input_width: int = 0
    input_height: int = 0
    preset: str = ''
    rescale_factor: float = 0.0
    image_mean: tuple[float, ...] = ()
    image_std: tuple[float, ...] = ()
    channel_order: str = ''
    input_layout: str = ''
    output_name: str = ''
    output_layout: str = ''
    upsample: str = ''
    task: str = ''
    num_classes: int = 0
    backend: str = 'auto'
    target: str = 'auto'
    require_cuda: bool = False
    classes_path: str = ''
    colors_path: str = ''
    config_path: str = ''
    precision: str = 'f32'
    # Instances: see :class:`seg_ros.core.decode.instance_decoders.InstanceSettings`.
    # instance_classes names the classes made into instances: connected components of a semantic
    # model's class map, or a filter on an instance model's detections (empty: all of them).
    instance_classes: tuple[str, ...] = ()
    score_threshold: float = 0.5
    nms_iou: float = 0.5
    max_instances: int = 100
    min_instance_area: int = 100
    confidence: bool = False

    def description_overrides(self) -> dict[str, Any]:
        """Return the description fields this configuration sets."""
        values = {name: getattr(self, name) for name in DESCRIPTION_FIELDS}
        return {name: value for name, value in values.items()
                if value not in ('', 0, 0.0, (), [])}


@dataclass
class SegmentationResult:
    """
    The outputs of one :meth:`Segmenter.run`; those not asked for are None.

    ``class_map`` is always at model resolution; ``class_map_full`` is at frame size when it was
    made (asked for, or needed for a frame-size output). ``color_mask`` is at frame size or model
    size as asked, ``overlay`` always at frame size; both in ``encoding`` channel order.
    ``instances`` (at frame size, best first) and ``instance_map`` ((H, W) uint16, 0 = none, else
    the instance's id) come from an instance model, or from the ``instance_classes`` of a
    semantic one; None when there are none to make. An instance model's class map is the class
    of the instance covering each pixel (0 elsewhere). ``confidence`` (model size) and
    ``confidence_full`` (the size of ``class_map_full``) are the mono8 confidence of each pixel's
    class, ``round(255 * p)`` (see :func:`seg_ros.core.decode.semantic.decode_with_confidence`),
    when asked for and the model has one (:attr:`Segmenter.confidence_reason`), else None.
    """

    class_map: np.ndarray
    class_map_full: np.ndarray | None
    color_mask: np.ndarray | None
    overlay: np.ndarray | None
    inference_ms: float
    total_ms: float
    encoding: str
    instances: Instances | None = None
    instance_map: np.ndarray | None = None
    confidence: np.ndarray | None = None
    confidence_full: np.ndarray | None = None


class Segmenter:
    """
    A loaded model with its labels.

    :meth:`run` may be called from several threads at once (the workers of a multi-camera hub
    share one segmenter): it keeps nothing of a call on the instance, and its backend's
    :meth:`~seg_ros.core.backends.base.Backend.forward` takes calls from several threads.
    ``instance_settings`` may be replaced while frames run: each call reads it once.
    """

    def __init__(self, config: SegmenterConfig) -> None:
        """
        Load the model on its backend, warm it up, load and check the labels.

        ``model_file`` is the file that really runs (a Torch7 file's cached ONNX conversion, see
        :func:`seg_ros.core.loading.open_model`); ``warnings`` the lines a user should see;
        ``fast_agreement`` the share of warm-up pixels ``precision='fast'`` classifies as f32
        does (None when it runs f32); ``verification`` what the output was checked against
        at start-up, or why it was not.

        :param config: the configuration.
        :raises ModelError: naming the configuration field at fault.
        """
        self.config = config
        # A Torch7 .net runs as its cached fused-ONNX conversion where that agrees with it.
        opened = open_model(config.model_path, config.description_overrides(), config.backend,
                            config.target, config.require_cuda, config.config_path,
                            config.precision, config.preset)
        self.backend: Backend = opened.backend
        self.notes: list[str] = opened.notes
        self.warnings: list[str] = opened.warnings
        self.model_file = opened.model_file
        self.fast_agreement = opened.fast_agreement
        self.verification = opened.verification
        self.task = self.backend.task
        description = self.backend.description
        self._input_size = (description.input_width, description.input_height)
        self._letterboxes: dict[tuple[int, int], Letterbox] = {}
        num_classes = self.backend.num_classes
        if self.task in INSTANCE_TASKS:
            num_classes = self._check_instance_outputs(config)
        self.labels = Labels.from_files(config.classes_path, config.colors_path, num_classes,
                                        description)
        self._luts = {encoding: color_lut(self.labels.colors_rgb, encoding)
                      for encoding in ENCODINGS}
        self.instance_settings: InstanceSettings | None = None
        self.configure_instances(config.instance_classes, config.score_threshold,
                                 config.nms_iou, config.max_instances,
                                 config.min_instance_area)
        self.confidence_reason = self._set_up_confidence(config.confidence)

    @property
    def makes_confidence(self) -> bool:
        """Return whether :meth:`run` can give the confidence map (see confidence_reason)."""
        return not self.confidence_reason

    def _set_up_confidence(self, wanted: bool) -> str:
        """
        Return '' when this model has a confidence map, else why not (said once, not a frame).

        Scores: the softmax of the scores the argmax is taken on. Class ids: only with the
        probability a backend computes behind the argmax in the graph, added here when
        ``wanted`` (OpenVINO; a second compilation). Instance models: none.
        """
        if self.task in INSTANCE_TASKS:
            return (f'task {self.task}: an instance model gives per-object scores and masks, '
                    'no per-pixel class scores to take a softmax of: no confidence map')
        description = self.backend.description
        if description.output_layout != 'class_ids':  # resolved when the backend opened
            return ''
        prefix = (f'output {description.output_name!r} holds class ids (the argmax is in the '
                  'graph), no scores')
        if not wanted:
            return (f'{prefix}; the probability behind the argmax is added at start only with '
                    'confidence set (it costs every frame)')
        problem = self.backend.add_confidence_output()
        width, height = self._input_size
        grey = np.full((height, width, 3), 128, np.uint8)
        if not problem and self.backend.infer_with_confidence(grey)[1] is None:
            problem = f'{self.backend.name} gave no confidence output'
        return f'{prefix}: {problem}' if problem else ''

    @property
    def makes_instances(self) -> bool:
        """Return whether :meth:`run` gives instances (instance model or instance_classes)."""
        return self.instance_settings is not None

    def _check_instance_outputs(self, config: SegmenterConfig) -> int:
        """Check an instance model's outputs (by one forward pass); return its class count."""
        width, height = self._input_size
        outputs = self.backend.forward(self.backend.prepare(
            np.full((height, width, 3), 114, np.uint8), 'bgr8'))
        shapes = {name: value.shape for name, value in outputs.items()}
        described = len(self.backend.description.class_names)
        self._fixed_shapes = shapes if self.task == TASK_YOLO_SEG else None
        if self.task == TASK_YOLO_SEG:
            self._yolo_layout = yolo_seg_layout(shapes, width, height)
            return self._yolo_layout.num_classes
        self._rcnn_outputs = mask_rcnn_outputs(shapes, width, height)
        if config.classes_path:
            try:
                return len(read_class_names(config.classes_path))
            except (OSError, ValueError):
                pass  # Labels.from_files reports the problem with the parameter's name
        return described or MASK_RCNN_DEFAULT_CLASSES

    def configure_instances(self, instance_classes: tuple[str, ...] | list[str],
                            score_threshold: float, nms_iou: float, max_instances: int,
                            min_instance_area: int) -> None:
        """Set how instances are made (no reload); see :meth:`instance_settings_for`."""
        self.instance_settings = self.instance_settings_for(
            instance_classes, score_threshold, nms_iou, max_instances, min_instance_area)

    def instance_settings_for(self, instance_classes: tuple[str, ...] | list[str],
                              score_threshold: float, nms_iou: float, max_instances: int,
                              min_instance_area: int) -> InstanceSettings | None:
        """
        Return the instance settings for these values (None: this model makes no instances).

        :param instance_classes: class names (of ``labels``, case-insensitive); for a semantic
            model the classes whose connected components become instances (empty: none), for
            an instance model the classes kept (empty: all).
        :raises ModelError: naming the parameter at fault.
        """
        lowered = {name.lower(): class_id for class_id, name in enumerate(self.labels.names)}
        wanted = [name for name in instance_classes if name]
        unknown = [name for name in wanted if name.lower() not in lowered]
        if unknown:
            raise ModelError('instance_classes', list(instance_classes),
                             f'instance_classes {unknown} are not classes of the model '
                             f'(classes: {", ".join(self.labels.names)})')
        class_ids = tuple(lowered[name.lower()] for name in wanted)
        settings = InstanceSettings(score_threshold, nms_iou, max_instances, min_instance_area,
                                    class_ids or None)
        if self.task not in INSTANCE_TASKS and not class_ids:
            return None
        return settings

    def _letterbox(self, width: int, height: int) -> Letterbox:
        letterbox = self._letterboxes.get((width, height))
        if letterbox is None:
            letterbox = Letterbox.fit(width, height, *self._input_size)
            self._letterboxes = {(width, height): letterbox}
        return letterbox

    def _detect(self, frame: np.ndarray, encoding: str) -> Instances:
        """Run an instance model on a letterboxed frame; decode at frame size."""
        letterbox = self._letterbox(frame.shape[1], frame.shape[0])
        image = letterbox.apply(frame if frame.ndim == 3 else
                                cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB))
        outputs = self.backend.forward(self.backend.prepare(image, encoding))
        # YOLO-seg's outputs keep their shape; Mask R-CNN's count of detections varies.
        check_frame_outputs(outputs, self._fixed_shapes)
        settings = self.instance_settings
        if self.task == TASK_YOLO_SEG:
            return decode_yolo_seg(outputs, self._yolo_layout, letterbox, settings)
        return decode_mask_rcnn(outputs, self._rcnn_outputs, letterbox, settings)

    def run(self, frame: np.ndarray, *, class_map: bool = True, color_mask: bool = True,
            overlay: bool = True, full_resolution: bool = True, encoding: str = 'rgb8',
            alpha: float = 0.5, confidence: bool | None = None) -> SegmentationResult:
        """
        Segment one frame and render the outputs asked for.

        :param frame: (H, W, 3) uint8 in ``encoding`` order, or (H, W) uint8 grey (any encoding).
        :param class_map: make ``class_map_full`` (when ``full_resolution``).
        :param color_mask: make the colour mask.
        :param overlay: make the overlay (frame blended with the colour mask).
        :param full_resolution: class map and colour mask at frame size, else at model size.
        :param encoding: ``'rgb8'`` or ``'bgr8'``: channel order of a colour frame and of the
            colour outputs; ``'mono8'`` for a grey frame (colour outputs are then rgb8).
        :param alpha: weight of the colour mask in the overlay, 0 to 1.
        :param confidence: make the confidence map(s) (model size, and frame size when
            ``class_map_full`` is made at frame size for ``class_map`` / ``full_resolution``);
            None: ``config.confidence``. Never made where :attr:`confidence_reason` says why.
        :return: the outputs.
        :raises ValueError: bad frame, encoding or alpha.
        """
        started = time.perf_counter()
        output_encoding = _check_frame(frame, encoding)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f'alpha must be between 0 and 1, got {alpha}')
        if self.task in INSTANCE_TASKS:
            return self._run_instances(frame, output_encoding, started, class_map, color_mask,
                                       overlay, full_resolution, alpha)
        height, width = frame.shape[:2]
        want_confidence = (self.config.confidence if confidence is None else confidence) \
            and self.makes_confidence
        model_confidence = full_confidence = None
        settings = self.instance_settings  # read once: a runtime change may replace it
        if self.backend.description.postprocess == 'logits':
            # HuggingFace's post-processing: the scores at frame size, then the argmax; the
            # model-size map is read from that.
            outputs = self.backend.forward(self.backend.prepare(frame, output_encoding))
            name = self.backend.description.output_name
            check_frame_outputs({name: outputs[name]}, self.backend.output_shapes)
            full_map = decode_to_frame(outputs, self.backend.description, width, height)
            model_map = resize_class_map(full_map, *self._input_size)
            if want_confidence:
                full_confidence = confidence_to_frame(outputs, self.backend.description, width,
                                                      height)
                model_confidence = resize_class_map(full_confidence, *self._input_size)
                if not (full_resolution and class_map):
                    full_confidence = None
            inferred = time.perf_counter()
        else:
            if want_confidence:
                model_map, model_confidence = self.backend.infer_with_confidence(
                    frame, output_encoding)
            else:
                model_map = self.backend.infer(frame, output_encoding)
            inferred = time.perf_counter()
            need_full_map = overlay or settings is not None or (
                full_resolution and (class_map or color_mask))
            full_map = resize_class_map(model_map, width, height) if need_full_map else None
            if model_confidence is not None and full_resolution and class_map:
                full_confidence = resize_class_map(model_confidence, width, height)
        instances = instance_map = None
        if settings is not None:
            instances = instances_from_class_map(full_map, settings)
            instance_map = instances.instance_map()
        lut = self._luts[output_encoding]
        mask = _color_mask(color_mask, full_map, model_map, full_resolution, lut)
        blended = None
        if overlay:
            full_mask = mask if mask is not None and full_resolution else colorize(full_map, lut)
            blended = blend(_colour_frame(frame), full_mask, alpha)
            if instances is not None:
                # The classes are already coloured: each instance gets its outline and label.
                draw_instances(blended, instances, instance_map, self.labels.names,
                               encoding=output_encoding, fill_alpha=0.0)
        finished = time.perf_counter()
        return SegmentationResult(
            class_map=model_map, class_map_full=full_map, color_mask=mask, overlay=blended,
            inference_ms=(inferred - started) * 1e3, total_ms=(finished - started) * 1e3,
            encoding=output_encoding, instances=instances, instance_map=instance_map,
            confidence=model_confidence, confidence_full=full_confidence)

    def _run_instances(self, frame: np.ndarray, encoding: str, started: float,
                       class_map: bool, color_mask: bool, overlay: bool,
                       full_resolution: bool, alpha: float) -> SegmentationResult:
        instances = self._detect(frame, encoding)
        inferred = time.perf_counter()
        instance_map = instances.instance_map()
        # The class map: the class of the instance covering each pixel (ids < 256 by labels).
        class_of_id = np.zeros(int(instances.ids.max(initial=0)) + 1, np.uint8)
        class_of_id[instances.ids] = np.clip(instances.class_id, 0, 255)
        full_map = class_of_id[instance_map]
        model_map = resize_class_map(full_map, *self._input_size)
        mask = _color_mask(color_mask, full_map, model_map, full_resolution, self._luts[encoding])
        blended = None
        if overlay:
            blended = _colour_frame(frame).copy()
            draw_instances(blended, instances, instance_map, self.labels.names,
                           encoding=encoding, fill_alpha=alpha)
        finished = time.perf_counter()
        return SegmentationResult(
            class_map=model_map, class_map_full=full_map, color_mask=mask, overlay=blended,
            inference_ms=(inferred - started) * 1e3, total_ms=(finished - started) * 1e3,
            encoding=encoding, instances=instances, instance_map=instance_map)


def _color_mask(wanted: bool, full_map: np.ndarray | None, model_map: np.ndarray,
                full_resolution: bool, lut: np.ndarray) -> np.ndarray | None:
    """Return the colour mask at frame or model size, or None when it is not wanted."""
    if not wanted:
        return None
    return colorize(full_map if full_resolution else model_map, lut)


def _colour_frame(frame: np.ndarray) -> np.ndarray:
    """Return a grey frame as RGB, a colour frame as it is."""
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB) if frame.ndim == 2 else frame


def _check_frame(frame: np.ndarray, encoding: str) -> str:
    """Validate a frame and its encoding; return the channel order of the colour outputs."""
    if encoding not in FRAME_ENCODINGS:
        raise ValueError(f'encoding must be one of {FRAME_ENCODINGS}, got {encoding!r}')
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        raise ValueError(f'frame must be a uint8 array, got '
                         f'{getattr(frame, "dtype", type(frame).__name__)}')
    colour = frame.ndim == 3 and frame.shape[2] == 3
    if not (colour or frame.ndim == 2) or min(frame.shape[:2]) < 1:
        raise ValueError(f'frame must be (H, W, 3) or (H, W), got shape {frame.shape}')
    if encoding == 'mono8' and colour:
        raise ValueError(f'encoding mono8 needs an (H, W) frame, got shape {frame.shape}')
    return 'rgb8' if encoding == 'mono8' else encoding
