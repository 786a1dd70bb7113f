"""
What a model file says before any runtime loads it: format, inputs, outputs, metadata.

ONNX files are read with the ``onnx`` library where it is installed (``load_external_data=False``:
the header and graph, never the weights of an ``.onnx.data`` file); elsewhere with the small
reader of :mod:`seg_ros.core.model.onnx_header`, which reads the same fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
import os

from seg_ros.core.errors import ModelError
from seg_ros.core.model.onnx_header import read_header

# Model formats by file extension; only ONNX runs on the optional runtimes.
ONNX_EXTENSIONS = ('.onnx',)
OPENCV_EXTENSIONS = ('.net', '.t7', '.caffemodel', '.pb', '.weights', '.tflite')
# Two-file formats: model format -> (framework, usual config_path extension, config required).
CONFIG_FORMATS = {'caffemodel': ('Caffe', '.prototxt', True),
                  'pb': ('TensorFlow', '.pbtxt', False),
                  'weights': ('Darknet', '.cfg', True)}

KIND_SCORES = 'scores'
KIND_FUSED = 'fused'

ONNX_FLOAT, ONNX_UINT8 = 1, 2
ONNX_TYPE_NAMES = {1: 'float32', 2: 'uint8', 3: 'int8', 6: 'int32', 7: 'int64', 9: 'bool',
                   10: 'float16', 11: 'float64', 16: 'bfloat16'}


@dataclass(frozen=True)
class TensorInfo:
    """One graph input or output: name, ONNX element type, dims (str for symbolic ones)."""

    name: str
    element_type: int
    dims: tuple[int | str, ...]

    def type_name(self) -> str:
        """Return e.g. ``'float32'``."""
        return ONNX_TYPE_NAMES.get(self.element_type, f'type {self.element_type}')

    def static_dims(self) -> tuple[int, ...] | None:
        """Return the dims if all are known positive integers, else None."""
        if all(isinstance(dim, int) and dim > 0 for dim in self.dims):
            return tuple(self.dims)  # type: ignore[arg-type]
        return None


@dataclass(frozen=True)
class ModelInfo:
    """What is known about a model file before any runtime loads it."""

    path: str
    file_format: str                # 'onnx' or the extension OpenCV DNN dispatches on
    kind: str = KIND_SCORES         # KIND_FUSED: uint8 image input (the model normalises)
    inputs: tuple[TensorInfo, ...] = ()
    outputs: tuple[TensorInfo, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    external_data: bool = False     # weights in a separate file (``.onnx.data``)
    config_path: str = ''           # network description of a two-file format, else ''

    @property
    def input_shape(self) -> tuple[int | str, ...]:
        """Return the dims of the image input, () when the format does not say."""
        return self.inputs[0].dims if self.inputs else ()

    @property
    def output_names(self) -> tuple[str, ...]:
        """Return the graph's output names in order, () when the format does not say."""
        return tuple(output.name for output in self.outputs)


def inspect_model(model_path: str, config_path: str = '') -> ModelInfo:
    """
    Check that ``model_path`` is a readable model file and read what its header says.

    :param model_path: model file.
    :param config_path: second file of a two-file format (Caffe, TensorFlow, Darknet), or ''.
    :return: the model's format, kind, inputs, outputs and metadata.
    :raises ModelError: naming ``model_path`` or ``config_path``.
    """
    check_file('model_path', model_path)
    extension = os.path.splitext(model_path)[1].lower()
    if extension in OPENCV_EXTENSIONS:
        return _with_config(ModelInfo(model_path, extension.lstrip('.')), config_path)
    try:
        header = _read_onnx(model_path)
    except ValueError as error:
        if extension in ONNX_EXTENSIONS:
            raise ModelError('model_path', model_path,
                             f'model_path {model_path!r} is not a valid ONNX model (truncated or '
                             f'another format?): {error}') from error
        raise ModelError('model_path', model_path,
                         f'model_path {model_path!r}: unknown model format (expected .onnx or one '
                         f'of {", ".join(OPENCV_EXTENSIONS)})') from error
    inputs = tuple(TensorInfo(*value) for value in header['inputs'])
    outputs = tuple(TensorInfo(*value) for value in header['outputs'])
    if not inputs or not outputs:
        raise ModelError('model_path', model_path,
                         f'model_path {model_path!r}: the graph has no input or no output')
    element_type = inputs[0].element_type
    if element_type not in (ONNX_FLOAT, ONNX_UINT8):
        raise ModelError('model_path', model_path,
                         f'model_path {model_path!r}: input {inputs[0].name!r} is '
                         f'{inputs[0].type_name()}, neither float32 (a network input) nor uint8 '
                         '(a fused model taking the image itself)')
    kind = KIND_FUSED if element_type == ONNX_UINT8 else KIND_SCORES
    info = ModelInfo(model_path, 'onnx', kind, inputs, outputs, header['metadata'],
                     header['external_data'])
    return _with_config(info, config_path)


def check_file(parameter: str, path: str) -> None:
    """Check that ``path`` is a non-empty readable file; ModelError naming ``parameter``."""
    if not path:
        raise ModelError(parameter, path, f'{parameter} is empty')
    if not os.path.exists(path):
        raise ModelError(parameter, path, f'{parameter} {path!r} does not exist')
    if os.path.isdir(path):
        raise ModelError(parameter, path, f'{parameter} {path!r} is a directory, not a file')
    try:
        with open(path, 'rb') as model_file:
            first = model_file.read(1)
    except OSError as error:
        raise ModelError(parameter, path,
                         f'{parameter} {path!r} cannot be read: {error.strerror}') from error
    if not first:
        raise ModelError(parameter, path, f'{parameter} {path!r} is an empty file')


def _read_onnx(path: str) -> dict:
    """Return the header of an ONNX file as :func:`onnx_header.read_header` does."""
    try:
        import onnx
    except ImportError:
        with open(path, 'rb') as model_file:
            return read_header(model_file.read())
    from onnx.external_data_helper import uses_external_data
    try:
        model = onnx.load_model(path, load_external_data=False)
    except Exception as error:  # onnx raises DecodeError and others for a broken file
        raise ValueError(str(error) or type(error).__name__) from error
    graph = model.graph
    if not model.ir_version:
        raise ValueError('no ir_version')
    weights = {tensor.name for tensor in graph.initializer}

    def value_info(value) -> tuple[str, int, tuple[int | str, ...]]:
        tensor = value.type.tensor_type
        dims = tuple(dim.dim_param if dim.HasField('dim_param') else dim.dim_value
                     for dim in tensor.shape.dim)
        return value.name, tensor.elem_type, dims

    return {'inputs': [value_info(value) for value in graph.input if value.name not in weights],
            'outputs': [value_info(value) for value in graph.output],
            'external_data': any(uses_external_data(tensor) for tensor in graph.initializer),
            'metadata': {entry.key: entry.value for entry in model.metadata_props}}


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
    check_file('config_path', config_path)
    return replace(info, config_path=config_path)
