"""
The contract every backend keeps, and what they share.

A :class:`Backend` is one network loaded by one runtime at one static input shape. Its
:meth:`Backend.forward` takes the prepared network input and returns every output by name,
the same names and values on every runtime (within float rounding).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
import functools
import importlib
import os
import re
import threading
import time
from types import ModuleType

import numpy as np

from seg_ros.core.errors import ModelError
from seg_ros.core.model.description import ModelDescription
from seg_ros.core.model.files import KIND_FUSED, ModelInfo
from seg_ros.core.model.preprocess import prepare_input


class Backend(ABC):
    """
    One loaded network at one input shape.

    :meth:`forward` and :meth:`infer` may be called from several threads at once: each backend
    runs the calls side by side or one at a time (see :meth:`forward`), ``last_stages`` is the
    calling thread's.

    :ivar name: ``'opencv'``, ``'onnxruntime'`` or ``'openvino'``.
    :ivar info: what the model file says.
    :ivar description: the resolved model description (input size, layout, output set).
    :ivar input_shape: the static shape :meth:`forward` takes.
    :ivar input_dtype: ``np.float32``, or ``np.uint8`` for fused models.
    :ivar output_names: every output, in the model's order.
    :ivar num_classes: of a semantic model, set when it is opened; 0 for instance models.
    :ivar notes: one-line reasons for the choices :func:`open_backend` made.
    """

    name: str = ''

    def __init__(self, info: ModelInfo, description: ModelDescription,
                 input_shape: tuple[int, ...]) -> None:
        """Keep what the subclass loads; it sets ``output_names`` and ``device``."""
        self.info = info
        self.description = description
        self.input_shape = tuple(input_shape)
        self.input_dtype = np.uint8 if info.kind == KIND_FUSED else np.float32
        self.kind = info.kind
        self.output_names: tuple[str, ...] = ()
        self.device = 'cpu'
        self.precision = 'f32'  # the inference precision really used, for describe()
        self.num_classes = 0
        # Milliseconds of this thread's last infer() (prepare, network, decode): several
        # workers of one process may run one backend at once (see forward()).
        self._local = threading.local()
        # Output name -> shape on the warm-up frame, for outputs that must keep it.
        self.output_shapes: dict[str, tuple[int, ...]] = {}
        self.notes: list[str] = []

    @property
    def last_stages(self) -> dict[str, float]:
        """Return the milliseconds of the calling thread's last :meth:`infer`, by stage."""
        return getattr(self._local, 'stages', {})

    @last_stages.setter
    def last_stages(self, stages: dict[str, float]) -> None:
        self._local.stages = stages

    @property
    def uses_cuda(self) -> bool:
        """Return whether the network really runs on an NVIDIA GPU."""
        return 'cuda' in self.device.lower() or 'tensorrt' in self.device.lower()

    @property
    def task(self) -> str:
        """Return the description's task: ``'semantic'``, ``'maskrcnn'`` or ``'yolo_seg'``."""
        return self.description.task

    @abstractmethod
    def describe(self) -> str:
        """Return one line saying what runs: runtime, device, input size."""

    @abstractmethod
    def forward(self, network_input: np.ndarray) -> dict[str, np.ndarray]:
        """
        Run the network on a prepared input of ``input_shape``.

        Safe to call from several threads at once: each backend either runs the calls side by
        side (ONNX Runtime sessions, an OpenVINO infer request for each call in flight) or one
        at a time.

        :return: every output, by name, in ``output_names`` order.
        """

    def prepare(self, frame: np.ndarray, encoding: str = 'bgr8') -> np.ndarray:
        """Return the network input for a frame (see :func:`seg_ros.core.model.preprocess`)."""
        return prepare_input(frame, encoding, self.description, self.kind == KIND_FUSED)

    def infer(self, frame: np.ndarray, encoding: str = 'bgr8') -> np.ndarray:
        """
        Segment one frame with a semantic model.

        :param frame: (H, W, 3) uint8 in ``encoding`` order, or (H, W) uint8 grey; any size.
        :param encoding: channel order of a 3-channel frame, ``'bgr8'`` or ``'rgb8'``.
        :return: (input height, input width) uint8 class map.
        """
        return self._infer(frame, encoding, False)[0]

    def infer_with_confidence(self, frame: np.ndarray, encoding: str = 'bgr8'
                              ) -> tuple[np.ndarray, np.ndarray | None]:
        """
        Segment one frame; return :meth:`infer`'s class map and its confidence map (or None).

        See :func:`seg_ros.core.decode.semantic.decode_with_confidence`; None for a class-id
        output without the confidence output :meth:`add_confidence_output` adds.
        """
        return self._infer(frame, encoding, True)

    def _infer(self, frame: np.ndarray, encoding: str,
               confidence: bool) -> tuple[np.ndarray, np.ndarray | None]:
        from seg_ros.core.decode.semantic import (check_frame_outputs, decode,
                                                  decode_with_confidence)
        started = time.perf_counter()
        network_input = self.prepare(frame, encoding)
        prepared = time.perf_counter()
        outputs = self.forward(network_input)
        ran = time.perf_counter()
        name = self.description.output_name
        check_frame_outputs({name: outputs[name]}, self.output_shapes)
        if confidence:
            class_map, confidence_map = decode_with_confidence(outputs, self.description)
        else:
            class_map, confidence_map = decode(outputs, self.description), None
        self.last_stages = {'prepare': (prepared - started) * 1e3,
                            'network': (ran - prepared) * 1e3,
                            'decode': (time.perf_counter() - ran) * 1e3}
        return class_map, confidence_map

    def add_confidence_output(self) -> str:
        """
        Make a class-id model also output the probability behind its in-graph argmax.

        Only a runtime that can rewrite the graph it compiles can (OpenVINO); the others say
        why not.

        :return: '' when the output was added, else why it cannot be.
        """
        return (f'{self.name} runs the model as exported: it cannot expose the scores behind '
                'its in-graph argmax (OpenVINO can: backend openvino or auto with openvino '
                'installed; or export the scores)')

    def run_error(self, runtime: str, error: Exception) -> ModelError:
        """Return the ModelError for a network that loaded but fails to run."""
        return ModelError('model_path', self.info.path,
                          f'{runtime} cannot run {self.info.path!r} at input shape '
                          f'{list(self.input_shape)} (input_width x input_height '
                          f'{self.description.input_width}x{self.description.input_height}): '
                          f'{short_error(error)}')

    def size_text(self) -> str:
        """Return e.g. ``precision f32, input 1024x512, scores model``."""
        return (f'precision {self.precision}, input {self.description.input_width}x'
                f'{self.description.input_height}, {self.kind} model')


def short_error(error: BaseException) -> str:
    """Return the meaningful last line of a (possibly multi-line) runtime error, shortened."""
    # OpenCV continues messages on lines starting with '>' and prefixes source locations.
    lines = [line.strip().lstrip('>').strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line]
    text = lines[-1] if lines else type(error).__name__
    text = re.sub(r'OpenCV\([^)]*\)\s*\S+:\d+:\s*', '', text)
    return text if len(text) <= 300 else text[:297] + '...'


#: Runtime threads a process, where set (``seg-ros fleet`` sets it in each worker so that workers
#: x threads = the CPUs it was given); else a runtime uses every core the process may use.
THREADS_VARIABLE = 'SEG_ROS_THREADS'


def thread_limit() -> int:
    """Return ``$SEG_ROS_THREADS`` as a number of threads, 0 where it is unset or not a number."""
    text = os.environ.get(THREADS_VARIABLE, '').strip()
    return int(text) if text.isdigit() else 0


def cpu_threads() -> int:
    """Return the CPU cores this process may use (``$SEG_ROS_THREADS`` where it is set)."""
    if thread_limit():
        return thread_limit()
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@functools.cache
def import_runtime(module_name: str) -> ModuleType:
    """Import an optional runtime once."""
    return importlib.import_module(module_name)
