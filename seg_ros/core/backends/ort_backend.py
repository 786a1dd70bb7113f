"""ONNX Runtime backend: TensorRT, CUDA or CPU execution provider."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from seg_ros.core.backends.base import (Backend, cpu_threads, import_runtime, ModelInfo,
                                        short_error)
from seg_ros.core.errors import ModelError
from seg_ros.core.model.description import ModelDescription

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


def ort_cuda_problem() -> str | None:
    """Return why ONNX Runtime cannot use CUDA here (None if it can); it must import."""
    ort = import_runtime('onnxruntime')
    if not any(name in ort.get_available_providers() for name in ORT_CUDA_PROVIDERS):
        return f'onnxruntime {ort.__version__} has no CUDA or TensorRT provider'
    return None


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime session: TensorRT, CUDA or CPU execution provider."""

    name = 'onnxruntime'

    def __init__(self, info: ModelInfo, description: ModelDescription,
                 input_shape: tuple[int, ...], target: str, require_cuda: bool,
                 notes: list[str], precision: str = 'f32') -> None:
        """Create the session with the best providers for ``target``; float32 only."""
        super().__init__(info, description, input_shape)
        ort = import_runtime('onnxruntime')
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
        self.threads = cpu_threads()
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
                                                      f'{short_error(error)}') from error
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
        self.output_names = tuple(output.name for output in self._session.get_outputs())

    def forward(self, network_input: np.ndarray) -> dict[str, np.ndarray]:
        """Run the session; return every output by name."""
        values = self._session.run(list(self.output_names), {self._input_name: network_input})
        return dict(zip(self.output_names, values))

    def describe(self) -> str:
        """Return e.g. ``onnxruntime 1.23.2, provider CPUExecutionProvider, 2 threads, ...``."""
        threads = f', {self.threads} threads' if self.device == ORT_CPU_PROVIDER else ''
        return (f'onnxruntime {import_runtime("onnxruntime").__version__}, provider '
                f'{self.device}{threads}, {self.size_text()}')
