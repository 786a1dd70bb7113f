"""
``make gpu-check``: seg_ros on an NVIDIA GPU through ONNX Runtime's CUDA and TensorRT providers.

One command for a machine with an NVIDIA GPU and a few minutes to spend on it:

1. finds the GPU and the CUDA version its driver supports with ``nvidia-smi``; without one it
   says so and exits with status 2, measuring nothing and installing nothing;
2. creates its own virtual environment (``.venv-gpu``, beside the ordinary ``.venv``) with the
   ``onnxruntime-gpu`` build for that CUDA major (CUDA 12 and later: the PyPI wheel with its
   CUDA and cuDNN runtime wheels; CUDA 11: 1.18, the last CUDA 11 build on PyPI), TensorRT's
   pip libraries when they install (``tensorrt-cu12``; optional), NumPy, OpenCV, onnx and
   seg_ros itself;
3. runs, in that environment, the embedded ENet and (when ``../shared`` holds it) the real ENet
   ``.net`` (converted by seg_ros to the fused ONNX form, cached) through ``seg_ros``'s
   ``Segmenter`` with ``backend onnxruntime, target cuda, require_cuda``: the TensorRT provider
   (f32, and f16 with ``precision fast``), the CUDA provider alone, and the CPU provider as the
   reference;
4. prints one table: seconds to open (model load, checks and the TensorRT engine build), ms
   per frame (median), the provider really used (what the session reports, not what was
   asked for), and the share of pixels that agree with the CPU result.

Everything has a deadline (``--budget``, 540 s by default): rows left when it is spent are
listed as skipped, so the command ends in under 10 minutes. TensorRT engines go to a temporary
folder. Exit status: 0 every row ran, 1 some row failed or was skipped, 2 no NVIDIA GPU.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO_ROOT), 'shared')
ENET_PATH = os.path.join(SHARED, 'models', 'enet-cityscapes', 'enet-model.net')
IMAGES_DIR = os.path.join(SHARED, 'images')
VENV = os.path.join(REPO_ROOT, '.venv-gpu')
EXIT_NO_GPU = 2
FRAME_SIZE = (1280, 720)
MODEL_SIZE = (1024, 512)
# (row name, ONNX Runtime GPU providers seg_ros may use, precision)
ROWS = (('TensorRT f32', ('TensorrtExecutionProvider',), 'f32'),
        ('TensorRT f16 (precision fast)', ('TensorrtExecutionProvider',), 'fast'),
        ('CUDA provider', ('CUDAExecutionProvider',), 'f32'))


def log(message: str) -> None:
    """Progress on stderr; the table goes to stdout."""
    print(message, file=sys.stderr, flush=True)


def find_gpu() -> tuple[str, tuple[int, int]] | None:
    """
    Return (GPU names, CUDA version the driver supports) from ``nvidia-smi``, or None.

    None when ``nvidia-smi`` is not on PATH, fails, or lists no GPU.
    """
    smi = shutil.which('nvidia-smi')
    if smi is None:
        return None
    try:
        names = subprocess.run([smi, '--query-gpu=name,driver_version', '--format=csv,noheader'],
                               capture_output=True, text=True, timeout=30, check=True).stdout
        banner = subprocess.run([smi], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    gpus = [line.strip() for line in names.splitlines() if line.strip()]
    match = re.search(r'CUDA Version:\s*(\d+)\.(\d+)', banner)
    if not gpus or match is None:
        return None
    return '; '.join(gpus), (int(match.group(1)), int(match.group(2)))


def runtime_requirements(cuda: tuple[int, int]) -> tuple[list[str], list[str]]:
    """Return (required, optional) pip requirements for a driver supporting CUDA ``cuda``."""
    if cuda[0] >= 12:
        # The CUDA 12 wheels run on any driver of CUDA 12 or later (drivers are backward
        # compatible); the extras bring the CUDA and cuDNN runtime libraries as wheels.
        return ['onnxruntime-gpu[cuda,cudnn]'], ['tensorrt-cu12']
    return ['onnxruntime-gpu==1.18.1'], []


def set_up_venv(cuda: tuple[int, int]) -> list[str]:
    """Create or update ``.venv-gpu``; return notes on the optional parts that failed."""
    python = os.path.join(VENV, 'bin', 'python')
    if not os.path.exists(python):
        log(f'creating {os.path.relpath(VENV, REPO_ROOT)}')
        subprocess.run([sys.executable, '-m', 'venv', VENV], check=True)
    pip = [python, '-m', 'pip', '--disable-pip-version-check', '-q', 'install']
    required, optional = runtime_requirements(cuda)
    log(f'installing {", ".join(required)} and seg_ros into {os.path.relpath(VENV, REPO_ROOT)}')
    subprocess.run(pip + ['numpy', 'opencv-python<5', 'onnx', *required], check=True,
                   timeout=300)
    subprocess.run(pip + ['--no-deps', '-e', REPO_ROOT], check=True, timeout=120)
    notes = []
    for requirement in optional:
        try:
            subprocess.run(pip + [requirement], check=True, timeout=240)
        except (OSError, subprocess.SubprocessError) as error:
            notes.append(f'{requirement} did not install ({error}): TensorRT rows need the '
                         'TensorRT libraries on the library path')
    return notes


def library_path(python: str) -> str:
    """Return LD_LIBRARY_PATH with the pip TensorRT libraries' folder first, if installed."""
    found = subprocess.run(
        [python, '-c', 'import os, tensorrt_libs; print(os.path.dirname(tensorrt_libs.__file__))'],
        capture_output=True, text=True)
    folders = [found.stdout.strip()] if found.returncode == 0 and found.stdout.strip() else []
    current = os.environ.get('LD_LIBRARY_PATH', '')
    return ':'.join(folders + ([current] if current else []))


# ---- in the GPU virtual environment -----------------------------------------------------------
def frames_for(model: str, images: str):
    """Return camera-size frames: the street photos for the real ENet, else synthetic scenes."""
    import cv2

    if model == 'enet':
        frames = [cv2.imread(path) for path in sorted(glob.glob(os.path.join(images, '*.jpg')))]
        return [cv2.resize(frame, FRAME_SIZE, interpolation=cv2.INTER_AREA)
                for frame in frames if frame is not None]
    from seg_ros.data.synthetic import SceneAnimation

    animation = SceneAnimation(*FRAME_SIZE, seed=7)
    return [animation.frame(1.5 * index)[0] for index in range(4)]


def time_backend(backend, frames, repeats: int) -> tuple[float, list]:
    """Return (median ms a frame, class maps of ``frames``), after a warm-up of each frame."""
    maps = [backend.infer(frame, 'bgr8') for frame in frames]  # warm-up (first runs allocate)
    times = []
    for index in range(repeats):
        started = time.perf_counter()
        backend.infer(frames[index % len(frames)], 'bgr8')
        times.append(1e3 * (time.perf_counter() - started))
    return statistics.median(times), maps


def open_row(model_path: str, providers: tuple[str, ...], precision: str, target: str):
    """Open seg_ros's ONNX Runtime backend with only ``providers`` allowed on the GPU."""
    from seg_ros.core.backends import ort_backend
    from seg_ros.core.segmenter import Segmenter, SegmenterConfig

    # seg_ros uses every GPU provider it finds, best first; a row measures one of them (the
    # ONNX Runtime backend reads its module's list when it opens a session).
    ort_backend.ORT_CUDA_PROVIDERS = providers
    cuda = target == 'cuda'
    return Segmenter(SegmenterConfig(model_path=model_path, input_width=MODEL_SIZE[0],
                                     input_height=MODEL_SIZE[1], backend='onnxruntime',
                                     target=target, require_cuda=cuda, precision=precision))


def measure(arguments: argparse.Namespace) -> int:
    """Measure every row (run inside ``.venv-gpu``); print the table."""
    import numpy as np
    import onnxruntime

    from seg_ros.paths import embedded_model_path

    if hasattr(onnxruntime, 'preload_dlls'):
        # ONNX Runtime 1.21+: load CUDA and cuDNN from their pip wheels (the [cuda,cudnn] extras).
        onnxruntime.preload_dlls()
    log(f'onnxruntime {onnxruntime.__version__}: {onnxruntime.get_available_providers()}')
    deadline = time.monotonic() + arguments.budget
    models = [('embedded ENet', 'embedded', embedded_model_path())]
    if os.path.isfile(arguments.enet):
        models.append(('real ENet (.net)', 'enet', arguments.enet))
    else:
        log(f'{arguments.enet} is absent: only the embedded ENet is measured')
    lines = ['| model | row | provider really used | precision | start s | ms / frame | '
             'agreement with CPU |', '|---|---|---|---|---:|---:|---:|']
    problems = []
    for label, kind, path in models:
        frames = frames_for(kind, arguments.images)
        if not frames:
            problems.append(f'{label}: no frames')
            continue
        try:
            started = time.monotonic()
            cpu = open_row(path, (), 'f32', 'cpu')
            cpu_start = time.monotonic() - started
            cpu_ms, cpu_maps = time_backend(cpu.backend, frames, arguments.repeats)
        except Exception as error:  # report and go on with the next model
            problems.append(f'{label} CPU: {error}')
            continue
        lines.append(f'| {label} | CPU reference | {cpu.backend.device} | '
                     f'{cpu.backend.precision} | {cpu_start:.1f} | {cpu_ms:.1f} | 100.00 % |')
        for row, providers, precision in ROWS:
            if time.monotonic() > deadline:
                problems.append(f'{label} {row}: skipped, the time budget is spent')
                continue
            log(f'{label}: {row}')
            try:
                started = time.monotonic()
                # Opening builds the TensorRT engine (the warm-up runs in open_backend).
                opened = open_row(path, providers, precision, 'cuda')
                start_s = time.monotonic() - started
                ms, maps = time_backend(opened.backend, frames, arguments.repeats)
            except Exception as error:  # a provider that cannot run: a failed row, not a stop
                problems.append(f'{label} {row}: {str(error).splitlines()[0][:300]}')
                lines.append(f'| {label} | {row} | failed | | | | |')
                continue
            agree = float(np.mean([np.mean(a == b) for a, b in zip(maps, cpu_maps)]))
            lines.append(f'| {label} | {row} | {opened.backend.device} | '
                         f'{opened.backend.precision} | {start_s:.1f} | {ms:.1f} | '
                         f'{100 * agree:.2f} % |')
    print('\n'.join(lines))
    for problem in problems:
        print(f'- {problem}')
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    """Find the GPU, set up the environment, measure in it."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--budget', type=float, default=540.0,
                        help='seconds for the measurements (default 540)')
    parser.add_argument('--repeats', type=int, default=30, help='timed frames a row')
    parser.add_argument('--enet', default=ENET_PATH, help='the Torch7 ENet Cityscapes file')
    parser.add_argument('--images', default=IMAGES_DIR, help='folder of *.jpg street photos')
    parser.add_argument('--measure', action='store_true', help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.measure:
        return measure(arguments)
    started = time.monotonic()
    gpu = find_gpu()
    if gpu is None:
        print('gpu-check: no NVIDIA GPU here (nvidia-smi is missing, fails or lists no GPU): '
              'nothing measured', file=sys.stderr)
        return EXIT_NO_GPU
    names, cuda = gpu
    log(f'GPU: {names}; the driver supports CUDA {cuda[0]}.{cuda[1]}')
    notes = set_up_venv(cuda)
    python = os.path.join(VENV, 'bin', 'python')
    budget = max(60.0, arguments.budget - (time.monotonic() - started))
    with tempfile.TemporaryDirectory(prefix='seg_ros-trt-') as engines:
        environment = dict(os.environ, SEG_ROS_TRT_CACHE=engines,
                           LD_LIBRARY_PATH=library_path(python))
        status = subprocess.run([python, os.path.abspath(__file__), '--measure',
                                 '--budget', str(budget), '--repeats', str(arguments.repeats),
                                 '--enet', arguments.enet, '--images', arguments.images],
                                env=environment, cwd=REPO_ROOT).returncode
    for note in notes:
        print(f'- {note}')
    print(f'GPU: {names}, CUDA {cuda[0]}.{cuda[1]} (driver); total '
          f'{time.monotonic() - started:.0f} s')
    return status


if __name__ == '__main__':
    sys.exit(main())
