"""The segmenter: one frame in, class map, colour mask and overlay out."""

from __future__ import annotations

from dataclasses import dataclass
import time
from typing import Any

import cv2
import numpy as np

from seg_ros.core.backends import Backend, open_backend
from seg_ros.core.errors import ModelError
from seg_ros.core.labels import Labels
from seg_ros.core.render import blend, color_lut, colorize, ENCODINGS, resize_class_map

FRAME_ENCODINGS = (*ENCODINGS, 'mono8')


# The model description fields a SegmenterConfig may set; '' / 0 / () leave them to the model.
DESCRIPTION_FIELDS = ('task', 'input_width', 'input_height', 'input_layout', 'channel_order',
                      'rescale_factor', 'image_mean', 'image_std', 'output_name', 'output_layout',
                      'upsample', 'num_classes')


@dataclass(frozen=True)
class SegmenterConfig:
    """
    Everything that defines a segmenter; see :func:`open_backend`.

    The model description fields (``input_width`` ... ``num_classes``, see
    :class:`seg_ros.core.description.ModelDescription`) override the model's sidecar and
    metadata and ``preset`` where set; ``''``, ``0`` and ``()`` leave them to the model
    (``input_width`` x ``input_height`` 0 x 0: the size the model declares, else 1024x512).
    Empty label paths mean the description's class names and colours, else generated names and
    a fixed palette. ``config_path`` is the network description of a two-file model (Caffe
    ``.prototxt``, TensorFlow ``.pbtxt``, Darknet ``.cfg``), else empty; ``precision`` is
    ``'f32'`` or ``'fast'`` (see :func:`open_backend`).
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
    """

    class_map: np.ndarray
    class_map_full: np.ndarray | None
    color_mask: np.ndarray | None
    overlay: np.ndarray | None
    inference_ms: float
    total_ms: float
    encoding: str


class Segmenter:
    """A loaded model with its labels. Not thread-safe: one ``run`` at a time."""

    def __init__(self, config: SegmenterConfig) -> None:
        """
        Load the model on its backend, warm it up, load and check the labels.

        :param config: the configuration.
        :raises ModelError: naming the configuration field at fault.
        """
        self.config = config
        self.backend: Backend = open_backend(
            config.model_path, config.description_overrides(), config.backend, config.target,
            config.require_cuda, config.config_path, config.precision, config.preset)
        self.notes: list[str] = self.backend.notes
        if self.backend.task != 'semantic':
            raise ModelError('task', self.backend.task,
                             f'task {self.backend.task!r}: the segmenter runs semantic models '
                             'only so far')
        self.labels = Labels.from_files(config.classes_path, config.colors_path,
                                        self.backend.num_classes, self.backend.description)
        self._luts = {encoding: color_lut(self.labels.colors_rgb, encoding)
                      for encoding in ENCODINGS}

    def run(self, frame: np.ndarray, *, class_map: bool = True, color_mask: bool = True,
            overlay: bool = True, full_resolution: bool = True, encoding: str = 'rgb8',
            alpha: float = 0.5) -> SegmentationResult:
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
        :return: the outputs.
        :raises ValueError: bad frame, encoding or alpha.
        """
        started = time.perf_counter()
        output_encoding = _check_frame(frame, encoding)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f'alpha must be between 0 and 1, got {alpha}')
        model_map = self.backend.infer(frame, output_encoding)
        inferred = time.perf_counter()
        height, width = frame.shape[:2]
        need_full_map = overlay or (full_resolution and (class_map or color_mask))
        full_map = resize_class_map(model_map, width, height) if need_full_map else None
        lut = self._luts[output_encoding]
        mask = None
        if color_mask:
            mask = colorize(full_map if full_resolution else model_map, lut)
        blended = None
        if overlay:
            full_mask = mask if mask is not None and full_resolution else colorize(full_map, lut)
            image = frame
            if frame.ndim == 2:
                image = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
            blended = blend(image, full_mask, alpha)
        finished = time.perf_counter()
        return SegmentationResult(
            class_map=model_map, class_map_full=full_map, color_mask=mask, overlay=blended,
            inference_ms=(inferred - started) * 1e3, total_ms=(finished - started) * 1e3,
            encoding=output_encoding)


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
