"""
Opening the model a configuration names, on the fastest backend that gives the same class maps.

API::

    open_model(model_path, description, backend, target, require_cuda, config_path,
               precision, preset) -> OpenedModel
        # open_backend(), plus: a Torch7 .net/.t7 converted once to the fused ONNX form
        # (cached) and run on OpenVINO / ONNX Runtime when it agrees with OpenCV DNN on a
        # warm-up frame; precision 'fast' measured against f32 on that frame
    cache_dir() -> str                  # $SEG_ROS_CACHE, else $XDG_CACHE_HOME/seg_ros, else
                                        # ~/.cache/seg_ros
    converted_path(net_path, description) -> str  # where the conversion of that file goes
    agreement(first, second, frame) -> float      # share of pixels (0-1) with the same class

A converted file is keyed by the SHA-256 of the Torch7 file's content, the normalisation baked
into the fused graph (channel order, rescale_factor, image_mean, image_std) and the converter
version, so an edited or
replaced ``.net`` is converted again and an unchanged one never is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
import functools
import hashlib
import os
from typing import Any

import numpy as np

from seg_ros.core.backends import (available_backends, Backend, DEFAULT_INPUT_SIZE, open_backend)
from seg_ros.core.backends.opening import overrides_of
from seg_ros.core.errors import ModelError
from seg_ros.core.model.description import describe_model, ModelDescription

CACHE_VARIABLE = 'SEG_ROS_CACHE'
TORCH7_EXTENSIONS = ('.net', '.t7')
# Below this share of agreeing pixels the converted model is refused (OpenCV DNN runs).
MIN_CONVERSION_AGREEMENT = 0.999
# The runtimes a conversion is for: OpenCV DNN reads the .net itself.
CONVERTED_BACKENDS = ('openvino', 'onnxruntime')
WARM_UP_SEED = 2024


@dataclass
class OpenedModel:
    """
    The loaded backend and what the loading found out.

    ``model_file`` is the file that really runs (the cached conversion of a ``.net``, or the
    file configured). ``notes`` are informational lines, ``warnings`` lines a user should see
    (a conversion refused or impossible). ``conversion_agreement`` is the share of pixels of the
    warm-up frame on which the converted model and OpenCV DNN agree (None without conversion);
    ``fast_agreement`` the share on which ``precision='fast'`` agrees with f32 (None when the
    backend runs f32).
    """

    backend: Backend
    model_file: str
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    conversion_agreement: float | None = None
    fast_agreement: float | None = None


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


@functools.cache
def warm_up_frame(width: int, height: int) -> np.ndarray:
    """Return a fixed synthetic street scene (BGR) at the network input size."""
    from seg_ros.data.synthetic import render_scene

    frame, _ = render_scene(np.random.default_rng(WARM_UP_SEED), width, height)
    frame.setflags(write=False)
    return frame


def agreement(first: Backend, second: Backend, frame: np.ndarray) -> float:
    """Return the share of pixels (0-1) to which two backends give the same class."""
    return float(np.mean(first.infer(frame, 'bgr8') == second.infer(frame, 'bgr8')))


def _conversion_wanted(model_path: str, backend: str) -> str | None:
    """Return why a Torch7 file should not be converted, or None when it should."""
    if os.path.splitext(model_path)[1].lower() not in TORCH7_EXTENSIONS:
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


def open_model(model_path: str,
               description: ModelDescription | Mapping[str, Any] | None = None,
               backend: str = 'auto', target: str = 'auto', require_cuda: bool = False,
               config_path: str = '', precision: str = 'f32', preset: str = '', *,
               min_agreement: float = MIN_CONVERSION_AGREEMENT) -> OpenedModel:
    """
    Open a model like :func:`open_backend`, running a Torch7 file on the fastest backend.

    A Torch7 ``.net``/``.t7`` (with ``backend`` auto, openvino or onnxruntime) is converted to
    the fused ONNX form once (cached, see :func:`converted_path`) and opened on that backend;
    it runs only if its class map agrees with OpenCV DNN's on the original file on at least
    99.9 % of a warm-up frame's pixels, otherwise OpenCV DNN runs the original, with a warning.
    With ``precision='fast'`` on a backend that really lowers it, the share of the warm-up
    frame's pixels that agree with float32 is measured and reported.

    :param description: the caller's description overrides, as for :func:`open_backend`.
    :param min_agreement: the share of agreeing pixels a conversion needs (0-1).
    :return: the backend and what happened (see :class:`OpenedModel`).
    :raises ModelError: as :func:`open_backend`.
    """
    overrides = overrides_of(description)
    opened, exact = None, None
    skip = _conversion_wanted(model_path, backend)
    warnings: list[str] = []
    if skip is None:
        opened, exact = _open_converted(model_path, overrides, backend, target, require_cuda,
                                        config_path, precision, preset, warnings,
                                        min_agreement)
    elif skip == 'neither openvino nor onnxruntime is installed':
        warnings.append(f'model: {model_path!r} runs on OpenCV DNN, about 2x slower than '
                        'OpenVINO on the fused ONNX form: pip install openvino onnx')
    if opened is None:
        loaded = open_backend(model_path, overrides, backend, target, require_cuda, config_path,
                              precision, preset)
        opened = OpenedModel(loaded, model_path, loaded.notes)
    opened.warnings[:0] = warnings
    if precision == 'fast' and opened.backend.precision != 'f32':
        _measure_fast(opened, exact, target, require_cuda, config_path)
    source = '' if opened.model_file == model_path else f', converted from {model_path}'
    opened.notes.append(f'model: running {opened.model_file}{source} on {opened.backend.name}')
    return opened


def _open_converted(model_path: str, overrides: dict[str, Any], backend: str, target: str,
                    require_cuda: bool, config_path: str, precision: str, preset: str,
                    warnings: list[str],
                    min_agreement: float) -> tuple[OpenedModel | None, Backend | None]:
    """
    Convert (or find in the cache) and check a Torch7 file.

    :param warnings: receives why the conversion does not run, if it does not.
    :return: the opened conversion (None: run the .net on OpenCV DNN) and, when the backend
        runs below f32, its f32 twin used for the check.
    """
    if config_path:
        raise ModelError('config_path', config_path,
                         f'config_path must be empty for a Torch7 model, got {config_path!r}')
    # The pre-processing the .net would get on OpenCV DNN is baked into the fused graph.
    description, _ = describe_model(model_path, {}, overrides, preset)
    width, height = _input_size(description)
    size = {'input_width': width, 'input_height': height}
    try:
        onnx_path, converted_now = convert_cached(model_path, description)
    except ImportError as error:
        return _refused(model_path, f'the onnx package is missing ({error}): pip install onnx',
                        backend, warnings), None
    except (ValueError, OSError) as error:
        return _refused(model_path, f'it cannot be converted to ONNX: {error}', backend,
                        warnings), None
    notes = [f'model: {"converted" if converted_now else "found the conversion of"} '
             f'{model_path!r} to the fused ONNX form {onnx_path!r}']
    try:
        loaded = open_backend(onnx_path, size, backend, target, require_cuda, '', precision)
    except ModelError as error:
        if backend != 'auto':
            raise
        return _refused(model_path, f'no ONNX runtime runs its conversion ({error})', backend,
                        warnings), None
    if loaded.name == 'opencv':
        # OpenCV DNN runs the Torch7 file itself faster than the fused ONNX form.
        warnings.append(f'model: running {model_path!r} on OpenCV DNN: neither openvino nor '
                        'onnxruntime could run its conversion (' + '; '.join(
                            note for note in loaded.notes if 'skipped' in note) + ')')
        return None, None
    notes += loaded.notes
    # Check the conversion in float32, whatever runs: the reference computes in float32.
    exact = loaded
    if loaded.precision != 'f32':
        exact = open_backend(onnx_path, size, loaded.name, 'cpu', False, '', 'f32')
    reference = open_backend(model_path, {**overrides, **size}, 'opencv', 'cpu', preset=preset)
    share = agreement(exact, reference, warm_up_frame(width, height))
    if share < min_agreement:
        message = (f'model: refused the conversion of {model_path!r}: only {100 * share:.2f} % '
                   f'of the warm-up frame agrees with OpenCV DNN (needs '
                   f'{100 * min_agreement:.1f} %); running the .net on OpenCV DNN')
        if backend != 'auto':
            raise ModelError('model_path', model_path, message.removeprefix('model: ')
                             .replace('running the .net on OpenCV DNN', 'use backend opencv'))
        loaded = open_backend(model_path, {**overrides, **size}, 'opencv', target, require_cuda,
                              preset=preset)
        warnings.append(message)
        return OpenedModel(loaded, model_path, notes + loaded.notes, [], share), None
    notes.append(f'model: the conversion agrees with OpenCV DNN on the .net on '
                 f'{100 * share:.2f} % of the warm-up frame')
    return OpenedModel(loaded, onnx_path, notes, [], share), (exact if exact is not loaded
                                                              else None)


def _refused(model_path: str, reason: str, backend: str, warnings: list[str]) -> None:
    """Raise for an explicit ONNX-only backend; for auto, warn and return None (OpenCV DNN)."""
    if backend != 'auto':
        raise ModelError('backend', backend,
                         f'backend {backend!r} needs {model_path!r} in ONNX, but {reason}; use '
                         'backend opencv or auto')
    warnings.append(f'model: running {model_path!r} on OpenCV DNN because {reason}')
    return None


def _measure_fast(opened: OpenedModel, exact: Backend | None, target: str, require_cuda: bool,
                  config_path: str) -> None:
    """Measure how much of the warm-up frame ``precision='fast'`` classifies as f32 does."""
    fast = opened.backend
    width, height = fast.description.input_width, fast.description.input_height
    if exact is None:
        exact = open_backend(opened.model_file, fast.description, fast.name, target,
                             require_cuda, config_path, 'f32')
    share = agreement(fast, exact, warm_up_frame(width, height))
    opened.fast_agreement = share
    opened.notes.append(f'precision fast ({fast.precision}): {100 * share:.2f} % of the warm-up '
                        'frame (a synthetic street scene) agrees with f32')
