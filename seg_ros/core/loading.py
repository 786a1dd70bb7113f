"""
Opening the model a configuration names: one pipeline, each step once.

::

    open_model(model_path, description, backend, target, require_cuda, config_path,
               precision, preset) -> OpenedModel

1. **describe** -- :func:`~seg_ros.core.backends.opening.plan_model`: read the file, put its
   description together (metadata, sidecar, preset, the caller's overrides), recognise an
   instance model by its signature, resolve input size and layout;
2. **convert** -- a Torch7 ``.net``/``.t7`` for OpenVINO / ONNX Runtime: its fused ONNX form,
   converted once and cached (:func:`convert_cached`);
3. **open** -- :func:`~seg_ros.core.backends.opening.open_planned` on the named backend or the
   best one (``auto``), warmed up;
4. **verify** -- on a warm-up frame: a conversion against OpenCV DNN on the original file
   (below 99.9 %: refused, OpenCV DNN runs the ``.net``); OpenCV DNN on an ONNX file against
   ONNX Runtime or OpenVINO where one is installed (below 99 %: refused, naming the backend that
   works; none installed: said to be unverified); ``precision='fast'`` against float32
   (measured and reported);
5. **ready** -- an :class:`OpenedModel`: the backend, the file that really runs, notes, warnings
   and the figures of step 4.

Also::

    cache_dir() -> str                  # $SEG_ROS_CACHE, else $XDG_CACHE_HOME/seg_ros, else
                                        # ~/.cache/seg_ros
    converted_path(net_path, description) -> str  # where the conversion of that file goes
    agreement(first, second, frame) -> float      # share of pixels (0-1) with the same class

A converted file is keyed by the SHA-256 of the Torch7 file's content, the normalisation baked
into the fused graph (channel order, rescale_factor, image_mean, image_std) and the converter
version, so an edited or replaced ``.net`` is converted again and an unchanged one never is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
import functools
import hashlib
import os
from typing import Any

import numpy as np

from seg_ros.core.backends import available_backends, Backend, DEFAULT_INPUT_SIZE
from seg_ros.core.backends.opening import check_choices, ModelPlan, open_planned, plan_model
from seg_ros.core.errors import ModelError
from seg_ros.core.install_hints import install_hint, ROBOT_VENV
from seg_ros.core.model.description import ModelDescription
from seg_ros.core.warm_up import warm_up_frame

CACHE_VARIABLE = 'SEG_ROS_CACHE'
TORCH7_EXTENSIONS = ('.net', '.t7')
# Below this share of agreeing pixels the converted model is refused (OpenCV DNN runs).
MIN_CONVERSION_AGREEMENT = 0.999
# Below this share of pixels agreeing with ONNX Runtime / OpenVINO, OpenCV DNN is refused.
MIN_OPENCV_AGREEMENT = 0.99
# An instance model's outputs on OpenCV DNN must match the reference's within this share of
# the reference's largest magnitude (float32 summation order differs between runtimes).
OPENCV_OUTPUT_TOLERANCE = 1e-3
# The runtimes a conversion is for: OpenCV DNN reads the .net itself.
CONVERTED_BACKENDS = ('openvino', 'onnxruntime')
# The runtimes OpenCV DNN's output on an ONNX file is checked against, preferred first.
REFERENCE_BACKENDS = ('onnxruntime', 'openvino')


@dataclass
class OpenedModel:
    """
    The loaded backend and what the loading found out.

    ``model_file`` is the file that really runs (the cached conversion of a ``.net``, or the
    file configured). ``notes`` are informational lines, ``warnings`` lines a user should see
    (a conversion refused or impossible). ``conversion_agreement`` is the share of pixels of the
    warm-up frame on which the converted model and OpenCV DNN agree (None without conversion);
    ``fast_agreement`` the share on which ``precision='fast'`` agrees with f32 (None when the
    backend runs f32). ``verification`` says what the output was checked against, or why it
    was not ('' where nothing needed checking: ONNX Runtime and OpenVINO run the file as
    exported).
    """

    backend: Backend
    model_file: str
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    conversion_agreement: float | None = None
    fast_agreement: float | None = None
    verification: str = ''


def cache_dir() -> str:
    """Return seg_ros's cache folder: ``$SEG_ROS_CACHE``, ``$XDG_CACHE_HOME/seg_ros``, ..."""
    if os.environ.get(CACHE_VARIABLE):
        return os.environ[CACHE_VARIABLE]
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'seg_ros')


def file_digest(path: str) -> str:
    """Return the SHA-256 of a file's content, hex."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for chunk in iter(functools.partial(stream.read, 1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def fused_normalisation(description: ModelDescription
                        ) -> tuple[bool, tuple[float, ...], tuple[float, ...]]:
    """
    Return the converter's (swap_rb, scale, mean) for a description's pre-processing.

    The description's ``(pixel * rescale_factor - image_mean) / image_std`` is the converter's
    ``(pixel - mean) * scale`` with ``mean = image_mean / rescale_factor`` and ``scale =
    rescale_factor / image_std``, per channel in network order.
    """
    mean, std = description.network_mean_std()
    rescale = description.rescale_factor
    return (description.channel_order == 'RGB', tuple(rescale / value for value in std),
            tuple(value / rescale for value in mean))


def converted_path(net_path: str, description: ModelDescription) -> str:
    """Return the cache file of the fused-ONNX conversion of ``net_path`` for ``description``."""
    from seg_ros.core.model.torch7_onnx import CONVERTER_VERSION

    settings = ':'.join(repr(value) for value in fused_normalisation(description))
    settings_key = hashlib.sha256(settings.encode()).hexdigest()[:8]
    stem = os.path.splitext(os.path.basename(net_path))[0]
    name = f'{stem}-{file_digest(net_path)[:16]}-{settings_key}-v{CONVERTER_VERSION}.onnx'
    return os.path.join(cache_dir(), 'torch7-onnx', name)


def convert_cached(net_path: str, description: ModelDescription) -> tuple[str, bool]:
    """
    Return the fused ONNX conversion of a Torch7 file, converting it only when not cached.

    :return: (path of the ONNX file, whether it was converted now).
    :raises ValueError: the file is not a Torch7 network the converter supports.
    :raises OSError: the file cannot be read or the cache not written.
    :raises ImportError: the ``onnx`` package is missing.
    """
    path = converted_path(net_path, description)
    if os.path.isfile(path):
        return path, False
    from seg_ros.core.model.torch7_onnx import save_model, torch7_to_onnx

    width, height = _input_size(description)
    swap_rb, scale, mean = fused_normalisation(description)
    proto = torch7_to_onnx(net_path, fused=True, swap_rb=swap_rb, scale=scale, mean=mean,
                           width=width, height=height)
    save_model(proto, path)
    return path, True


def agreement(first: Backend, second: Backend, frame: np.ndarray) -> float:
    """Return the share of pixels (0-1) to which two backends give the same class."""
    return float(np.mean(first.infer(frame, 'bgr8') == second.infer(frame, 'bgr8')))


def _conversion_wanted(plan: ModelPlan, backend: str) -> str | None:
    """Return why a Torch7 file should not be converted, or None when it should."""
    if os.path.splitext(plan.path)[1].lower() not in TORCH7_EXTENSIONS:
        return 'not a Torch7 file'
    if backend == 'opencv':
        return 'backend opencv reads the .net itself'
    runtimes = available_backends()
    if backend == 'auto' and all(runtimes[name] for name in CONVERTED_BACKENDS):
        return 'neither openvino nor onnxruntime is installed'
    return None


def _input_size(description: ModelDescription) -> tuple[int, int]:
    """Return the (width, height) a Torch7 file runs at: the description's, else 1024x512."""
    if description.input_width and description.input_height:
        return description.input_width, description.input_height
    return DEFAULT_INPUT_SIZE


@dataclass
class _Request:
    """What the caller asked for, passed along the steps."""

    backend: str
    target: str
    require_cuda: bool
    precision: str
    min_agreement: float
    warnings: list[str] = field(default_factory=list)


def open_model(model_path: str,
               description: ModelDescription | Mapping[str, Any] | None = None,
               backend: str = 'auto', target: str = 'auto', require_cuda: bool = False,
               config_path: str = '', precision: str = 'f32', preset: str = '', *,
               min_agreement: float = MIN_CONVERSION_AGREEMENT) -> OpenedModel:
    """
    Describe, convert, open and verify a model (see the module's steps 1-5).

    :param description: the caller's description overrides, as for
        :func:`~seg_ros.core.backends.open_backend`.
    :param min_agreement: the share of agreeing pixels a conversion needs (0-1).
    :return: the backend and what happened (see :class:`OpenedModel`).
    :raises ModelError: naming the parameter at fault.
    """
    check_choices(backend, target, precision, require_cuda)
    request = _Request(backend, target, require_cuda, precision, min_agreement)
    plan = plan_model(model_path, description, config_path, preset)      # 1. describe
    converted = _convert(plan, request)                                  # 2. convert
    opened, exact = _open(plan, converted, request)                      # 3. open
    opened = _verify(opened, exact, plan, request)                       # 4. verify
    opened.warnings[:0] = request.warnings                               # 5. ready
    source = '' if opened.model_file == model_path else f', converted from {model_path}'
    opened.notes.append(f'model: running {opened.model_file}{source} on {opened.backend.name}')
    return opened


def _convert(plan: ModelPlan, request: _Request) -> ModelPlan | None:
    """
    Step 2: the plan of a Torch7 file's cached fused-ONNX conversion; None to run the file.

    The pre-processing the file would get on OpenCV DNN is baked into the fused graph.
    """
    skip = _conversion_wanted(plan, request.backend)
    if skip == 'neither openvino nor onnxruntime is installed':
        request.warnings.append(f'model: {plan.path!r} runs on OpenCV DNN, about 2x slower than '
                                f'OpenVINO on the fused ONNX form; add OpenVINO and onnx: '
                                f'pip install openvino onnx (on a robot: in {ROBOT_VENV})')
    if skip is not None:
        return None
    width, height = _input_size(plan.description)
    try:
        onnx_path, converted_now = convert_cached(plan.path, plan.description)
    except ImportError as error:
        return _refused(plan.path, f'the onnx package is missing ({error}); '
                        f'{install_hint("onnx")}', request)
    except (ValueError, OSError) as error:
        return _refused(plan.path, f'it cannot be converted to ONNX: {error}', request)
    converted = plan_model(onnx_path, {'input_width': width, 'input_height': height})
    done = 'converted' if converted_now else 'found the conversion of'
    converted.notes.insert(0, f'model: {done} {plan.path!r} to the fused ONNX form {onnx_path!r}')
    return converted


def _refused(model_path: str, reason: str, request: _Request) -> None:
    """Raise for an explicit ONNX-only backend; for auto, warn and return None (OpenCV DNN)."""
    if request.backend != 'auto':
        raise ModelError('backend', request.backend,
                         f'backend {request.backend!r} needs {model_path!r} in ONNX, but '
                         f'{reason}; use backend opencv or auto')
    request.warnings.append(f'model: running {model_path!r} on OpenCV DNN because {reason}')
    return None


def _open(plan: ModelPlan, converted: ModelPlan | None, request: _Request
          ) -> tuple[OpenedModel, Backend | None]:
    """
    Step 3: open the conversion where there is one and an ONNX runtime runs it, else the file.

    :return: the opened model and, when it runs below float32, its float32 twin (None when
        there is none yet).
    """
    if converted is not None:
        try:
            loaded = open_planned(converted, request.backend, request.target,
                                  request.require_cuda, request.precision)
        except ModelError as error:
            if request.backend != 'auto':
                raise
            _refused(plan.path, f'no ONNX runtime runs its conversion ({error})', request)
            loaded = None
        if loaded is not None and loaded.name != 'opencv':
            exact = None
            if loaded.precision != 'f32':
                exact = open_planned(converted, loaded.name, 'cpu', False, 'f32')
            return OpenedModel(loaded, converted.path, loaded.notes), exact
        if loaded is not None:
            # OpenCV DNN runs the Torch7 file itself faster than the fused ONNX form.
            request.warnings.append(
                f'model: running {plan.path!r} on OpenCV DNN: neither openvino nor onnxruntime '
                'could run its conversion ('
                + '; '.join(note for note in loaded.notes if 'skipped' in note) + ')')
    loaded = open_planned(plan, request.backend, request.target, request.require_cuda,
                          request.precision)
    return OpenedModel(loaded, plan.path, loaded.notes), None


def _verify(opened: OpenedModel, exact: Backend | None, plan: ModelPlan,
            request: _Request) -> OpenedModel:
    """Step 4: check the conversion, OpenCV DNN's output, and measure ``precision='fast'``."""
    if opened.model_file != plan.path:
        opened = _verify_conversion(opened, exact or opened.backend, plan, request)
    elif opened.backend.name == 'opencv':
        opened = _verify_opencv(opened, plan, request)
    if request.precision == 'fast' and opened.backend.precision != 'f32':
        _measure_fast(opened, exact)
    return opened


def _verify_conversion(opened: OpenedModel, exact: Backend, plan: ModelPlan,
                       request: _Request) -> OpenedModel:
    """Check a conversion (in float32, whatever runs) against OpenCV DNN on the original."""
    width, height = _input_size(plan.description)
    reference = open_planned(plan, 'opencv', 'cpu')
    share = agreement(exact, reference, warm_up_frame(width, height))
    opened.conversion_agreement = share
    if share < request.min_agreement:
        message = (f'model: refused the conversion of {plan.path!r}: only {100 * share:.2f} % '
                   f'of the warm-up frame agrees with OpenCV DNN (needs '
                   f'{100 * request.min_agreement:.1f} %); running the .net on OpenCV DNN')
        if request.backend != 'auto':
            raise ModelError('model_path', plan.path, message.removeprefix('model: ')
                             .replace('running the .net on OpenCV DNN', 'use backend opencv'))
        loaded = open_planned(plan, 'opencv', request.target, request.require_cuda)
        request.warnings.append(message)
        notes = [note for note in opened.notes if note.startswith('model: ')]
        return OpenedModel(loaded, plan.path, notes + loaded.notes, [], share,
                           verification=f'{100 * share:.2f} % of the warm-up frame agrees '
                           'with the refused conversion')
    opened.notes.append(f'model: the conversion agrees with OpenCV DNN on the .net on '
                        f'{100 * share:.2f} % of the warm-up frame')
    opened.verification = (f'the conversion agrees with OpenCV DNN on the original on '
                           f'{100 * share:.2f} % of the warm-up frame')
    return opened


def _verify_opencv(opened: OpenedModel, plan: ModelPlan, request: _Request) -> OpenedModel:
    """
    Check OpenCV DNN's output on an ONNX file against ONNX Runtime or OpenVINO on a warm-up frame.

    OpenCV DNN imports some exports into a graph that runs and gives wrong numbers; the other
    runtimes run the file as exported. Refused below :data:`MIN_OPENCV_AGREEMENT`.
    """
    if plan.info.file_format != 'onnx':
        opened.verification = (f'unverified: only OpenCV DNN reads {plan.info.file_format} '
                               'files')
        return opened
    runtimes = available_backends()
    names = [name for name in REFERENCE_BACKENDS if runtimes[name] is None]
    if not names:
        opened.verification = ('unverified: neither onnxruntime nor openvino is installed to '
                               'check OpenCV DNN against')
        request.warnings.append(f'model: OpenCV DNN output for {plan.path!r} is unverified: '
                                'neither onnxruntime nor openvino is installed to check it '
                                f'against; {install_hint("onnxruntime")}')
        return opened
    reference, failures = None, []
    for name in names:
        try:
            reference = open_planned(plan, name, 'cpu')
            break
        except ModelError as error:
            failures.append(f'{name}: {error}')
    if reference is None:
        opened.verification = 'unverified: ' + '; '.join(failures)
        request.warnings.append(f'model: OpenCV DNN output for {plan.path!r} is unverified: '
                                'no other runtime opens it (' + '; '.join(failures) + ')')
        return opened
    problem, figure = _output_difference(opened.backend, reference)
    if problem:
        raise ModelError('backend', 'opencv',
                         f'OpenCV DNN gives wrong output for {plan.path!r}: {problem} on a '
                         f'warm-up frame; {reference.name} runs it correctly: use backend '
                         f'{reference.name} (or auto)')
    opened.verification = f'agrees with {reference.name}: {figure} on the warm-up frame'
    opened.notes.append(f'model: the output of OpenCV DNN {opened.verification}')
    return opened


def _output_difference(opencv: Backend, reference: Backend) -> tuple[str, str]:
    """
    Compare OpenCV DNN with a reference backend on the warm-up frame.

    Semantic models: the share of pixels of the same class. Instance models: every output, by
    name, of the same shape and within :data:`OPENCV_OUTPUT_TOLERANCE`.

    :return: (what differs, '' if nothing; the figure measured).
    """
    description = reference.description
    frame = warm_up_frame(description.input_width, description.input_height)
    if reference.task == 'semantic':
        share = agreement(opencv, reference, frame)
        figure = f'{100 * share:.2f} % of the pixels'
        if share < MIN_OPENCV_AGREEMENT:
            return (f'only {figure} agree with {reference.name} (needs '
                    f'{100 * MIN_OPENCV_AGREEMENT:.0f} %)'), figure
        return '', figure
    expected = reference.forward(reference.prepare(frame, 'bgr8'))
    found = opencv.forward(opencv.prepare(frame, 'bgr8'))
    worst = 0.0
    for name, wanted in expected.items():
        got = found.get(name)
        if got is None or got.size != wanted.size:
            shape = None if got is None else list(got.shape)
            return (f'output {name!r} is {shape}, {reference.name} gives '
                    f'{list(wanted.shape)}'), ''
        scale = float(np.max(np.abs(wanted))) if wanted.size else 0.0
        if not np.all(np.isfinite(got)):
            return f'output {name!r} holds NaN or Inf', ''
        error = float(np.max(np.abs(got.reshape(wanted.shape).astype(np.float64) - wanted)))
        worst = max(worst, error / scale if scale else error)
    figure = f'largest difference {100 * worst:.3f} % of the largest value'
    if worst > OPENCV_OUTPUT_TOLERANCE:
        return f'the outputs differ from those of {reference.name}: {figure}', figure
    return '', figure


def _measure_fast(opened: OpenedModel, exact: Backend | None) -> None:
    """Measure how much of the warm-up frame ``precision='fast'`` classifies as f32 does."""
    fast = opened.backend
    width, height = fast.description.input_width, fast.description.input_height
    if exact is None:
        exact = open_planned(plan_model(opened.model_file, fast.description), fast.name,
                             'cpu', False, 'f32')
    share = agreement(fast, exact, warm_up_frame(width, height))
    opened.fast_agreement = share
    opened.notes.append(f'precision fast ({fast.precision}): {100 * share:.2f} % of the warm-up '
                        'frame (a synthetic street scene) agrees with f32')
