"""OpenVINO backend: a compiled model at a static input shape, CPU (or Intel GPU) device."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from seg_ros.core.backends.base import (Backend, import_runtime, ModelInfo, short_error,
                                        thread_limit)
from seg_ros.core.backends.openvino_graph import add_confidence_output, first_max_rewrites
from seg_ros.core.decode.semantic import CONFIDENCE_OUTPUT
from seg_ros.core.errors import ModelError
from seg_ros.core.model.description import ModelDescription


class OpenVinoBackend(Backend):
    """OpenVINO compiled model at a static input shape, CPU (or Intel GPU) device."""

    name = 'openvino'

    def __init__(self, info: ModelInfo, description: ModelDescription,
                 input_shape: tuple[int, ...], target: str, require_cuda: bool,
                 notes: list[str], precision: str = 'f32') -> None:
        """Read, reshape to the input shape, compile (at ``precision``)."""
        super().__init__(info, description, input_shape)
        ov = import_runtime('openvino')
        if target == 'cuda' or require_cuda:
            if require_cuda:
                raise ModelError('target', target,
                                 'require_cuda is set but OpenVINO has no CUDA device')
            notes.append('openvino: CUDA requested but OpenVINO has no CUDA device')
        core = ov.Core()
        self.device = 'GPU' if target == 'auto' and 'GPU' in core.available_devices else 'CPU'
        # f32 so that results match the other backends (the CPU plugin may default to bf16).
        hint = _openvino_fast_precision(core, self.device) if precision == 'fast' else 'f32'
        self._core, self._hint = core, hint
        self._compile(confidence=False)
        self._version = ov.get_version().split('-')[0]
        try:  # what the plugin really uses (it may override the hint)
            used = self._compiled.get_property('INFERENCE_PRECISION_HINT')
            self.precision = str(getattr(used, 'get_type_name', lambda: used)())
        except Exception:  # a plugin without the property: the hint stands
            self.precision = hint

    def _compile(self, confidence: bool) -> str:
        """
        Read, reshape, rewrite and compile the model; set the outputs and the infer requests.

        :param confidence: add the confidence output behind the argmax (see
            :func:`~seg_ros.core.backends.openvino_graph.add_confidence_output`).
        :return: '' or why the confidence output cannot be added (then nothing changed).
        """
        info = self.info
        try:
            model = self._core.read_model(info.path)
            model.reshape({model.inputs[0].get_any_name(): list(self.input_shape)})
            if confidence:
                problem = add_confidence_output(model)
                if problem:
                    return problem
            # An argmax in the graph as two reductions: the same indices, a fraction of the time.
            first_max_rewrites(model)
            config = {'PERFORMANCE_HINT': 'LATENCY', 'INFERENCE_PRECISION_HINT': self._hint}
            if thread_limit() and self.device == 'CPU':
                config['INFERENCE_NUM_THREADS'] = thread_limit()
            compiled = self._core.compile_model(model, self.device, config)
        except Exception as error:  # OpenVINO raises RuntimeError and its own types
            raise ModelError('model_path', info.path,
                             f'openvino cannot load {info.path!r} at input shape '
                             f'{list(self.input_shape)}: {short_error(error)}') from error
        self._compiled = compiled
        # The ONNX graph's output names where the file has them (OpenVINO keeps them as tensor
        # names; one output may carry several), in the model's order.
        names = []
        for index, port in enumerate(self._compiled.outputs):
            known = port.get_names()
            graph_name = info.outputs[index].name if index < len(info.outputs) else ''
            names.append(graph_name if graph_name in known else port.get_any_name())
        self.output_names = tuple(names)
        # Idle infer requests on the one compiled model: a call takes one (or makes one when
        # every request is in use by another thread) and gives it back, so one thread at a time
        # (a single node, warm-up then its worker) needs one request, N workers N.
        self._idle_requests = [self._compiled.create_infer_request()]
        self._requests_lock = threading.Lock()
        return ''

    def add_confidence_output(self) -> str:
        """
        Recompile the model with the probability behind its argmax as one more output.

        Compiled again (start-up time, once); the class ids are unchanged. Not thread-safe:
        call it before any :meth:`forward` of another thread.

        :return: '' when added, else why not (the model as it was keeps running).
        """
        if CONFIDENCE_OUTPUT in self.output_names:
            return ''
        try:
            return self._compile(confidence=True)
        except ModelError as error:
            return f'the graph with the confidence output does not compile: {error}'

    def forward(self, network_input: np.ndarray) -> dict[str, np.ndarray]:
        """Run one request; return every output by name (copies: valid after the next run)."""
        with self._requests_lock:
            request = self._idle_requests.pop() if self._idle_requests else None
        if request is None:
            request = self._compiled.create_infer_request()
        try:
            results = request.infer({0: network_input})  # copies, not the request's buffers
            return {name: results[index] for index, name in enumerate(self.output_names)}
        finally:
            with self._requests_lock:
                self._idle_requests.append(request)

    def describe(self) -> str:
        """Return e.g. ``openvino 2026.4.1, device CPU, precision f32, ...``."""
        threads = ''
        if self.device == 'CPU':
            try:
                threads = f', {self._compiled.get_property("INFERENCE_NUM_THREADS")} threads'
            except Exception:  # noqa: BLE001 - a property this OpenVINO does not report
                pass
        return f'openvino {self._version}, device {self.device}{threads}, {self.size_text()}'


def _openvino_fast_precision(core: Any, device: str) -> str:
    """Return the lowest float precision ``device`` supports natively: bf16, f16 or f32."""
    try:
        capabilities = core.get_property(device, 'OPTIMIZATION_CAPABILITIES')
    except Exception:  # OpenVINO raises RuntimeError and its own types
        return 'f32'
    if device == 'CPU' and 'BF16' in capabilities:
        return 'bf16'
    return 'f16' if 'FP16' in capabilities else 'f32'
