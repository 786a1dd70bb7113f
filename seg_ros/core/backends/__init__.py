"""
Inference backends: OpenCV DNN, ONNX Runtime, OpenVINO, behind one small contract.

:func:`open_backend` reads a model file (:mod:`seg_ros.core.model.files`), puts its description
together (:mod:`seg_ros.core.model.description`: metadata, sidecar, preset, the caller's
overrides), loads it on a runtime at one static input shape and warms it up. The
:class:`Backend` it returns has ``output_names``, ``input_shape`` and
``forward(network_input) -> {name: array}`` giving every output by name, the same on every
runtime; :meth:`Backend.infer` turns a frame into a class map for semantic models. One module
per runtime: :mod:`.opencv_backend` (it probes new models in a child process first,
:mod:`.opencv_probe`), :mod:`.ort_backend`, :mod:`.openvino_backend`.

ONNX Runtime and OpenVINO are optional and imported only when used.
"""

from __future__ import annotations

from seg_ros.core.backends.base import Backend
from seg_ros.core.backends.opencv_backend import opencv_cuda_problem, OpenCVBackend
from seg_ros.core.backends.opening import (available_backends, BACKENDS, cuda_problems,
                                           DEFAULT_INPUT_SIZE, open_backend, PRECISIONS, TARGETS)
from seg_ros.core.backends.openvino_backend import OpenVinoBackend
from seg_ros.core.backends.ort_backend import (OnnxRuntimeBackend, ORT_CPU_PROVIDER,
                                               ORT_CUDA_PROVIDERS, ort_providers,
                                               tensorrt_cache_dir, TRT_CACHE_VARIABLE)
from seg_ros.core.decode.semantic import class_map_from_scores
from seg_ros.core.errors import ModelError
from seg_ros.core.model.description import MAX_CLASSES, ModelDescription
from seg_ros.core.model.files import (inspect_model, KIND_FUSED, KIND_SCORES, ModelInfo,
                                      TensorInfo)

__all__ = ['available_backends', 'Backend', 'BACKENDS', 'class_map_from_scores',
           'cuda_problems', 'DEFAULT_INPUT_SIZE', 'inspect_model', 'KIND_FUSED', 'KIND_SCORES',
           'MAX_CLASSES', 'ModelDescription', 'ModelError', 'ModelInfo', 'open_backend',
           'opencv_cuda_problem', 'OpenCVBackend', 'OpenVinoBackend', 'OnnxRuntimeBackend',
           'ORT_CPU_PROVIDER', 'ORT_CUDA_PROVIDERS', 'ort_providers', 'PRECISIONS', 'Preprocess',
           'TARGETS', 'tensorrt_cache_dir', 'TensorInfo', 'TRT_CACHE_VARIABLE']


def Preprocess(width: int, height: int, scale: float = 1 / 255,  # noqa: N802
               mean: tuple[float, float, float] = (0.0, 0.0, 0.0),
               swap_rb: bool = True) -> ModelDescription:
    """
    Return the description of the old ``cv2.dnn.blobFromImage``-style pre-processing.

    The network sees ``(pixel - mean) * scale``, ``mean`` in network channel order and pixel
    units, RGB when ``swap_rb``. Kept for callers of the earlier API; new code builds a
    :class:`ModelDescription` (or a mapping of its fields) directly.
    """
    try:
        mean_values = tuple(float(value) for value in mean)
    except (TypeError, ValueError):
        mean_values = ()
    if len(mean_values) != 3:
        raise ModelError('mean', mean, f'mean must be 3 finite numbers, got {mean!r}')
    network_mean = tuple(value * scale for value in mean_values)
    return ModelDescription(
        input_width=width, input_height=height, rescale_factor=scale,
        channel_order='RGB' if swap_rb else 'BGR',
        image_mean=network_mean if swap_rb else network_mean[::-1])
