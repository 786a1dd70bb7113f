"""
OpenCV DNN backend: CUDA when asked for and really working, else CPU.

Every new model (file, size and modification time) and input shape is first loaded and run in
a child process (:mod:`seg_ros.core.backends.opencv_probe`): OpenCV's ONNX importer crashes
the process on some exports. ONNX files with external weights are refused before that: OpenCV
DNN cannot read them. OpenCV 4's importer cannot parse shape computations on symbolic
dimensions (exports with dynamic H and W), so with the ``onnx`` library installed it reads a
temporary copy whose input dimensions are fixed to the input shape it runs at.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tempfile
import threading

import cv2
import numpy as np

from seg_ros.core.backends import opencv_probe
from seg_ros.core.backends.base import Backend, ModelInfo, short_error
from seg_ros.core.errors import ModelError
from seg_ros.core.install_hints import install_hint, RUNTIME_MODULES
from seg_ros.core.model.description import ModelDescription


def opencv_cuda_problem() -> str | None:
    """Return why OpenCV DNN cannot use CUDA here, or None if it can."""
    if not re.search(r'NVIDIA CUDA:\s*YES', cv2.getBuildInformation()):
        return 'this OpenCV build has no CUDA'
    if cv2.cuda.getCudaEnabledDeviceCount() <= 0:
        return 'OpenCV finds no CUDA device'
    return None


# Probe results by (model, config, their sizes and times, input shape, dtype, output names).
_PROBES: dict[tuple, dict] = {}
_MAX_PROBES = 64


def _cached_probe(key: tuple, model_path: str, config_path: str, input_shape: tuple[int, ...],
                  input_dtype: str, output_names: tuple[str, ...]) -> dict:
    """Probe ``model_path`` (the model or its static copy) once per ``key``."""
    if key not in _PROBES:
        if len(_PROBES) >= _MAX_PROBES:
            _PROBES.clear()
        _PROBES[key] = opencv_probe.probe(model_path, config_path, input_shape, input_dtype,
                                          output_names)
    return _PROBES[key]


def _static_copy(info: ModelInfo, input_shape: tuple[int, ...]) -> str:
    """
    Write a copy of an ONNX model with its symbolic input dims fixed; return its path, or ''.

    '' when the model needs none (static input, not ONNX) or the ``onnx`` library is missing.
    """
    if info.file_format != 'onnx' or all(isinstance(dim, int) for dim in info.input_shape):
        return ''
    try:
        import onnx
    except ImportError:
        return ''
    model = onnx.load_model(info.path)
    image_input = next(value for value in model.graph.input if value.name == info.inputs[0].name)
    dims = image_input.type.tensor_type.shape.dim
    if len(dims) != len(input_shape):
        return ''
    for dim, value in zip(dims, input_shape):
        dim.dim_value = value  # replaces dim_param
    handle, path = tempfile.mkstemp(prefix='seg_ros_opencv_', suffix='.onnx')
    with os.fdopen(handle, 'wb') as copy:
        copy.write(model.SerializeToString())
    return path


def _stamp(path: str) -> tuple[int, int]:
    status = os.stat(path)
    return status.st_size, status.st_mtime_ns


class OpenCVBackend(Backend):
    """``cv2.dnn`` network, CUDA when asked for and really working, else CPU."""

    name = 'opencv'

    def __init__(self, info: ModelInfo, description: ModelDescription,
                 input_shape: tuple[int, ...], target: str, require_cuda: bool,
                 notes: list[str], precision: str = 'f32') -> None:
        """Probe the model in a child process, load it, try CUDA if wanted (float32)."""
        super().__init__(info, description, input_shape)
        if info.external_data:
            raise self._unsupported('its weights are in an external data file (.onnx.data), '
                                    'which OpenCV DNN cannot read; or save the model as one '
                                    'file (onnx.save with save_as_external_data=False)')
        self._static_copy = _static_copy(info, self.input_shape)
        try:
            self._open(target, require_cuda, notes)
        finally:
            if self._static_copy:
                os.unlink(self._static_copy)

    def _open(self, target: str, require_cuda: bool, notes: list[str]) -> None:
        info = self.info
        stamps = tuple(_stamp(path) for path in (info.path, info.config_path) if path)
        dtype = np.dtype(self.input_dtype).name
        key = (info.path, info.config_path, stamps, self.input_shape, dtype, info.output_names)
        probed = _cached_probe(key, self._static_copy or info.path, info.config_path,
                               self.input_shape, dtype, info.output_names)
        if not probed['ok']:
            if info.file_format == 'onnx' or probed.get('crashed'):
                raise self._unsupported(probed['error'])
            if probed.get('stage') == 'run':
                raise self.run_error('OpenCV DNN', RuntimeError(probed['error']))
            raise self._read_error(probed['error'])
        self._lock = threading.Lock()  # a cv2.dnn.Net runs one input at a time
        self.output_names = tuple(name for name, _ in probed['outputs'])
        # OpenCV DNN returns 1-D outputs (scores, labels) as 2-D: give them the file's rank.
        self._output_ranks = {output.name: len(output.dims) for output in info.outputs}
        self.cuda_problem = None
        cuda_problem = opencv_cuda_problem() if target != 'cpu' else 'target is cpu'
        if cuda_problem is None:
            self._net = self._load(cuda=True)
            try:
                self.forward(np.zeros(self.input_shape, self.input_dtype))
                self.device = 'cuda'
                return
            except cv2.error as error:
                cuda_problem = f'CUDA forward failed: {short_error(error)}'
        self.cuda_problem = cuda_problem
        if require_cuda:
            raise ModelError('target', target, f'require_cuda is set but OpenCV DNN cannot use '
                                               f'CUDA: {cuda_problem}')
        # With target auto, missing CUDA is no news (describe() says it); a failure is.
        if target == 'cuda' or cuda_problem.startswith('CUDA forward failed'):
            notes.append(f'opencv: running on CPU because {cuda_problem}')
        self._net = self._load(cuda=False)

    def _unsupported(self, why: str) -> ModelError:
        others = ''
        if self.info.file_format == 'onnx':
            if any(importlib.util.find_spec(name) for name in RUNTIME_MODULES.values()):
                others = '; use backend onnxruntime or openvino'
            else:
                # A robot with what rosdep installs: OpenCV DNN is the only runtime.
                others = ('; ONNX Runtime or OpenVINO may run it, and neither is installed: '
                          + install_hint('onnxruntime'))
        return ModelError('backend', self.name,
                          f'OpenCV DNN {cv2.__version__} cannot run model_path '
                          f'{self.info.path!r} at input shape {list(self.input_shape)}: '
                          f'{why}{others}')

    def _read_error(self, why: str) -> ModelError:
        """Return the error for a file OpenCV DNN cannot parse, naming the file at fault."""
        config_path = self.info.config_path
        if config_path and config_path in why:  # OpenCV names the file it failed to parse
            return ModelError('config_path', config_path,
                              f'OpenCV DNN cannot read config_path {config_path!r} (for '
                              f'{self.info.path!r}): {why}')
        return ModelError('model_path', self.info.path,
                          f'OpenCV DNN cannot read {self.info.path!r}: {why}')

    def _load(self, cuda: bool) -> cv2.dnn.Net:
        # A fresh Net each time: one that failed on CUDA, or ran at another size, is unusable.
        config_path = self.info.config_path
        try:
            net = cv2.dnn.readNet(self._static_copy or self.info.path, config_path)
        except cv2.error as error:
            raise self._read_error(short_error(error)) from error
        if cuda:
            net.setPreferableBackend(cv2.dnn.DNN_BACKEND_CUDA)
            net.setPreferableTarget(cv2.dnn.DNN_TARGET_CUDA)
        else:
            net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
            net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        return net

    def forward(self, network_input: np.ndarray) -> dict[str, np.ndarray]:
        """Run the network; every output by name (``forward`` with the names, not the last)."""
        with self._lock:
            self._net.setInput(network_input)
            outputs = self._net.forward(list(self.output_names))
        return {name: _declared_rank(output, self._output_ranks.get(name))
                for name, output in zip(self.output_names, outputs)}

    def describe(self) -> str:
        """Return e.g. ``opencv DNN 4.14.0, backend OPENCV, target CPU (...)``."""
        if self.device == 'cuda':
            where = 'backend CUDA, target CUDA'
        else:
            where = 'backend OPENCV, target CPU'
            if self.cuda_problem and self.cuda_problem != 'target is cpu':
                where += f' (CUDA not used: {self.cuda_problem})'
        return f'opencv DNN {cv2.__version__}, {where}, {self.size_text()}'


def _declared_rank(output: np.ndarray, rank: int | None) -> np.ndarray:
    """Drop the 1-dims OpenCV DNN adds beyond the rank the model file declares ((3,) as (3, 1))."""
    if rank is None or output.ndim <= rank:
        return output
    shape = list(output.shape)
    while len(shape) > rank and shape[0] == 1:
        shape.pop(0)
    while len(shape) > rank and shape[-1] == 1:
        shape.pop()
    return output.reshape(shape) if len(shape) == rank else output
