"""
Inference backends: OpenCV DNN, ONNX Runtime, OpenVINO, behind one small interface.

Two kinds of model are understood:

- "scores" models take a float32 NCHW blob made like ``cv2.dnn.blobFromImage`` and output
  (1, C, h, w) scores; the class map is their argmax over C.
- "fused" ONNX models take the uint8 (1, H, W, 3) BGR frame and output the (1, H, W) class map
  themselves; their class count comes from the ``seg_ros.num_classes`` metadata entry.

ONNX Runtime and OpenVINO are optional and imported only when used.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
import functools
import importlib
import os
import re
from types import ModuleType
from typing import Any

import cv2
import numpy as np

from seg_ros.core.errors import ModelError
from seg_ros.core.render import resize_class_map

BACKENDS = ('auto', 'opencv', 'onnxruntime', 'openvino')
TARGETS = ('auto', 'cpu', 'cuda')
# 'f32': every backend in float32, all agree; 'fast': OpenVINO uses bf16 / f16 where it can.
PRECISIONS = ('f32', 'fast')
MAX_CLASSES = 256  # class maps are uint8

KIND_SCORES = 'scores'
KIND_FUSED = 'fused'

# Model formats by file extension; only ONNX runs on the optional runtimes.
ONNX_EXTENSIONS = ('.onnx',)
OPENCV_EXTENSIONS = ('.net', '.t7', '.caffemodel', '.pb', '.weights', '.tflite')
# Two-file formats: model format -> (framework, usual config_path extension, config required).
CONFIG_FORMATS = {'caffemodel': ('Caffe', '.prototxt', True),
                  'pb': ('TensorFlow', '.pbtxt', False),
                  'weights': ('Darknet', '.cfg', True)}

META_NUM_CLASSES = 'seg_ros.num_classes'
META_INPUT_WIDTH = 'seg_ros.input_width'
META_INPUT_HEIGHT = 'seg_ros.input_height'

ORT_CUDA_PROVIDERS = ('TensorrtExecutionProvider', 'CUDAExecutionProvider')
ORT_CPU_PROVIDER = 'CPUExecutionProvider'
# TensorRT builds an engine for the model at the first session (tens of seconds to minutes on a
# Jetson); caching it makes later starts fast. SEG_ROS_TRT_CACHE overrides the folder.
TRT_CACHE_VARIABLE = 'SEG_ROS_TRT_CACHE'


def tensorrt_cache_dir() -> str:
    """Return the TensorRT engine folder: ``$SEG_ROS_TRT_CACHE`` or ~/.cache/seg_ros/tensorrt."""
    return os.environ.get(TRT_CACHE_VARIABLE) or os.path.join(
        os.path.expanduser('~'), '.cache', 'seg_ros', 'tensorrt')


def ort_providers(gpu_providers: list[str], precision: str) -> list[Any]:
    """
    Return the ONNX Runtime provider list, best first, with TensorRT's engine cache enabled.

    :param gpu_providers: the names in ``ORT_CUDA_PROVIDERS`` this onnxruntime build has.
    :param precision: ``'fast'`` lets TensorRT build an FP16 engine.
    """
    providers: list[Any] = []
    for name in gpu_providers:
        if name == 'TensorrtExecutionProvider':
            providers.append((name, {'trt_engine_cache_enable': True,
                                     'trt_engine_cache_path': tensorrt_cache_dir(),
                                     'trt_fp16_enable': precision == 'fast'}))
        else:
            providers.append(name)
    return providers + [ORT_CPU_PROVIDER]


@dataclass(frozen=True)
class Preprocess:
    """
    How a frame becomes the network input.

    ``width`` x ``height`` is the network input size; 0 x 0 means "the size the model declares"
    (static input dimensions or ``seg_ros.input_*`` metadata). Scores models see
    ``(pixel - mean) * scale`` with ``mean`` in network channel order, R and B swapped first when
    ``swap_rb`` (the frame is BGR, the network wants RGB) — ``cv2.dnn.blobFromImage``'s rules.
    Fused models normalise their uint8 BGR input themselves and ignore scale, mean and swap_rb.
    """

    width: int
    height: int
    scale: float = 1 / 255
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    swap_rb: bool = True

    def __post_init__(self) -> None:
        """Check sizes, scale and mean; raise ModelError naming the configuration field."""
        for parameter, value in (('input_width', self.width), ('input_height', self.height)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ModelError(parameter, value,
                                 f'{parameter} must be a positive integer (or 0 for the size '
                                 f'the model declares), got {value!r}')
        if (self.width == 0) != (self.height == 0):
            raise ModelError('input_width', self.width,
                             f'input_width {self.width} and input_height {self.height}: set both '
                             'or neither to 0 (the size the model declares)')
        if not isinstance(self.scale, (int, float, np.number)) or not np.isfinite(self.scale) \
                or self.scale == 0:
            raise ModelError('scale', self.scale,
                             f'scale must be finite and non-zero, got {self.scale!r}')
        try:
            mean = tuple(float(value) for value in self.mean)
        except (TypeError, ValueError):
            mean = ()
        if len(mean) != 3 or not all(np.isfinite(mean)):
            raise ModelError('mean', self.mean,
                             f'mean must be 3 finite numbers, got {self.mean!r}')
        object.__setattr__(self, 'width', int(self.width))
        object.__setattr__(self, 'height', int(self.height))
        object.__setattr__(self, 'mean', mean)

    def with_size(self, width: int, height: int) -> Preprocess:
        """Return a copy with another input size."""
        return Preprocess(width, height, self.scale, self.mean, self.swap_rb)


# --------------------------------------------------------------------------------------------
# Model files


@dataclass(frozen=True)
class ModelInfo:
    """What is known about a model file before any runtime loads it."""

    path: str
    file_format: str                # 'onnx' or the extension OpenCV DNN dispatches on
    kind: str = KIND_SCORES         # KIND_SCORES or KIND_FUSED (by the ONNX input type)
    input_shape: tuple[int | str, ...] = ()   # ONNX input dimensions; str for symbolic ones
    metadata: dict[str, str] = field(default_factory=dict)
    config_path: str = ''           # network description of a two-file format, else ''

    def declared_size(self) -> tuple[int, int] | None:
        """Return the static (width, height) of the input, if the model fixes it."""
        if len(self.input_shape) != 4:
            return None
        height, width = (self.input_shape[1:3] if self.kind == KIND_FUSED
                         else self.input_shape[2:4])
        if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
            return width, height
        return None

    def metadata_size(self) -> tuple[int, int] | None:
        """Return (width, height) from ``seg_ros.input_*`` metadata, if present and valid."""
        try:
            size = int(self.metadata[META_INPUT_WIDTH]), int(self.metadata[META_INPUT_HEIGHT])
        except (KeyError, ValueError):
            return None
        return size if min(size) > 0 else None


def inspect_model(model_path: str) -> ModelInfo:
    """
    Check that ``model_path`` is a readable model file and read what its header says.

    ONNX files are parsed (just the protobuf framing, not the weights) for the input type and
    shape and the metadata, which also rejects text and truncated files with a clear message.

    :param model_path: model file.
    :return: the model's format, kind, input shape and metadata.
    :raises ModelError: naming ``model_path``.
    """
    data = _read_file('model_path', model_path)
    extension = os.path.splitext(model_path)[1].lower()
    if extension in OPENCV_EXTENSIONS:
        return ModelInfo(model_path, extension.lstrip('.'))
    try:
        return _parse_onnx_header(model_path, data)
    except ModelError:
        raise
    except ValueError as error:
        if extension in ONNX_EXTENSIONS:
            raise ModelError('model_path', model_path,
                             f'model_path {model_path!r} is not a valid ONNX model (truncated or '
                             f'another format?): {error}') from error
        raise ModelError('model_path', model_path,
                         f'model_path {model_path!r}: unknown model format (expected .onnx or one '
                         f'of {", ".join(OPENCV_EXTENSIONS)})') from error


def _read_file(parameter: str, path: str) -> bytes:
    """Return the contents of a non-empty file; ModelError naming ``parameter`` otherwise."""
    if not path:
        raise ModelError(parameter, path, f'{parameter} is empty')
    if not os.path.exists(path):
        raise ModelError(parameter, path, f'{parameter} {path!r} does not exist')
    if os.path.isdir(path):
        raise ModelError(parameter, path, f'{parameter} {path!r} is a directory, not a file')
    try:
        with open(path, 'rb') as model_file:
            data = model_file.read()
    except OSError as error:
        raise ModelError(parameter, path,
                         f'{parameter} {path!r} cannot be read: {error.strerror}') from error
    if not data:
        raise ModelError(parameter, path, f'{parameter} {path!r} is an empty file')
    return data


def _with_config(info: ModelInfo, config_path: str) -> ModelInfo:
    """Check ``config_path`` against the model's format; return ``info`` carrying it."""
    framework, extension, required = CONFIG_FORMATS.get(info.file_format, ('', '', False))
    if not config_path:
        if required:
            raise ModelError('config_path', config_path,
                             f'model_path {info.path!r} is a {framework} model: set config_path '
                             f'to its network description ({extension} file)')
        return info
    if not framework:
        raise ModelError('config_path', config_path,
                         f'config_path {config_path!r} is set but model_path {info.path!r} '
                         f'({info.file_format}) is a single-file model; config_path is only for '
                         'Caffe .caffemodel (+ .prototxt), TensorFlow .pb (+ .pbtxt) and Darknet '
                         '.weights (+ .cfg): leave it empty')
    _read_file('config_path', config_path)
    return replace(info, config_path=config_path)


# ONNX protobuf field numbers (onnx.proto3) of what the header parser reads.
_MODEL_IR_VERSION, _MODEL_GRAPH, _MODEL_METADATA = 1, 7, 14
_GRAPH_INITIALIZER, _GRAPH_INPUT, _GRAPH_OUTPUT = 5, 11, 12
_TENSOR_NAME = 8
_VALUE_NAME, _VALUE_TYPE = 1, 2
_TYPE_TENSOR = 1
_TENSOR_TYPE_ELEM, _TENSOR_TYPE_SHAPE = 1, 2
_SHAPE_DIM = 1
_DIM_VALUE, _DIM_PARAM = 1, 2
_ENTRY_KEY, _ENTRY_VALUE = 1, 2
_ONNX_FLOAT, _ONNX_UINT8 = 1, 2


def _read_varint(data: memoryview, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise ValueError('truncated varint')
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position


def _fields(data: memoryview) -> list[tuple[int, int | memoryview]]:
    """Split one protobuf message into (field number, int or bytes) pairs, in order."""
    fields = []
    position = 0
    while position < len(data):
        key, position = _read_varint(data, position)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ValueError('field number 0')
        if wire_type == 0:
            value, position = _read_varint(data, position)
        elif wire_type == 2:
            length, position = _read_varint(data, position)
            if position + length > len(data):
                raise ValueError('field runs past the end of the data')
            value = data[position:position + length]
            position += length
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            if position + size > len(data):
                raise ValueError('field runs past the end of the data')
            value = int.from_bytes(data[position:position + size], 'little')
            position += size
        else:
            raise ValueError(f'unsupported wire type {wire_type}')
        fields.append((number, value))
    return fields


def _field(fields: list[tuple[int, Any]], number: int, default: Any = None) -> Any:
    return next((value for field_number, value in fields if field_number == number), default)


def _text(value: memoryview) -> str:
    return bytes(value).decode('utf-8')


def _value_info(data: memoryview) -> tuple[str, int, tuple[int | str, ...]]:
    """Return (name, element type, dims) of an ONNX ValueInfoProto."""
    info = _fields(data)
    tensor = _fields(_field(_fields(_field(info, _VALUE_TYPE, b'')), _TYPE_TENSOR, b''))
    dims = []
    for number, dim in _fields(_field(tensor, _TENSOR_TYPE_SHAPE, b'')):
        if number == _SHAPE_DIM:
            dim_fields = _fields(dim)
            param = _field(dim_fields, _DIM_PARAM)
            dims.append(_text(param) if param is not None else _field(dim_fields, _DIM_VALUE, 0))
    return _text(_field(info, _VALUE_NAME, b'')), _field(tensor, _TENSOR_TYPE_ELEM, 0), tuple(dims)


def _parse_onnx_header(path: str, data: bytes) -> ModelInfo:
    """Read input type/shape and metadata of an ONNX file; ValueError if it is not one."""
    model = _fields(memoryview(data))
    graph_bytes = _field(model, _MODEL_GRAPH)
    if _field(model, _MODEL_IR_VERSION) is None or not isinstance(graph_bytes, memoryview):
        raise ValueError('no ir_version or graph')
    graph = _fields(graph_bytes)
    # Old exporters also list the weights among the inputs; the image input is the first other.
    weights = {_text(_field(_fields(tensor), _TENSOR_NAME, b'')) for number, tensor in graph
               if number == _GRAPH_INITIALIZER}
    inputs = [_value_info(value) for number, value in graph if number == _GRAPH_INPUT]
    inputs = [value for value in inputs if value[0] not in weights]
    if not inputs or _field(graph, _GRAPH_OUTPUT) is None:
        raise ValueError('the graph has no input or no output')
    metadata = {}
    for number, entry in model:
        if number == _MODEL_METADATA:
            entry_fields = _fields(entry)
            metadata[_text(_field(entry_fields, _ENTRY_KEY, b''))] = _text(
                _field(entry_fields, _ENTRY_VALUE, b''))
    _, element_type, shape = inputs[0]
    if element_type not in (_ONNX_FLOAT, _ONNX_UINT8):
        raise ModelError('model_path', path,
                         f'model_path {path!r}: input element type {element_type} is neither '
                         'float32 (scores model) nor uint8 (fused model)')
    kind = KIND_FUSED if element_type == _ONNX_UINT8 else KIND_SCORES
    channels = shape[3] if kind == KIND_FUSED else shape[1] if len(shape) > 1 else None
    if len(shape) != 4 or channels != 3:
        layout = '(1, H, W, 3) uint8' if kind == KIND_FUSED else '(1, 3, H, W) float32'
        raise ModelError('model_path', path,
                         f'model_path {path!r}: input shape {list(shape)} is not {layout}')
    return ModelInfo(path, 'onnx', kind, shape, metadata)


# --------------------------------------------------------------------------------------------
# Class maps


def class_map_from_scores(scores: np.ndarray) -> np.ndarray:
    """
    Return the argmax over classes of (C, h, w) or (1, C, h, w) scores as an (h, w) uint8 map.

    A running maximum over the class planes with OpenCV (vectorised, multi-threaded, no
    transposed copy); on equal scores the lowest class id wins, as with ``np.argmax``. NaN
    scores never win.

    :param scores: float scores, C <= 256.
    :return: class ids.
    """
    planes = scores.reshape(scores.shape[-3:])
    if planes.dtype != np.float32:
        planes = planes.astype(np.float32)
    best = planes[0].copy()
    class_map = np.zeros(best.shape, dtype=np.uint8)
    improved = np.empty(best.shape, dtype=np.uint8)
    for class_id in range(1, planes.shape[0]):
        cv2.compare(planes[class_id], best, cv2.CMP_GT, dst=improved)
        cv2.max(best, planes[class_id], dst=best)
        # A pixel's class is the last class that raised its maximum: ids only grow, so keep the
        # largest of (improved & class_id), 255 & id being id.
        cv2.bitwise_and(improved, class_id, dst=improved)
        cv2.max(class_map, improved, dst=class_map)
    return class_map


def _is_scores_output(output: np.ndarray) -> bool:
    return output.ndim == 4 and output.shape[1] > 1 and np.issubdtype(output.dtype, np.floating)


def _class_ids_output(output: np.ndarray) -> np.ndarray:
    """Return an (h, w) uint8 map from a (1, h, w) or (1, 1, h, w) class-id output."""
    class_map = output.reshape(output.shape[-2:])
    return class_map if class_map.dtype == np.uint8 else class_map.astype(np.uint8)


# --------------------------------------------------------------------------------------------
# Backends


class Backend(ABC):
    """One loaded network at one input size. Not thread-safe: one ``infer`` at a time."""

    name: str = ''

    def __init__(self, info: ModelInfo, preprocess: Preprocess) -> None:
        """Keep the model description; subclasses load the network, then call ``_warm_up``."""
        self.info = info
        self.preprocess = preprocess
        self.kind = info.kind
        self.device = 'cpu'
        self.num_classes = 0
        self.precision = 'f32'  # the inference precision really used, for describe()

    @property
    def uses_cuda(self) -> bool:
        """Return whether the network really runs on an NVIDIA GPU."""
        return 'cuda' in self.device.lower() or 'tensorrt' in self.device.lower()

    @abstractmethod
    def describe(self) -> str:
        """Return one line saying what runs: runtime, device, input size."""

    @abstractmethod
    def _forward(self, network_input: np.ndarray) -> np.ndarray:
        """Run the network on a prepared input; return its first output."""

    def infer(self, frame: np.ndarray, encoding: str = 'bgr8') -> np.ndarray:
        """
        Segment one frame.

        :param frame: (H, W, 3) uint8 in ``encoding`` order, or (H, W) uint8 grey; any size.
        :param encoding: channel order of a 3-channel frame, ``'bgr8'`` or ``'rgb8'``.
        :return: (input height, input width) uint8 class map.
        """
        output = self._forward(self._prepare(frame, encoding))
        if _is_scores_output(output):
            class_map = class_map_from_scores(output)
        else:
            class_map = _class_ids_output(output)
        return resize_class_map(class_map, self.preprocess.width, self.preprocess.height)

    def _prepare(self, frame: np.ndarray, encoding: str) -> np.ndarray:
        """Turn a frame into the network input (blob or uint8 NHWC image)."""
        size = (self.preprocess.width, self.preprocess.height)
        if frame.ndim == 2:
            # Grey to 3 channels after resizing: fewer pixels to convert.
            frame = cv2.cvtColor(_resized(frame, size), cv2.COLOR_GRAY2BGR)
            encoding = 'bgr8'
        if self.kind == KIND_FUSED:
            image = _resized(frame, size)
            if encoding == 'rgb8':
                image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            return np.ascontiguousarray(image)[np.newaxis]
        # The swap turns a BGR frame into RGB; an RGB frame fed to an RGB network needs none.
        swap_rb = self.preprocess.swap_rb != (encoding == 'rgb8')
        return cv2.dnn.blobFromImage(frame, self.preprocess.scale, size, self.preprocess.mean,
                                     swap_rb, False)

    def _warm_up(self) -> None:
        """Run one frame (first runs allocate and compile) and learn the class count."""
        frame = np.full((self.preprocess.height, self.preprocess.width, 3), 128, np.uint8)
        output = self._forward(self._prepare(frame, 'bgr8'))
        if _is_scores_output(output):
            self.num_classes = int(output.shape[1])
        elif output.ndim in (3, 4) and output.size == output.shape[-1] * output.shape[-2]:
            self.num_classes = _metadata_num_classes(self.info)
        else:
            raise ModelError('model_path', self.info.path,
                             f'model_path {self.info.path!r}: output shape {list(output.shape)} '
                             f'{output.dtype} is neither (1, C, H, W) float scores nor a '
                             '(1, H, W) class map')
        if not 1 < self.num_classes <= MAX_CLASSES:
            raise ModelError('model_path', self.info.path,
                             f'model_path {self.info.path!r} has {self.num_classes} classes; '
                             f'2 to {MAX_CLASSES} are supported (uint8 class map)')

    def _run_error(self, runtime: str, error: Exception) -> ModelError:
        """Return the ModelError for a network that loaded but fails to run."""
        return ModelError('model_path', self.info.path,
                          f'{runtime} cannot run {self.info.path!r} at {self.preprocess.width}x'
                          f'{self.preprocess.height} (input_width x input_height): '
                          f'{_short(error)}')

    def _size_text(self) -> str:
        return (f'precision {self.precision}, input {self.preprocess.width}x'
                f'{self.preprocess.height}, {self.kind} model')


def _resized(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def _metadata_num_classes(info: ModelInfo) -> int:
    try:
        return int(info.metadata[META_NUM_CLASSES])
    except (KeyError, ValueError) as error:
        raise ModelError('model_path', info.path,
                         f'model_path {info.path!r} outputs class ids but has no valid '
                         f'{META_NUM_CLASSES!r} metadata entry: cannot tell the number of '
                         'classes') from error


def _short(error: BaseException) -> str:
    """Return the meaningful last line of a (possibly multi-line) runtime error, shortened."""
    # OpenCV continues messages on lines starting with '>' and prefixes source locations.
    lines = [line.strip().lstrip('>').strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line]
    text = lines[-1] if lines else type(error).__name__
    text = re.sub(r'OpenCV\([^)]*\)\s*\S+:\d+:\s*', '', text)
    return text if len(text) <= 300 else text[:297] + '...'


def _cpu_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# --- OpenCV DNN -----------------------------------------------------------------------------


def opencv_cuda_problem() -> str | None:
    """Return why OpenCV DNN cannot use CUDA here, or None if it can."""
    if not re.search(r'NVIDIA CUDA:\s*YES', cv2.getBuildInformation()):
        return 'this OpenCV build has no CUDA'
    if cv2.cuda.getCudaEnabledDeviceCount() <= 0:
        return 'OpenCV finds no CUDA device'
    return None


class OpenCVBackend(Backend):
    """``cv2.dnn`` network, CUDA when asked for and really working, else CPU."""

    name = 'opencv'

    def __init__(self, info: ModelInfo, preprocess: Preprocess, target: str,
                 require_cuda: bool, notes: list[str], precision: str = 'f32') -> None:
        """Load the network, try CUDA if wanted, warm up (float32); see :func:`open_backend`."""
        super().__init__(info, preprocess)
        self.cuda_problem = None
        cuda_problem = opencv_cuda_problem() if target != 'cpu' else 'target is cpu'
        if cuda_problem is None:
            self._net = self._load(cuda=True)
            try:
                self._warm_up()
                self.device = 'cuda'
                return
            except cv2.error as error:
                cuda_problem = f'CUDA forward failed: {_short(error)}'
        self.cuda_problem = cuda_problem
        if require_cuda:
            raise ModelError('target', target, f'require_cuda is set but OpenCV DNN cannot use '
                                               f'CUDA: {cuda_problem}')
        # With target auto, missing CUDA is no news (describe() says it); a failure is.
        if target == 'cuda' or cuda_problem.startswith('CUDA forward failed'):
            notes.append(f'opencv: running on CPU because {cuda_problem}')
        self._net = self._load(cuda=False)
        try:
            self._warm_up()
        except cv2.error as error:
            if self.kind == KIND_FUSED:
                raise self._unsupported_error(error) from error
            raise self._run_error('OpenCV DNN', error) from error

    def _unsupported_error(self, error: cv2.error) -> ModelError:
        what = 'fused (uint8 input) model' if self.kind == KIND_FUSED else 'ONNX model'
        return ModelError('backend', self.name,
                          f'OpenCV DNN cannot run the {what} {self.info.path!r}: '
                          f'{_short(error)}; use backend onnxruntime or openvino')

    def _load(self, cuda: bool) -> cv2.dnn.Net:
        # A fresh Net each time: one that failed on CUDA, or ran at another size, is unusable.
        config_path = self.info.config_path
        try:
            net = cv2.dnn.readNet(self.info.path, config_path)
        except cv2.error as error:
            if self.info.file_format == 'onnx':
                # The ONNX header is sound: an operator OpenCV DNN does not implement.
                raise self._unsupported_error(error) from error
            if config_path and config_path in str(error):
                # OpenCV names the file it failed to parse.
                raise ModelError('config_path', config_path,
                                 f'OpenCV DNN cannot read config_path {config_path!r} (for '
                                 f'{self.info.path!r}): {_short(error)}') from error
            raise ModelError('model_path', self.info.path,
                             f'OpenCV DNN cannot read {self.info.path!r}: '
                             f'{_short(error)}') from error
        if net.empty():
            raise ModelError('model_path', self.info.path,
                             f'OpenCV DNN read no network from {self.info.path!r}')
        if cuda:
            net.setPreferableBackend(cv2.dnn.DNN_BACKEND_CUDA)
            net.setPreferableTarget(cv2.dnn.DNN_TARGET_CUDA)
        else:
            net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
            net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        return net

    def _forward(self, network_input: np.ndarray) -> np.ndarray:
        self._net.setInput(network_input)
        return self._net.forward()

    def describe(self) -> str:
        """Return e.g. ``opencv DNN 4.14.0, backend OPENCV, target CPU (...)``."""
        if self.device == 'cuda':
            where = 'backend CUDA, target CUDA'
        else:
            where = 'backend OPENCV, target CPU'
            if self.cuda_problem and self.cuda_problem != 'target is cpu':
                where += f' (CUDA not used: {self.cuda_problem})'
        return f'opencv DNN {cv2.__version__}, {where}, {self._size_text()}'


# --- ONNX Runtime ---------------------------------------------------------------------------


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime session: TensorRT, CUDA or CPU execution provider."""

    name = 'onnxruntime'

    def __init__(self, info: ModelInfo, preprocess: Preprocess, target: str,
                 require_cuda: bool, notes: list[str], precision: str = 'f32') -> None:
        """Create the session with the best providers for ``target``, warm up; float32 only."""
        super().__init__(info, preprocess)
        ort = _import_runtime('onnxruntime')
        available = ort.get_available_providers()
        gpu_providers = [name for name in ORT_CUDA_PROVIDERS
                         if name in available and target != 'cpu']
        if target != 'cpu' and not gpu_providers:
            problem = (f'onnxruntime {ort.__version__} has no CUDA provider (providers: '
                       f'{", ".join(available)})')
            if require_cuda:
                raise ModelError('target', target, f'require_cuda is set but {problem}')
            if target == 'cuda':
                notes.append(f'onnxruntime: running on CPU because {problem}')
        options = ort.SessionOptions()
        self.threads = _cpu_threads()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        # Idle worker threads would otherwise spin, taking CPU from the rest of the process.
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                info.path, sess_options=options,
                providers=ort_providers(gpu_providers, precision))
        except Exception as error:  # onnxruntime raises its own exception types
            raise ModelError('model_path', info.path, f'onnxruntime cannot load {info.path!r}: '
                                                      f'{_short(error)}') from error
        self.device = self._session.get_providers()[0]
        if gpu_providers and self.device not in gpu_providers:
            problem = f'onnxruntime fell back from {" and ".join(gpu_providers)} to {self.device}'
            if require_cuda:
                raise ModelError('target', target, f'require_cuda is set but {problem}')
            notes.append(f'onnxruntime: {problem} (CUDA libraries missing or incompatible?)')
        if self.device == 'TensorrtExecutionProvider':
            self.precision = 'f16' if precision == 'fast' else 'f32'
            notes.append(f'onnxruntime: TensorRT engines cached in {tensorrt_cache_dir()}')
        self._input_name = self._session.get_inputs()[0].name
        self._output_name = self._session.get_outputs()[0].name
        try:
            self._warm_up()
        except ModelError:
            raise
        except Exception as error:  # onnxruntime raises its own exception types
            raise self._run_error('onnxruntime', error) from error

    def _forward(self, network_input: np.ndarray) -> np.ndarray:
        return self._session.run([self._output_name], {self._input_name: network_input})[0]

    def describe(self) -> str:
        """Return e.g. ``onnxruntime 1.23.2, provider CPUExecutionProvider, 2 threads, ...``."""
        threads = f', {self.threads} threads' if self.device == ORT_CPU_PROVIDER else ''
        return (f'onnxruntime {_import_runtime("onnxruntime").__version__}, provider '
                f'{self.device}{threads}, {self._size_text()}')


# --- OpenVINO -------------------------------------------------------------------------------


class OpenVinoBackend(Backend):
    """OpenVINO compiled model at a static input shape, CPU (or Intel GPU) device."""

    name = 'openvino'

    def __init__(self, info: ModelInfo, preprocess: Preprocess, target: str,
                 require_cuda: bool, notes: list[str], precision: str = 'f32') -> None:
        """Read, reshape to the input size, compile (at ``precision``), warm up."""
        super().__init__(info, preprocess)
        ov = _import_runtime('openvino')
        if target == 'cuda' or require_cuda:
            if require_cuda:
                raise ModelError('target', target,
                                 'require_cuda is set but OpenVINO has no CUDA device')
            notes.append('openvino: CUDA requested but OpenVINO has no CUDA device')
        core = ov.Core()
        self.device = 'GPU' if target == 'auto' and 'GPU' in core.available_devices else 'CPU'
        if info.kind == KIND_FUSED:
            shape = [1, preprocess.height, preprocess.width, 3]
        else:
            shape = [1, 3, preprocess.height, preprocess.width]
        # f32 so that results match the other backends (the CPU plugin may default to bf16).
        hint = _openvino_fast_precision(core, self.device) if precision == 'fast' else 'f32'
        try:
            model = core.read_model(info.path)
            model.reshape({model.inputs[0].get_any_name(): shape})
            self._compiled = core.compile_model(model, self.device, {
                'PERFORMANCE_HINT': 'LATENCY', 'INFERENCE_PRECISION_HINT': hint})
        except Exception as error:  # OpenVINO raises RuntimeError and its own types
            raise ModelError('model_path', info.path,
                             f'openvino cannot load {info.path!r} at {preprocess.width}x'
                             f'{preprocess.height} (input_width x input_height): '
                             f'{_short(error)}') from error
        self._request = self._compiled.create_infer_request()
        self._version = ov.get_version().split('-')[0]
        try:  # what the plugin really uses (it may override the hint)
            used = self._compiled.get_property('INFERENCE_PRECISION_HINT')
            self.precision = str(getattr(used, 'get_type_name', lambda: used)())
        except Exception:  # a plugin without the property: the hint stands
            self.precision = hint
        try:
            self._warm_up()
        except ModelError:
            raise
        except Exception as error:  # OpenVINO raises RuntimeError and its own types
            raise self._run_error('openvino', error) from error

    def _forward(self, network_input: np.ndarray) -> np.ndarray:
        # infer() copies the outputs, so results stay valid after the next request.
        return self._request.infer({0: network_input})[0]

    def describe(self) -> str:
        """Return e.g. ``openvino 2026.4.1, device CPU, precision f32, ...``."""
        return f'openvino {self._version}, device {self.device}, {self._size_text()}'


def _openvino_fast_precision(core: Any, device: str) -> str:
    """Return the lowest float precision ``device`` supports natively: bf16, f16 or f32."""
    try:
        capabilities = core.get_property(device, 'OPTIMIZATION_CAPABILITIES')
    except Exception:  # OpenVINO raises RuntimeError and its own types
        return 'f32'
    if device == 'CPU' and 'BF16' in capabilities:
        return 'bf16'
    return 'f16' if 'FP16' in capabilities else 'f32'


# --------------------------------------------------------------------------------------------
# Choosing and opening a backend

_BACKEND_CLASSES = {backend.name: backend
                    for backend in (OpenCVBackend, OnnxRuntimeBackend, OpenVinoBackend)}


@functools.cache
def _import_runtime(module_name: str) -> ModuleType:
    return importlib.import_module(module_name)


def _runtime_problem(name: str) -> str | None:
    if name == 'opencv':
        return None
    try:
        _import_runtime(name)
    except Exception as error:  # ImportError, or a broken installation raising anything
        return f'{name} is not installed or does not import ({_short(error)})'
    return None


def available_backends() -> dict[str, str | None]:
    """
    Report which backends can be used here.

    :return: backend name -> None if usable, else a one-line reason it is not.
    """
    return {name: _runtime_problem(name) for name in BACKENDS if name != 'auto'}


def cuda_problems() -> dict[str, str | None]:
    """
    Report which backends could run on CUDA here.

    :return: backend name -> None if it has a CUDA path, else the reason it has none.
    """
    problems = {'opencv': opencv_cuda_problem(), 'openvino': 'OpenVINO has no CUDA device'}
    problem = _runtime_problem('onnxruntime')
    if problem is None:
        ort = _import_runtime('onnxruntime')
        if not any(name in ort.get_available_providers() for name in ORT_CUDA_PROVIDERS):
            problem = f'onnxruntime {ort.__version__} has no CUDA or TensorRT provider'
    problems['onnxruntime'] = problem
    return problems


def _cuda_summary(info: ModelInfo) -> str:
    """Return why each backend that could read the model cannot use CUDA, on one line."""
    return '; '.join(f'{name}: {problem}' for name, problem in cuda_problems().items()
                     if problem and (info.file_format == 'onnx' or name == 'opencv'))


def _auto_order(info: ModelInfo, target: str, require_cuda: bool) -> list[tuple[str, bool]]:
    """Return (backend, for CUDA only) pairs to try, best first, for ``backend='auto'``."""
    names = ('onnxruntime', 'opencv') if info.file_format == 'onnx' else ('opencv',)
    cuda = cuda_problems()
    order = [(name, True) for name in names if target != 'cpu' and cuda[name] is None]
    if require_cuda:
        return order
    # Measured on a 2-core CPU with ENet 1024x512: OpenVINO ~75 ms, OpenCV ~135 ms, ORT ~140 ms.
    # A fused model runs on OpenCV only if cv2.dnn supports all its operators: it comes last.
    names = ('openvino', 'onnxruntime', 'opencv') if info.file_format == 'onnx' else ('opencv',)
    return order + [(name, False) for name in names]


def _check_backend_format(name: str, info: ModelInfo) -> None:
    if name != 'opencv' and info.file_format != 'onnx':
        raise ModelError('backend', name,
                         f'backend {name!r} reads only ONNX models, not {info.path!r} '
                         f'({info.file_format}); use backend opencv or auto')


def _resolve_size(preprocess: Preprocess, info: ModelInfo, notes: list[str]) -> Preprocess:
    """Apply the model's declared size when asked for (0 x 0); reject a conflicting one."""
    declared = info.declared_size()
    if preprocess.width == 0:
        size = declared or info.metadata_size()
        if size is None:
            raise ModelError('input_width', 0,
                             f'input_width and input_height are 0 (use the model size) but '
                             f'{info.path!r} declares no input size: set them')
        notes.append(f'input size {size[0]}x{size[1]} from the model')
        return preprocess.with_size(*size)
    size = (preprocess.width, preprocess.height)
    if declared and declared != size:
        parameter = 'input_width' if declared[0] != size[0] else 'input_height'
        raise ModelError(parameter, getattr(preprocess, parameter.split('_')[1]),
                         f'{info.path!r} has a fixed {declared[0]}x{declared[1]} input but '
                         f'input_width x input_height is {size[0]}x{size[1]}: set them to '
                         f'{declared[0]}x{declared[1]}, or both to 0 (use the model size)')
    suggested = info.metadata_size()
    if suggested and suggested != size:
        notes.append(f'the model was exported for {suggested[0]}x{suggested[1]}; running at '
                     f'{size[0]}x{size[1]}')
    return preprocess


def _precision_notes(opened: Backend, precision: str, notes: list[str]) -> list[str]:
    """Add a note when ``precision='fast'`` was asked for but runs float32."""
    if precision == 'fast' and opened.precision == 'f32':
        why = ('has no lower precision on this device' if opened.name == 'openvino'
               else 'computes in float32 only')
        notes.append(f'{opened.name}: precision fast asked for, but {opened.name} {why}: running '
                     'f32')
    return notes


def open_backend(model_path: str, preprocess: Preprocess, backend: str = 'auto',
                 target: str = 'auto', require_cuda: bool = False, config_path: str = '',
                 precision: str = 'f32') -> tuple[Backend, list[str]]:
    """
    Load a model on the best (or the named) backend and warm it up.

    :param model_path: model file: ONNX (any backend) or a format OpenCV DNN reads (Torch7
        ``.net``/``.t7``, Caffe ``.caffemodel``, TensorFlow ``.pb``, Darknet ``.weights``, ...).
    :param preprocess: input size and normalisation.
    :param backend: ``'auto'``, ``'opencv'``, ``'onnxruntime'`` or ``'openvino'``.
    :param target: ``'auto'`` (CUDA when really available), ``'cpu'`` or ``'cuda'`` (falls back
        to CPU with a note unless ``require_cuda``).
    :param require_cuda: fail instead of running without CUDA.
    :param config_path: the network description of a two-file format, read by OpenCV DNN: Caffe
        ``.prototxt`` (required), TensorFlow ``.pbtxt`` (optional), Darknet ``.cfg`` (required);
        must be empty for other formats (ONNX, Torch7, TFLite).
    :param precision: ``'f32'`` (every backend computes in float32 and they agree) or ``'fast'``
        (OpenVINO may use bf16 on a CPU that has it, f16 on a GPU: faster, slightly different
        class maps; the other backends stay float32). ``describe()`` names the one used.
    :return: the backend, and notes: one-line reasons for the choices made (backends skipped,
        why CUDA is not used, ...).
    :raises ModelError: naming the parameter at fault (``model_path``, ``config_path``,
        ``backend``, ``target``, ``precision``, ``input_width``, ``input_height``, ...).
    """
    if backend not in BACKENDS:
        raise ModelError('backend', backend, f'backend must be one of {BACKENDS}, got {backend!r}')
    if target not in TARGETS:
        raise ModelError('target', target, f'target must be one of {TARGETS}, got {target!r}')
    if precision not in PRECISIONS:
        raise ModelError('precision', precision,
                         f'precision must be one of {PRECISIONS}, got {precision!r}')
    if require_cuda and target == 'cpu':
        raise ModelError('target', target, 'target is cpu but require_cuda is set')
    notes: list[str] = []
    # Only OpenCV DNN reads the two-file formats, so a config_path leaves auto one choice.
    info = _with_config(inspect_model(model_path), config_path)
    preprocess = _resolve_size(preprocess, info, notes)
    if info.kind == KIND_FUSED:
        notes.append('fused model: it normalises its uint8 BGR input itself (scale, mean and '
                     'swap_rb are not used)')
    if backend != 'auto':
        _check_backend_format(backend, info)
        problem = _runtime_problem(backend)
        if problem:
            raise ModelError('backend', backend, f'backend {backend!r} cannot be used: {problem}')
        opened = _BACKEND_CLASSES[backend](info, preprocess, target, require_cuda, notes,
                                           precision)
        return opened, _precision_notes(opened, precision, notes)
    failures = []
    tried_cuda = set()
    order = _auto_order(info, target, require_cuda)
    if target != 'cpu' and not any(for_cuda for _, for_cuda in order):
        notes.append(f'auto: no backend can use CUDA here ({_cuda_summary(info)})')
    for name, for_cuda in order:
        problem = _runtime_problem(name)
        if problem:
            notes.append(f'auto: skipped {name}: {problem}')
            continue
        try:
            # A backend whose CUDA path was just tried runs the CPU attempt on the CPU directly.
            opened = _BACKEND_CLASSES[name](info, preprocess,
                                            'cpu' if name in tried_cuda else target,
                                            require_cuda, notes, precision)
        except ModelError as error:
            if error.parameter in ('input_width', 'input_height'):
                raise
            failures.append(error)
            notes.append(f'auto: skipped {name}: {error}')
            continue
        if for_cuda and not opened.uses_cuda:
            tried_cuda.add(name)
            notes.append(f'auto: {name} does not run on CUDA ({opened.device}); trying the CPU '
                         'order')
            continue
        notes.append(f'auto: chose {name}')
        return opened, _precision_notes(opened, precision, notes)
    if require_cuda and all(error.parameter == 'target' for error in failures):
        reasons = '; '.join(str(error) for error in failures) or _cuda_summary(info)
        raise ModelError('target', target,
                         f'require_cuda is set but no backend can use CUDA: {reasons}')
    if len(failures) == 1:
        raise failures[0]
    raise ModelError('model_path', model_path, f'no backend can run {model_path!r}: '
                     + '; '.join(str(error) for error in failures))
