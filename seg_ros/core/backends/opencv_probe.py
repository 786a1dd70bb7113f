"""
Load and run a network with OpenCV DNN in a child process, so that a crash stays there.

``cv2.dnn.readNet`` takes the whole process down (SIGSEGV, SIGFPE) on some ONNX exports, and
no Python code can catch that. :func:`probe` runs this file as a script: it reads the model,
runs one input of the given shape and prints the outputs' names and shapes as JSON. Only
NumPy and OpenCV are imported here.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

PROBE_TIMEOUT_S = 300.0


def probe(model_path: str, config_path: str, input_shape: tuple[int, ...], input_dtype: str,
          output_names: tuple[str, ...]) -> dict:
    """
    Read ``model_path`` with OpenCV DNN in a child process and run one input.

    :return: ``{'ok': True, 'outputs': [[name, shape], ...]}``, or ``{'ok': False,
        'error': one line}``, with ``'crashed': True`` (naming the signal) when the child died.
    """
    request = json.dumps({'model': model_path, 'config': config_path,
                          'shape': list(input_shape), 'dtype': input_dtype,
                          'outputs': list(output_names)})
    try:
        child = subprocess.run([sys.executable, os.path.abspath(__file__), request],
                               capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                               check=False)
    except subprocess.TimeoutExpired:
        return {'ok': False, 'crashed': True,
                'error': f'OpenCV DNN took over {PROBE_TIMEOUT_S:.0f} s to load and run it in '
                         'a test process'}
    except OSError as error:
        return {'ok': False, 'error': f'cannot start the OpenCV DNN test process: {error}'}
    if child.returncode < 0:
        try:
            name = signal.Signals(-child.returncode).name
        except ValueError:
            name = f'signal {-child.returncode}'
        return {'ok': False, 'crashed': True,
                'error': f'OpenCV DNN crashes ({name}) loading or running it (seen in a test '
                         'process; this one is unharmed)'}
    lines = [line for line in child.stdout.splitlines() if line.startswith('{')]
    if not lines:
        tail = (child.stderr.strip().splitlines() or ['no output'])[-1]
        return {'ok': False, 'error': f'the OpenCV DNN test process failed: {tail}'}
    return json.loads(lines[-1])


def _run(request: dict) -> dict:
    import cv2
    import numpy as np
    try:
        net = cv2.dnn.readNet(request['model'], request['config'])
    except cv2.error as error:
        return {'ok': False, 'stage': 'read', 'error': _message(error)}
    if net.empty():
        return {'ok': False, 'stage': 'read', 'error': 'OpenCV DNN read no network'}
    try:
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        names = request['outputs'] or list(net.getUnconnectedOutLayersNames())
        net.setInput(np.zeros(request['shape'], request['dtype']))
        outputs = net.forward(names)
    except cv2.error as error:
        return {'ok': False, 'stage': 'run', 'error': _message(error)}
    return {'ok': True, 'outputs': [[name, list(output.shape)]
                                    for name, output in zip(names, outputs)]}


def _message(error: Exception) -> str:
    """Return the last meaningful line of an OpenCV error, without its source location."""
    lines = [line.strip().lstrip('>').strip() for line in str(error).splitlines()]
    text = ([line for line in lines if line] or ['cv2.error'])[-1]
    return re.sub(r'OpenCV\([^)]*\)\s*\S+:\d+:\s*', '', text)[:300]


if __name__ == '__main__':
    print(json.dumps(_run(json.loads(sys.argv[1]))))
