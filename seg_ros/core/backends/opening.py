"""Choosing a backend, resolving the model description against the file, opening, warming up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
import os
from typing import Any

import numpy as np

from seg_ros.core.backends.base import Backend, import_runtime, short_error
from seg_ros.core.backends.opencv_backend import opencv_cuda_problem, OpenCVBackend
from seg_ros.core.backends.openvino_backend import OpenVinoBackend
from seg_ros.core.backends.ort_backend import OnnxRuntimeBackend, ort_cuda_problem
from seg_ros.core.decode.semantic import check_output, output_layout
from seg_ros.core.errors import ModelError
from seg_ros.core.install_hints import install_hint, RUNTIME_MODULES
from seg_ros.core.model.description import describe_model, ModelDescription
from seg_ros.core.model.files import inspect_model, KIND_FUSED, ModelInfo
from seg_ros.core.model.signature import task_from_signature, task_hint
from seg_ros.core.options import BACKENDS, PRECISIONS, TARGETS

# ONNX float element types: float32, float16, float64, bfloat16.
FLOAT_TYPES = (1, 10, 11, 16)
# The input size of a model that declares none, where nothing else sets one.
DEFAULT_INPUT_SIZE = (1024, 512)
# Errors about the model and its description, the same whatever the runtime: auto stops there.
_DESCRIPTION_PARAMETERS = ('input_width', 'input_height', 'input_layout', 'output_name',
                           'output_layout', 'num_classes', 'channel_order')

_BACKEND_CLASSES = {backend.name: backend
                    for backend in (OpenCVBackend, OnnxRuntimeBackend, OpenVinoBackend)}


def _runtime_problem(name: str) -> str | None:
    if name == 'opencv':
        return None
    try:
        import_runtime(name)
    except ModuleNotFoundError as error:
        if error.name == name:
            return f'{name} is not installed'
        return f'{name} does not import ({short_error(error)})'
    except Exception as error:  # ImportError, or a broken installation raising anything
        return f'{name} does not import ({short_error(error)})'
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
    return {'opencv': opencv_cuda_problem(), 'openvino': 'OpenVINO has no CUDA device',
            'onnxruntime': _runtime_problem('onnxruntime') or ort_cuda_problem()}


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
    # OpenCV DNN reads the fewest ONNX exports: it comes last.
    names = ('openvino', 'onnxruntime', 'opencv') if info.file_format == 'onnx' else ('opencv',)
    return order + [(name, False) for name in names]


def _check_backend_format(name: str, info: ModelInfo) -> None:
    if name != 'opencv' and info.file_format != 'onnx':
        raise ModelError('backend', name,
                         f'backend {name!r} reads only ONNX models, not {info.path!r} '
                         f'({info.file_format}); use backend opencv or auto')


def overrides_of(description: ModelDescription | Mapping[str, Any] | None) -> dict[str, Any]:
    """
    Return the fields a caller sets: a mapping as it is, a description's non-default fields.

    :param description: None, a mapping of field names, or a :class:`ModelDescription` (its
        fields that differ from the defaults override what the model file says).
    """
    if description is None:
        return {}
    if isinstance(description, ModelDescription):
        default = ModelDescription()
        return {spec.name: getattr(description, spec.name) for spec in fields(description)
                if getattr(description, spec.name) != getattr(default, spec.name)}
    return dict(description)


def resolve_description(info: ModelInfo, description: ModelDescription, notes: list[str]
                        ) -> tuple[ModelDescription, tuple[int, ...]]:
    """
    Fill in what the description leaves to the model: input layout and size, output name.

    :return: the resolved description and the input shape the backends load the model at.
    :raises ModelError: naming ``input_width``, ``input_height``, ``input_layout`` or
        ``output_name``.
    """
    dims = info.input_shape
    layout = description.input_layout or _declared_layout(info)
    if info.kind == KIND_FUSED and layout != 'NHWC':
        raise ModelError('input_layout', layout,
                         f'{info.path!r} takes a uint8 image {list(dims)}: input_layout must be '
                         f'NHWC, got {layout}')
    rank = 3 if layout == 'CHW' else 4
    channel_axis = {'NCHW': 1, 'NHWC': 3, 'CHW': 0}[layout]
    channels = dims[channel_axis] if len(dims) == rank else None
    if dims and channels != 3 and not isinstance(channels, str):
        raise ModelError('input_layout', layout,
                         f'{info.path!r}: input {info.inputs[0].name!r} is {list(dims)} '
                         f'{info.inputs[0].type_name()}, not a 3-channel {layout} image input')
    declared = _declared_size(info, layout)
    size = (description.input_width, description.input_height)
    if size == (0, 0):
        size = declared or DEFAULT_INPUT_SIZE
        if declared:
            notes.append(f'input size {size[0]}x{size[1]} from the model')
        else:
            notes.append(f'{info.path!r} declares no input size: running at {size[0]}x{size[1]} '
                         '(set input_width and input_height)')
    elif declared and declared != size:
        parameter = 'input_width' if declared[0] != size[0] else 'input_height'
        raise ModelError(parameter, size[0] if parameter == 'input_width' else size[1],
                         f'{info.path!r} has a fixed {declared[0]}x{declared[1]} input but '
                         f'input_width x input_height is {size[0]}x{size[1]}: set them to '
                         f'{declared[0]}x{declared[1]}, or both to 0 (use the model size)')
    _check_divisor(info, size, description.size_divisor)
    output_name = description.output_name
    if output_name and info.outputs and output_name not in info.output_names:
        raise ModelError('output_name', output_name,
                         f'output_name {output_name!r} is not an output of {info.path!r} '
                         f'(outputs: {", ".join(info.output_names)})')
    output_name = output_name or (info.output_names[0] if info.outputs else '')
    layout_out = description.output_layout
    if not layout_out and output_name:
        # What the file declares for the output: float scores or integer class ids.
        declared_type = next(output.element_type for output in info.outputs
                             if output.name == output_name)
        layout_out = 'NCHW' if declared_type in FLOAT_TYPES else 'class_ids'
    resolved = description.replaced(
        input_width=size[0], input_height=size[1], input_layout=layout,
        output_name=output_name, output_layout=layout_out)
    width, height = size
    shape = {'NCHW': (1, 3, height, width), 'NHWC': (1, height, width, 3),
             'CHW': (3, height, width)}[layout]
    return resolved, shape


def _declared_size(info: ModelInfo, layout: str) -> tuple[int, int] | None:
    """Return the fixed (width, height) the model's input shape states, or None."""
    dims = info.input_shape
    if len(dims) != (3 if layout == 'CHW' else 4):
        return None
    rows, columns = {'NCHW': (2, 3), 'NHWC': (1, 2), 'CHW': (1, 2)}[layout]
    height, width = dims[rows], dims[columns]
    if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
        return width, height
    return None


def _multiples(value: int, divisor: int) -> tuple[int, int]:
    """Return the multiples of ``divisor`` just below and above ``value`` (at least one)."""
    below = max(divisor, value // divisor * divisor)
    return below, max(below, -(-value // divisor) * divisor)


def _check_divisor(info: ModelInfo, size: tuple[int, int], divisor: int) -> None:
    """
    Refuse an input size the network cannot take, naming the nearest sizes it can.

    :raises ModelError: naming ``input_width`` (or ``input_height``), one line.
    """
    if not divisor or (size[0] % divisor == 0 and size[1] % divisor == 0):
        return
    widths, heights = _multiples(size[0], divisor), _multiples(size[1], divisor)
    pairs = sorted({(widths[0], heights[0]), (widths[1], heights[1])})
    nearest = [f'{width}x{height}' for width, height in pairs]
    parameter = 'input_width' if size[0] % divisor else 'input_height'
    raise ModelError(parameter, size[0] if parameter == 'input_width' else size[1],
                     f'input_width x input_height {size[0]}x{size[1]}: '
                     f'{os.path.basename(info.path)} takes only multiples of {divisor} (its '
                     f"description's size_divisor); the nearest that work: "
                     f'{" or ".join(nearest)}')


def keep_aspect(info: ModelInfo, described: ModelDescription, width: int, height: int,
                notes: list[str]) -> ModelDescription:
    """
    Complete a size given by one side only, keeping the aspect ratio of the model's own size.

    The other side is rounded to the description's ``size_divisor`` (else to a pixel).

    :param described: the description without the caller's size.
    :param width: the width asked for, 0 when the height is given.
    :param height: the height asked for, 0 when the width is given.
    :raises ModelError: naming the side not given, where the model states no size.
    """
    given, missing = ('input_width', 'input_height') if width else ('input_height', 'input_width')
    base = ((described.input_width, described.input_height) if described.input_width else
            _declared_size(info, described.input_layout or _declared_layout(info)))
    if base is None:
        raise ModelError(missing, 0, f'{given} {width or height} without {missing}: '
                                     f'{os.path.basename(info.path)} states no input size whose '
                                     f'aspect ratio could be kept; set {missing} too')
    divisor = described.size_divisor or 1
    if width:
        height = max(divisor, round(width * base[1] / base[0] / divisor) * divisor)
    else:
        width = max(divisor, round(height * base[0] / base[1] / divisor) * divisor)
    notes.append(f'input {width}x{height}: {missing} {height if width else width} keeps the '
                 f"aspect ratio of the model's {base[0]}x{base[1]}")
    return described.replaced(input_width=width, input_height=height)


def _declared_layout(info: ModelInfo) -> str:
    """Return the layout the model's input shape states: channels where the 3 is."""
    dims = info.input_shape
    if info.kind == KIND_FUSED:
        return 'NHWC'
    if len(dims) == 3:
        return 'CHW'
    if len(dims) == 4 and dims[1] != 3 and dims[3] == 3:
        return 'NHWC'
    return 'NCHW'


def _warm_up(opened: Backend) -> Backend:
    """Run one grey frame (first runs allocate and compile); check a semantic model's output."""
    description = opened.description
    frame = np.full((description.input_height, description.input_width, 3), 128, np.uint8)
    try:
        outputs = opened.forward(opened.prepare(frame, 'bgr8'))
    except ModelError:
        raise
    except Exception as error:  # every runtime raises its own types
        raise opened.run_error(opened.name, error) from error
    if not description.output_name:  # formats that name no outputs before loading
        description = description.replaced(output_name=opened.output_names[0])
    elif description.output_name not in outputs:
        raise ModelError('output_name', description.output_name,
                         f'{opened.name} gives no output {description.output_name!r} for '
                         f'{opened.info.path!r} (outputs: {", ".join(outputs)})')
    if description.task == 'semantic':
        output = outputs[description.output_name]
        try:
            opened.num_classes = check_output(description.output_name, output, description,
                                              opened.info.path)
        except ModelError as error:
            if error.parameter != 'output_layout':
                raise
            # Perhaps not a semantic model at all: say what the other tasks would need.
            raise ModelError(error.parameter, error.value,
                             f'{error}; {task_hint(opened.info)}') from None
        description = description.replaced(output_layout=output_layout(description, output))
        opened.output_shapes = {description.output_name: tuple(output.shape)}
    opened.description = description
    return opened


def _open_one(name: str, info: ModelInfo, description: ModelDescription,
              shape: tuple[int, ...], target: str, require_cuda: bool, notes: list[str],
              precision: str) -> Backend:
    opened = _BACKEND_CLASSES[name](info, description, shape, target, require_cuda, notes,
                                    precision)
    return _warm_up(opened)


@dataclass
class ModelPlan:
    """
    A model file read and described, before any backend opens it.

    :ivar info: what the file declares (:func:`seg_ros.core.model.files.inspect_model`).
    :ivar description: the description resolved against the file (input size and layout,
        output name), see :func:`resolve_description`.
    :ivar shape: the input shape the backends load the model at.
    :ivar notes: one-line reasons for what the description says (copied into each backend
        opened from the plan).
    """

    info: ModelInfo
    description: ModelDescription
    shape: tuple[int, ...]
    notes: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        """Return the model file's path."""
        return self.info.path


def check_choices(backend: str, target: str, precision: str, require_cuda: bool) -> None:
    """
    Check the backend, target and precision names.

    :raises ModelError: naming ``backend``, ``target`` or ``precision``.
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


def plan_model(model_path: str,
               description: ModelDescription | Mapping[str, Any] | None = None,
               config_path: str = '', preset: str = '') -> ModelPlan:
    """
    Read a model file and put its description together (no backend is opened).

    :param model_path: the model file (see :func:`open_backend`).
    :param description: the caller's overrides, as for :func:`open_backend`.
    :param config_path: the network description of a two-file format.
    :param preset: ``'imagenet'``, ``'unit'`` or '' (none; a sidecar may name one).
    :raises ModelError: naming the parameter at fault.
    """
    info = inspect_model(model_path, config_path)
    overrides = overrides_of(description)
    # seg_ros's fused exports take the BGR frame; their description may say otherwise.
    defaults = {'channel_order': 'BGR'} if info.kind == KIND_FUSED else {}
    task, signature = task_from_signature(info)
    if task:
        defaults['task'] = task
    width, height = overrides.get('input_width') or 0, overrides.get('input_height') or 0
    if bool(width) != bool(height):  # one side: the other keeps the model's aspect ratio
        overrides = {name: value for name, value in overrides.items()
                     if name not in ('input_width', 'input_height')}
    described, notes = describe_model(model_path, info.metadata, overrides, preset, defaults)
    if bool(width) != bool(height):
        described = keep_aspect(info, described, width, height, notes)
    if task and described.task == task and 'task' not in overrides:
        notes.append(f'description: task {task} recognised from the file ({signature})')
    resolved, shape = resolve_description(info, described, notes)
    if info.kind == KIND_FUSED:
        notes.append('fused model: it normalises its uint8 image input itself (rescale_factor, '
                     'image_mean and image_std are not used)')
    return ModelPlan(info, resolved, shape, notes)


def open_planned(plan: ModelPlan, backend: str = 'auto', target: str = 'auto',
                 require_cuda: bool = False, precision: str = 'f32') -> Backend:
    """
    Open a planned model on the named backend (or the best one for ``'auto'``), warmed up.

    :raises ModelError: naming the parameter at fault.
    """
    check_choices(backend, target, precision, require_cuda)
    notes = list(plan.notes)
    if backend == 'auto':
        return _open_auto(plan.info, plan.description, plan.shape, target, require_cuda, notes,
                          precision)
    _check_backend_format(backend, plan.info)
    problem = _runtime_problem(backend)
    if problem:
        raise ModelError('backend', backend, f'backend {backend!r} cannot be used: {problem}; '
                         f'{install_hint(RUNTIME_MODULES[backend])}')
    opened = _open_one(backend, plan.info, plan.description, plan.shape, target, require_cuda,
                       notes, precision)
    opened.notes = _precision_notes(opened, precision, notes)
    return opened


def open_backend(model_path: str,
                 description: ModelDescription | Mapping[str, Any] | None = None,
                 backend: str = 'auto', target: str = 'auto', require_cuda: bool = False,
                 config_path: str = '', precision: str = 'f32', preset: str = '') -> Backend:
    """
    Load a model on the best (or the named) backend and warm it up.

    :func:`plan_model`, then :func:`open_planned`.

    :param model_path: model file: ONNX (any backend) or a format OpenCV DNN reads (Torch7
        ``.net``/``.t7``, Caffe ``.caffemodel``, TensorFlow ``.pb``, Darknet ``.weights``, ...).
    :param description: what the caller sets over the model's own description (its metadata
        and sidecar, see :mod:`seg_ros.core.model.description`): a mapping of fields, or a
        :class:`ModelDescription` whose non-default fields override.
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
    :param preset: ``'imagenet'``, ``'unit'`` or '' (none; a sidecar may name one).
    :return: the backend, with ``description`` resolved and ``notes``: one-line reasons for the
        choices made (where the description came from, backends skipped, why CUDA is not used).
    :raises ModelError: naming the parameter at fault (``model_path``, ``config_path``,
        ``backend``, ``target``, ``precision``, ``input_width``, ``output_name``, ...).
    """
    check_choices(backend, target, precision, require_cuda)
    return open_planned(plan_model(model_path, description, config_path, preset), backend,
                        target, require_cuda, precision)


def _open_auto(info: ModelInfo, description: ModelDescription, shape: tuple[int, ...],
               target: str, require_cuda: bool, notes: list[str], precision: str) -> Backend:
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
            opened = _open_one(name, info, description, shape,
                               'cpu' if name in tried_cuda else target, require_cuda, notes,
                               precision)
        except ModelError as error:
            if error.parameter in _DESCRIPTION_PARAMETERS:
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
        opened.notes = _precision_notes(opened, precision, notes)
        return opened
    if require_cuda and all(error.parameter == 'target' for error in failures):
        reasons = '; '.join(str(error) for error in failures) or _cuda_summary(info)
        raise ModelError('target', target,
                         f'require_cuda is set but no backend can use CUDA: {reasons}')
    if len(failures) == 1:
        raise failures[0]
    raise ModelError('model_path', info.path, f'no backend can run {info.path!r}: '
                     + '; '.join(str(error) for error in failures))


def _precision_notes(opened: Backend, precision: str, notes: list[str]) -> list[str]:
    """Add a note when ``precision='fast'`` was asked for but runs float32."""
    if precision == 'fast' and opened.precision == 'f32':
        why = ('has no lower precision on this device' if opened.name == 'openvino'
               else 'computes in float32 only')
        notes.append(f'{opened.name}: precision fast asked for, but {opened.name} {why}: running '
                     'f32')
    return notes
