"""
Performance of seg_ros against the classic ENet tutorial pipeline, offline and over ROS topics.

Everything is measured in one run, side by side, and reported as medians and as ratios taken in
that same run (a shared, noisy machine shifts absolute times, much less their ratios). Offline
cases are interleaved: each round runs every case once on the next frame, in a rotated order.

Offline, per model (frames at 1280x720: the ``../shared/images`` photos for the real ENet,
synthetic street scenes, its training domain, for the embedded model):

* ``classic``: the tutorial's cv2.dnn + NumPy per-frame work (:mod:`classic_enet`);
* ``bare``: ``Backend.infer(frame)`` of each backend and model form (frame -> class map at
  model size: pre-processing, network, class map);
* ``seg_ros``: ``Segmenter.run`` with every output at frame size (class map, colour mask,
  overlay), i.e. all of seg_ros's per-frame work without ROS.

The network call's share is timed inside each measured call (the backend's ``forward``
wrapped with a timer), so "frame minus network" is paired sample by sample, not the difference
of two noisy medians. CPU ms is the process's CPU time over the call, all threads.

Model forms of the real ENet: the Torch7 ``.net`` (OpenCV only), and its ONNX conversions by
seg_ros's torch-free converter (never into the repo: the weights are non-commercial):
``onnx-fused`` (uint8 BGR in, class map out: normalisation and argmax inside the graph) is
the very file the node runs when given the ``.net`` (``seg_ros.core.loading``, in the
user's cache), ``onnx-scores`` (float input, score output) goes to a temporary folder.
Where ``precision fast`` really lowers the precision (bf16 / f16), a ``fast`` row is added,
with the share of the photos' pixels that agree with f32.

Over topics (``--skip-node`` leaves it out): ``camera_source`` at 30 Hz 1280x720 ->
``segmentation_node`` -> a subscriber here; see :mod:`node_probe`.

Usage::

    .venv/bin/python bench/segmentation_bench.py [--quick] [--skip-node] [--rounds N]
        [--backend onnxruntime[,openvino...]] [--target auto|cpu|cuda] (see --help)

It prints Markdown tables and writes ``bench/results/segmentation.json``.
ROS_DOMAIN_ID: ``--domain`` (51) and the next ones, one per node configuration.
"""

import argparse
from dataclasses import dataclass, field
import glob
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from typing import Callable

import classic_enet
import cv2
import node_probe
import numpy as np

from seg_ros.core import loading as model_cache
from seg_ros.core.backends import available_backends, open_backend
from seg_ros.core.errors import ModelError
from seg_ros.core.model.description import ModelDescription
from seg_ros.core.segmenter import Segmenter, SegmenterConfig
from seg_ros.paths import default_label_paths, EMBEDDED_MODEL

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO_ROOT), 'shared')
ENET_PATH = os.path.join(SHARED, 'models', 'enet-cityscapes', 'enet-model.net')
IMAGES_DIR = os.path.join(SHARED, 'images')
RESULTS_PATH = os.path.join(REPO_ROOT, 'bench', 'results', 'segmentation.json')
FRAME_SIZE = (1280, 720)
MODEL_SIZE = (1024, 512)
CAMERA_RATE = 30.0
ALPHA = 0.5
# Frames timed beside the camera, as a multiple of the spot checks (enough for < 5 % noise).
BESIDE_FACTOR = 5
# Lets the previous case's worker threads go idle before the next case starts.
CASE_GAP_S = 0.01


@dataclass
class Case:
    """One measured way of segmenting a frame; ``step`` returns its timings in ms."""

    model: str
    pipeline: str
    backend: str
    form: str
    step: Callable[[np.ndarray], dict[str, float]]
    describe: str = ''
    samples: list[dict[str, float]] = field(default_factory=list)
    # precision fast rows: share of the frames' pixels whose class agrees with f32 (0-1)
    agreement: float | None = None

    @property
    def key(self) -> str:
        """Return a unique name, e.g. ``enet/seg_ros/openvino/onnx-fused``."""
        return f'{self.model}/{self.pipeline}/{self.backend}/{self.form}'

    def median(self, name: str = 'total') -> float:
        """Return the median of one timing over the samples (NaN without samples)."""
        values = [sample[name] for sample in self.samples if name in sample]
        return statistics.median(values) if values else float('nan')

    def rest_median(self) -> float:
        """Return the median of total minus the network call, paired sample by sample."""
        values = [sample['total'] - sample['network'] for sample in self.samples
                  if 'network' in sample]
        return statistics.median(values) if values else float('nan')

    def rest_share(self) -> float:
        """Return the median share of frame time spent outside the network call (0-1)."""
        values = [1.0 - sample['network'] / sample['total'] for sample in self.samples
                  if 'network' in sample]
        return statistics.median(values) if values else float('nan')

    def speedup_over(self, baseline: 'Case') -> float:
        """Return the median over rounds of baseline time / this case's time (same round)."""
        times = {sample['round']: sample['total'] for sample in self.samples}
        ratios = [sample['total'] / times[sample['round']] for sample in baseline.samples
                  if sample['round'] in times]
        return statistics.median(ratios) if ratios else float('nan')


def log(message: str) -> None:
    """Print progress to stderr (stdout carries the tables)."""
    print(message, file=sys.stderr, flush=True)


# ---- frames and models ----------------------------------------------------------------------
def photo_paths(folder: str) -> list[str]:
    """Return the folder's ``*.jpg`` photos, in name order."""
    return sorted(glob.glob(os.path.join(glob.escape(folder), '*.jpg')))


def copy_photos(folder: str, target: str) -> str:
    """Copy the original photos for camera_source, which resizes them as a camera would."""
    os.makedirs(target, exist_ok=True)
    for path in photo_paths(folder):
        shutil.copy(path, target)
    return target


def photo_frames(folder: str) -> list[np.ndarray]:
    """Return the folder's ``*.jpg`` photos resized to the camera size, as camera_source does."""
    frames = []
    for path in photo_paths(folder):
        frame = cv2.imread(path, cv2.IMREAD_COLOR)
        if frame is not None:
            frames.append(cv2.resize(frame, FRAME_SIZE, interpolation=cv2.INTER_AREA))
    return frames


def synthetic_frames(count: int) -> list[np.ndarray]:
    """Return ``count`` synthetic street scenes at camera size (the embedded model's domain)."""
    from seg_ros.data.synthetic import SceneAnimation

    animation = SceneAnimation(*FRAME_SIZE, seed=7)
    return [animation.frame(1.5 * index)[0] for index in range(count)]


def write_frames(frames: list[np.ndarray], folder: str) -> str:
    """Write frames as JPEG files for camera_source's folder source; return the folder."""
    os.makedirs(folder, exist_ok=True)
    for index, frame in enumerate(frames):
        cv2.imwrite(os.path.join(folder, f'frame{index:03d}.jpg'), frame,
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
    return folder


def convert_enet(net_path: str, temp_dir: str, skipped: list[str]) -> dict[str, str]:
    """
    Return the real ENet's model forms: the Torch7 file and its ONNX conversions.

    :param net_path: the Torch7 file.
    :param temp_dir: where the scores form goes (the fused one is the node's cached file).
    :param skipped: receives a line for each form that could not be made.
    :return: form name -> model path.
    """
    from seg_ros.core.model.torch7_onnx import save_model, torch7_to_onnx

    forms = {'torch7': net_path}
    started = time.perf_counter()
    try:
        # The node's own conversion: ENet's x/255 RGB (the description's defaults).
        forms['onnx-fused'], converted = model_cache.convert_cached(
            net_path, ModelDescription(input_width=MODEL_SIZE[0], input_height=MODEL_SIZE[1]))
        log(f'  onnx-fused: {"converted" if converted else "cached"} {forms["onnx-fused"]} '
            f'({time.perf_counter() - started:.1f} s)')
    except Exception as error:  # report any converter failure and go on with the rest
        skipped.append(f'enet onnx-fused: conversion failed: {error}')
    path = os.path.join(temp_dir, 'enet-onnx-scores.onnx')
    try:
        save_model(torch7_to_onnx(net_path, fused=False, width=MODEL_SIZE[0],
                                  height=MODEL_SIZE[1]), path)
        forms['onnx-scores'] = path
    except Exception as error:  # report any converter failure and go on with the rest
        skipped.append(f'enet onnx-scores: conversion failed: {error}')
    return forms


# ---- cases ----------------------------------------------------------------------------------
class LapTimer:
    """
    Times chosen methods of an object from inside the measured call (in-call splits).

    A split measured inside the same call as the total is paired with it, so it is far less
    noisy than the difference of two separately timed cases. It shadows the methods on the
    instance; the cost is two ``perf_counter`` calls each.
    """

    def __init__(self) -> None:
        self._laps: dict[str, float] = {}

    def wrap(self, owner: object, method: str, lap: str) -> None:
        """Time every call of ``owner.<method>`` into the lap ``lap``."""
        original = getattr(owner, method)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = 1e3 * (time.perf_counter() - started)
                self._laps[lap] = self._laps.get(lap, 0.0) + elapsed
        setattr(owner, method, timed)

    def take(self) -> dict[str, float]:
        """Return and reset the laps of the last call."""
        laps, self._laps = self._laps, {}
        return laps


def timed_call(call: Callable[[], object], timer: LapTimer) -> dict[str, float]:
    """Run ``call``; return its wall time, process CPU time (all threads) and laps, in ms."""
    cpu_started = time.process_time()
    started = time.perf_counter()
    call()
    total = 1e3 * (time.perf_counter() - started)
    timings = {'total': total, 'cpu': 1e3 * (time.process_time() - cpu_started)}
    timings.update(timer.take())
    return timings


def bare_step(backend) -> Callable[[np.ndarray], dict[str, float]]:
    """
    Time ``backend.infer(frame)``, split into prepare, network and class-map post-processing.

    The split wraps the backend's ``prepare``/``forward`` (the contract every backend keeps);
    without them only the total is reported.
    """
    timer = LapTimer()
    if hasattr(backend, 'forward') and hasattr(backend, 'prepare'):
        timer.wrap(backend, 'prepare', 'prepare')
        timer.wrap(backend, 'forward', 'network')

    def step(frame: np.ndarray) -> dict[str, float]:
        timings = timed_call(lambda: backend.infer(frame), timer)
        if 'network' in timings:
            timings['postprocess'] = (timings['total'] - timings['network'] -
                                      timings['prepare'])
        return timings
    return step


def segmenter_step(segmenter: Segmenter) -> Callable[[np.ndarray], dict[str, float]]:
    """Time ``Segmenter.run`` with every output at frame size, split like :func:`bare_step`."""
    timer = LapTimer()
    backend = segmenter.backend
    if hasattr(backend, 'forward') and hasattr(backend, 'prepare'):
        timer.wrap(backend, 'prepare', 'prepare')
        timer.wrap(backend, 'forward', 'network')

    def step(frame: np.ndarray) -> dict[str, float]:
        results = []
        timings = timed_call(lambda: results.append(segmenter.run(
            frame, class_map=True, color_mask=True, overlay=True, full_resolution=True,
            encoding='bgr8', alpha=ALPHA)), timer)
        inference = results[0].inference_ms
        timings['inference'] = inference
        timings['render'] = timings['total'] - inference
        if 'network' in timings:
            timings['postprocess'] = inference - timings['network'] - timings['prepare']
        return timings
    return step


def classic_step(pipeline: classic_enet.ClassicPipeline):
    """Time the tutorial pipeline: blob, network (forward), argmax, render."""
    def step(frame: np.ndarray) -> dict[str, float]:
        cpu_started = time.process_time()
        timings = pipeline.run(frame)[1]
        timings['cpu'] = 1e3 * (time.process_time() - cpu_started)
        return timings
    return step


def build_cases(model: str, forms: dict[str, str], labels: tuple[str, str],
                frames: list[np.ndarray], arguments: argparse.Namespace,
                skipped: list[str]) -> list[Case]:
    """
    Open every (backend, model form) pair that loads: a bare backend and a seg_ros case each.

    :param model: model label for the table ('enet' or 'embedded').
    :param forms: form name -> model path.
    :param labels: (classes_path, colors_path), '' for none.
    :param arguments: the command line (``backends``, ``target``).
    :param skipped: receives a line for every pair that cannot run, with its reason.
    :return: the cases.
    """
    cases = []
    runtimes = available_backends()
    # A CUDA measurement must not silently time the CPU fallback.
    require_cuda = arguments.target == 'cuda'
    for backend_name, problem in runtimes.items():
        if arguments.backends and backend_name not in arguments.backends:
            continue
        if problem:
            skipped.append(f'{model} {backend_name}: {problem}')
            continue
        for form, path in forms.items():
            if form == 'torch7' and backend_name != 'opencv':
                continue  # only OpenCV DNN reads Torch7 files
            started = time.perf_counter()
            try:
                backend = open_backend(path, {'input_width': MODEL_SIZE[0],
                                              'input_height': MODEL_SIZE[1]},
                                       backend=backend_name, target=arguments.target,
                                       require_cuda=require_cuda)
                segmenter = Segmenter(SegmenterConfig(
                    model_path=path, input_width=MODEL_SIZE[0], input_height=MODEL_SIZE[1],
                    backend=backend_name, target=arguments.target, require_cuda=require_cuda,
                    classes_path=labels[0], colors_path=labels[1]))
            except ModelError as error:
                skipped.append(f'{model} {backend_name} {form}: {error}')
                continue
            describe = backend.describe()
            log(f'  opened {model} {backend_name} {form} in '
                f'{time.perf_counter() - started:.1f} s: {describe}')
            cases.append(Case(model, 'bare', backend_name, form, bare_step(backend), describe))
            cases.append(Case(model, 'seg_ros', backend_name, form, segmenter_step(segmenter),
                              segmenter.backend.describe()))
            if backend_name == 'openvino' and form in ('onnx-fused', 'onnx'):
                fast = fast_case(model, form, path, labels, segmenter, frames, arguments,
                                 skipped)
                cases += [fast] if fast else []
    return cases


def fast_case(model: str, form: str, path: str, labels: tuple[str, str], exact: Segmenter,
              frames: list[np.ndarray], arguments: argparse.Namespace,
              skipped: list[str]) -> Case | None:
    """Return the ``precision fast`` case of an OpenVINO model, with its agreement with f32."""
    try:
        segmenter = Segmenter(SegmenterConfig(
            model_path=path, input_width=MODEL_SIZE[0], input_height=MODEL_SIZE[1],
            backend='openvino', target=arguments.target, classes_path=labels[0],
            colors_path=labels[1], precision='fast'))
    except ModelError as error:
        skipped.append(f'{model} openvino {form} precision fast: {error}')
        return None
    if segmenter.backend.precision == 'f32':
        skipped.append(f'{model} openvino {form} precision fast: runs f32 on this machine '
                       '(the CPU has no bf16 / f16), so it is the f32 row')
        return None
    agreement = float(np.mean([np.mean(segmenter.backend.infer(frame, 'bgr8') ==
                                       exact.backend.infer(frame, 'bgr8')) for frame in frames]))
    log(f'  {model} openvino {form} precision fast ({segmenter.backend.precision}): '
        f'{100 * agreement:.2f} % of the pixels agree with f32')
    return Case(model, 'seg_ros', 'openvino', f'{form} fast', segmenter_step(segmenter),
                segmenter.backend.describe(), agreement=agreement)


def measure(cases: list[Case], frames: list[np.ndarray], rounds: int, warmup: int) -> None:
    """
    Run every case ``warmup`` times, then ``rounds`` interleaved rounds; fill ``case.samples``.

    Each round gives all cases the same frame and starts at another case, so a slow spell of
    the machine spreads over all cases instead of hitting one.
    """
    for case in cases:
        for index in range(warmup):
            case.step(frames[index % len(frames)])
    started = time.perf_counter()
    for round_index in range(rounds):
        frame = frames[round_index % len(frames)]
        shift = round_index % len(cases)
        for case in cases[shift:] + cases[:shift]:
            time.sleep(CASE_GAP_S)
            sample = case.step(frame)
            sample['round'] = round_index
            case.samples.append(sample)
        if round_index == 0 or (round_index + 1) % 5 == 0:
            log(f'  round {round_index + 1}/{rounds} '
                f'({time.perf_counter() - started:.0f} s)')


# ---- node -----------------------------------------------------------------------------------
def node_configs(enet_forms: dict[str, str], enet_labels: tuple[str, str], photos_dir: str,
                 embedded: str | None, synthetic_dir: str | None,
                 arguments: argparse.Namespace) -> list[dict]:
    """Return the node configurations to run: name, node parameters, camera parameters, form."""
    camera = {'width': FRAME_SIZE[0], 'height': FRAME_SIZE[1], 'rate': CAMERA_RATE,
              'loop': 'true'}
    common = {'input_width': MODEL_SIZE[0], 'input_height': MODEL_SIZE[1],
              'color_encoding': 'bgr8', 'alpha': ALPHA, 'target': arguments.target,
              'require_cuda': str(arguments.target == 'cuda').lower()}
    # One backend asked for: the node uses it; otherwise it picks (auto), as users run it.
    backend = arguments.backends[0] if len(arguments.backends or ()) == 1 else 'auto'
    configs = []
    if photos_dir:
        labels = {'classes_path': enet_labels[0], 'colors_path': enet_labels[1]}
        # The .net as given: the node converts it (cached) and runs the fused form.
        fused = 'onnx-fused' if 'onnx-fused' in enet_forms else 'torch7'
        configs.append({
            'name': f'enet .net, {backend}', 'model': 'enet', 'form': fused,
            'goal_vs_classic': 2.5,
            'node': {'model_path': enet_forms['torch7'], 'backend': backend,
                     **common, **labels},
            'camera': {'source': photos_dir, **camera}})
        if arguments.fast_forms.get('enet'):
            configs.append({
                'name': f'enet .net, {backend}, precision fast', 'model': 'enet',
                'form': f'{fused} fast', 'goal_vs_classic': 3.5,
                'node': {'model_path': enet_forms['torch7'], 'backend': backend,
                         'precision': 'fast', **common, **labels},
                'camera': {'source': photos_dir, **camera}})
        if not arguments.quick and 'opencv' in (arguments.backends or ('opencv',)):
            configs.append({
                'name': 'enet opencv (torch7)', 'model': 'enet', 'form': 'torch7',
                'node': {'model_path': enet_forms['torch7'], 'backend': 'opencv',
                         **common, **labels},
                'camera': {'source': photos_dir, **camera}})
    if embedded and synthetic_dir:
        configs.append({
            'name': f'embedded {backend}', 'model': 'embedded', 'form': 'onnx',
            'node': {'model_path': embedded, 'backend': backend, **common},
            'camera': {'source': synthetic_dir, **camera}})
    return configs


# ---- report ---------------------------------------------------------------------------------
def case_summary(case: Case) -> dict:
    """Return the JSON record of one offline case: medians of each timing, sample count."""
    names = sorted({name for sample in case.samples for name in sample})
    return {'key': case.key, 'model': case.model, 'pipeline': case.pipeline,
            'backend': case.backend, 'form': case.form, 'describe': case.describe,
            'samples': len(case.samples),
            'median_ms': {name: case.median(name) for name in names if name != 'round'},
            'rest_median_ms': case.rest_median(), 'rest_share': case.rest_share(),
            'p90_ms': node_probe.percentile([s['total'] for s in case.samples], 0.9)}


def find(cases: list[Case], **fields) -> Case | None:
    """Return the first case whose attributes equal ``fields``."""
    return next((case for case in cases
                 if all(getattr(case, name) == value for name, value in fields.items())), None)


REST_PARTS = {'classic': ('blob', 'argmax', 'render'), 'bare': ('prepare', 'postprocess'),
              'seg_ros': ('prepare', 'postprocess', 'render')}


def offline_rows(cases: list[Case]) -> list[str]:
    """Return the Markdown table of the offline cases of one model."""
    classic = find(cases, pipeline='classic')
    lines = ['| model | pipeline | backend | model form | frame ms | CPU ms | network ms | '
             'rest ms | rest share | the rest, ms | fps | vs classic |',
             '|---|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|']
    for case in cases:
        parts = ', '.join(f'{part} {case.median(part):.1f}'
                          for part in REST_PARTS.get(case.pipeline, ())
                          if not np.isnan(case.median(part)))
        speedup = case.speedup_over(classic) if classic else float('nan')
        lines.append(f'| {case.model} | {case.pipeline} | {case.backend} | {case.form} | '
                     f'{case.median():.1f} | {case.median("cpu"):.0f} | '
                     f'{case.median("network"):.1f} | {case.rest_median():.1f} | '
                     f'{100 * case.rest_share():.1f}% | {parts} | {1000 / case.median():.2f} | '
                     f'{speedup:.2f}x |')
    return lines


def node_rows(runs: list[dict]) -> list[str]:
    """Return the Markdown table of the node runs."""
    lines = ['| node config | backend | input Hz | output fps | seg_ros alone fps | fps ratio | '
             'alone beside the camera fps | fps ratio, same load | '
             'latency p50 ms | latency p99 ms | inference mean ms | p99 / inference | '
             'node CPU % | node CPU ms / frame | alone CPU ms / frame | camera CPU % | '
             'machine busy % | node peak RSS MiB | dropped |',
             '|---|---|' + '---:|' * 17]
    for run in runs:
        result = run['result']
        if 'error' in result:
            lines.append(f'| {run["name"]} | failed: {result["error"].splitlines()[0]} |')
            continue
        diagnostics = result.get('diagnostics', {})
        lines.append(
            f'| {run["name"]} | {diagnostics.get("backend", "?")} | '
            f'{to_float(diagnostics.get("input rate (Hz)")):.1f} | {result["output_fps"]:.2f} | '
            f'{run.get("offline_fps", float("nan")):.2f} | '
            f'{run.get("fps_ratio", float("nan")):.2f} | '
            f'{run.get("beside_fps", float("nan")):.2f} | '
            f'{run.get("fps_ratio_beside", float("nan")):.2f} | {result["latency_p50_ms"]:.0f} | '
            f'{result["latency_p99_ms"]:.0f} | '
            f'{run.get("inference_mean_ms", float("nan")):.1f} | '
            f'{run.get("latency_ratio", float("nan")):.2f} | {result["node_cpu_percent"]:.0f} | '
            f'{run.get("node_cpu_ms_per_frame", float("nan")):.0f} | '
            f'{run.get("offline_cpu_ms", float("nan")):.0f} | '
            f'{result["camera_cpu_percent"]:.0f} | {result["machine_busy_percent"]:.0f} | '
            f'{result["node_peak_rss_mib"]:.0f} | '
            f'{diagnostics.get("frames dropped (replaced by newer)", "?")} |')
    return lines


def stage_rows(runs: list[dict]) -> list[str]:
    """Return the node's own per-stage profile of each run (its /diagnostics at the end)."""
    lines = ['| node config | stage means, wall/worker CPU ms | segment split, wall ms |',
             '|---|---|---|']
    for run in runs:
        diagnostics = run['result'].get('diagnostics', {})
        lines.append(f'| {run["name"]} | '
                     f'{diagnostics.get("stage means, wall/worker CPU (ms)", "?")} | '
                     f'{diagnostics.get("segment split, wall (ms)", "?")} |')
    return lines


def relative_noise(samples: list[float]) -> float:
    """Return the standard error of the mean of ``samples``, relative to the mean (0-1)."""
    if len(samples) < 2:
        return float('nan')
    return statistics.stdev(samples) / statistics.mean(samples) / len(samples) ** 0.5


def to_float(text: str | None) -> float:
    """Parse a diagnostics value; NaN when missing or not a number."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return float('nan')


def target_ratios(all_cases: list[Case], runs: list[dict]) -> list[dict]:
    """
    Compute the issue's target ratios from this run's measurements.

    :param all_cases: every offline case.
    :param runs: node runs, with their matching offline figures added.
    :return: one record per ratio: name, value, goal, met, what it compares.
    """
    ratios = []
    for model in ('enet', 'embedded'):
        classic = find(all_cases, model=model, pipeline='classic')
        seg_cases = [case for case in all_cases
                     if case.model == model and case.pipeline == 'seg_ros']
        if classic is None or not seg_cases:
            continue
        best = max(seg_cases, key=lambda case: case.speedup_over(classic))
        speedup = best.speedup_over(classic)
        ratios.append({
            'name': f'seg_ros per frame vs classic tutorial (speedup), {model}, best: '
                    f'{best.backend} {best.form}',
            'value': speedup, 'goal': '>= 2', 'met': bool(speedup >= 2.0),
            'compares': f'median of per-round ratios; medians classic {classic.median():.1f} '
                        f'ms, seg_ros {best.median():.1f} ms'})
        best_cpu = min(seg_cases, key=lambda case: case.median('cpu'))
        ratios.append({
            'name': f'the same in CPU time (load-independent), {model}, best: '
                    f'{best_cpu.backend} {best_cpu.form}',
            'value': classic.median('cpu') / best_cpu.median('cpu'), 'goal': '(information)',
            'met': None, 'compares': f'medians classic {classic.median("cpu"):.0f} CPU ms, '
                                     f'seg_ros {best_cpu.median("cpu"):.0f} CPU ms'})
        same = find(seg_cases, backend='opencv', form=classic.form)
        if same is not None:
            ratios.append({
                'name': f'seg_ros vs classic with the same file and runtime, {model} (opencv, '
                        f'{classic.form})',
                'value': same.speedup_over(classic), 'goal': '(information)', 'met': None,
                'compares': f'medians classic {classic.median():.1f} ms, seg_ros '
                            f'{same.median():.1f} ms'})
    for case in (c for c in all_cases if c.pipeline == 'seg_ros'):
        share = case.rest_share()
        ratios.append({
            'name': f'non-network share of frame time, {case.model} {case.backend} {case.form}',
            'value': share, 'goal': '<= 0.10', 'met': bool(share <= 0.10),
            'compares': f'median of (frame - network call) / frame; medians {case.median():.1f} '
                        f'ms, network {case.median("network"):.1f} ms'})
    for case in (c for c in all_cases if c.agreement is not None):
        ratios.append({
            'name': f'precision fast agreement with f32, {case.model} {case.backend} {case.form}',
            'value': case.agreement, 'goal': '>= 0.99', 'met': bool(case.agreement >= 0.99),
            'compares': 'share of the pixels of the offline frames with the same class'})
    for run in runs:
        classic = find(all_cases, model=run['model'], pipeline='classic')
        if 'goal_vs_classic' in run and classic and 'output_fps' in run['result'] \
                and run['result']['output_fps'] > 0:
            node_ms = 1000.0 / run['result']['output_fps']
            # The tutorial timed right before and after the node run (the machine's load drifts
            # over minutes); the offline rows' median where those timings are missing.
            around = run.get('classic_ms_around_run')
            classic_ms = statistics.median(around) if around else classic.median()
            when = (f'{len(around)} frames timed right before and after the node run; offline '
                    f'median {classic.median():.1f} ms' if around else 'offline median')
            value = classic_ms / node_ms
            ratios.append({
                'name': f'node per frame vs classic tutorial per frame, {run["name"]}',
                'value': value, 'goal': f'>= {run["goal_vs_classic"]:g}',
                'met': bool(value >= run['goal_vs_classic']),
                'compares': f'classic {classic_ms:.1f} ms ({when}) / node {node_ms:.1f} ms '
                            '(1000 / output fps)'})
        throughput = [('fps_ratio', 'offline_fps', 'node fps over topics vs seg_ros alone', '')]
        if 'beside_camera_cpu_percent' in run:
            throughput.append(('fps_ratio_beside', 'beside_fps',
                               'the same with the camera running beside seg_ros alone',
                               f' (camera at {run["beside_camera_cpu_percent"]:.0f} % of a core '
                               f'meanwhile; {len(run["beside_ms"])} frames timed, noise '
                               f'{100 * run["beside_noise"]:.1f} %)'))
        for key, reference, title, note in throughput:
            if key in run:
                ratios.append({
                    'name': f'{title}, {run["name"]}', 'value': run[key], 'goal': '>= 0.90',
                    'met': bool(run[key] >= 0.9),
                    'compares': f'{run["result"]["output_fps"]:.2f} fps / '
                                f'{run[reference]:.2f} fps{note}'})
        if 'cpu_ratio' in run:
            ratios.append({
                'name': f'node CPU time per frame vs seg_ros alone, {run["name"]}',
                'value': run['cpu_ratio'], 'goal': '(information)', 'met': None,
                'compares': f'{run["node_cpu_ms_per_frame"]:.0f} / {run["offline_cpu_ms"]:.0f} '
                            'CPU ms (receiving every camera frame, publishing, the rest)'})
        if 'latency_ratio' in run:
            ratios.append({
                'name': f'latency p99 vs mean inference, {run["name"]}',
                'value': run['latency_ratio'], 'goal': '<= 2',
                'met': bool(run['latency_ratio'] <= 2),
                'compares': f'p99 {run["result"]["latency_p99_ms"]:.0f} ms / inference mean '
                            f'{run["inference_mean_ms"]:.1f} ms (node diagnostics)'})
    return ratios


def ratio_rows(ratios: list[dict]) -> list[str]:
    """Return the Markdown table of the target ratios."""
    lines = ['| ratio | value | goal | met | from |', '|---|---:|---|---|---|']
    for ratio in ratios:
        met = {True: 'yes', False: 'NO', None: '-'}[ratio['met']]
        value = ratio['value']
        percent = 'share' in ratio['name'] or 'agreement' in ratio['name']
        text = f'{100 * value:.2f}%' if percent else f'{value:.2f}'
        lines.append(f'| {ratio["name"]} | {text} | {ratio["goal"]} | {met} | '
                     f'{ratio["compares"]} |')
    return lines


def load_average() -> list[float]:
    """Return the 1, 5 and 15 minute load averages."""
    return list(os.getloadavg())


# Others may use this much of one core during the offline phase before the report warns.
OTHERS_WARN_PERCENT = 20.0


class OthersMeter:
    """
    CPU used by every process but this one over a phase, in percent of one core.

    The load average cannot tell: this process's own two inference threads already keep it
    near 2, and after the node runs it counts the bench's own camera and node processes.
    """

    def __init__(self) -> None:
        self._start = self._read()

    @staticmethod
    def _read() -> tuple[float, float, float]:
        busy, _ = node_probe.machine_busy_seconds()
        return busy, node_probe.cpu_seconds([os.getpid()]), time.monotonic()

    def percent(self) -> float:
        """Return the others' CPU since construction, percent of one core."""
        busy, own, now = self._read()
        elapsed = now - self._start[2]
        others = (busy - self._start[0]) - (own - self._start[1])
        return 100.0 * max(others, 0.0) / elapsed if elapsed > 0 else float('nan')


def versions() -> dict[str, str]:
    """Return the versions of Python and the runtimes."""
    found = {'python': platform.python_version(), 'opencv': cv2.__version__,
             'numpy': np.__version__}
    for name in ('onnxruntime', 'openvino'):
        try:
            module = __import__(name)
            found[name] = getattr(module, '__version__', '?')
        except ImportError:
            found[name] = 'absent'
    return found


# ---- main -----------------------------------------------------------------------------------
def classic_case(model: str, form: str, path: str, colors_path: str,
                 skipped: list[str]) -> Case | None:
    """Return the tutorial pipeline's case on a scores model cv2.dnn reads, or None."""
    try:
        if colors_path:
            colors = classic_enet.read_tutorial_colors(colors_path)
        else:
            probe = cv2.dnn.readNet(path)
            probe.setInput(np.zeros((1, 3, MODEL_SIZE[1], MODEL_SIZE[0]), np.float32))
            colors = classic_enet.fixed_palette(probe.forward().shape[1])
        pipeline = classic_enet.ClassicPipeline(path, colors, *MODEL_SIZE)
    except (cv2.error, OSError, ValueError) as error:
        skipped.append(f'{model} classic: {error}')
        return None
    return Case(model, 'classic', 'opencv', form, classic_step(pipeline),
                f'cv2.dnn {cv2.__version__} + NumPy (tutorial)')


def offline_phase(model: str, forms: dict[str, str], labels: tuple[str, str],
                  frames: list[np.ndarray], arguments, skipped: list[str]) -> list[Case]:
    """Build and measure the offline cases of one model, the tutorial pipeline first."""
    log(f'{model}: loading')
    classic_form = 'torch7' if 'torch7' in forms else 'onnx'
    classic = classic_case(model, classic_form, forms[classic_form], labels[1], skipped)
    cases = [classic] if classic else []
    cases += build_cases(model, forms, labels, frames, arguments, skipped)
    if not cases:
        return cases
    log(f'{model}: {len(cases)} cases, {arguments.rounds} interleaved rounds')
    measure(cases, frames, arguments.rounds, arguments.warmup)
    return cases


def parse_arguments() -> argparse.Namespace:
    """Parse the command line and fill in the defaults that depend on ``--quick``."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='fewer rounds, shorter and fewer node runs')
    parser.add_argument('--skip-node', action='store_true', help='leave out the node runs')
    parser.add_argument('--rounds', type=int, help='interleaved offline rounds (15; quick 4)')
    parser.add_argument('--node-seconds', type=float,
                        help='measured seconds a node run (20; quick 8)')
    parser.add_argument('--domain', type=int, default=51,
                        help='ROS_DOMAIN_ID of the first node run (then +1, ...)')
    parser.add_argument('--backend', dest='backends', type=lambda text: text.split(','),
                        help='comma-separated backends to measure (default: every available '
                             'one; a single one is also used by the node)')
    parser.add_argument('--target', default='auto', choices=('auto', 'cpu', 'cuda'),
                        help='device of the seg_ros rows and the node; cuda requires it '
                             '(require_cuda) instead of falling back to the CPU')
    parser.add_argument('--output', default=RESULTS_PATH, help='JSON results file')
    parser.add_argument('--enet', default=ENET_PATH,
                        help='the Torch7 ENet Cityscapes file (default: ../shared/models/...)')
    parser.add_argument('--images', default=IMAGES_DIR,
                        help='folder of *.jpg street photos (default: ../shared/images)')
    parser.add_argument('--embedded', help='the embedded model (default: '
                                           'models/enet-synth/enet-synth.onnx of this tree)')
    arguments = parser.parse_args()
    arguments.rounds = arguments.rounds or (4 if arguments.quick else 15)
    arguments.warmup = 1 if arguments.quick else 2
    arguments.node_seconds = arguments.node_seconds or (8.0 if arguments.quick else 20.0)
    arguments.spot_count = 3 if arguments.quick else 6
    return arguments


def main() -> int:
    """Parse the command line, measure, print the tables, write the JSON."""
    arguments = parse_arguments()
    if not os.environ.get('AMENT_PREFIX_PATH'):
        # seg_ros.paths.share_directory() lets ament_index's OSError for an unset
        # AMENT_PREFIX_PATH escape; the virtual environment is the ament prefix of its ROS
        # packages, and seg_ros, absent from its index, then falls back to the source tree.
        os.environ['AMENT_PREFIX_PATH'] = sys.prefix
    started = time.monotonic()
    load_before = load_average()
    others = OthersMeter()
    skipped: list[str] = []
    temp_dir = tempfile.mkdtemp(prefix='seg_ros-bench-')
    try:
        photos = photo_frames(arguments.images)
        enet_cases: list[Case] = []
        enet_forms: dict[str, str] = {}
        enet_labels = default_label_paths(arguments.enet)
        if not os.path.isfile(arguments.enet) or not photos:
            missing = arguments.images if os.path.isfile(arguments.enet) else arguments.enet
            skipped.append(f'real ENet: {missing} is absent; every ENet row is skipped')
            log(skipped[-1])
        else:
            log('enet: converting the Torch7 file to ONNX in a temporary folder')
            enet_forms = convert_enet(arguments.enet, temp_dir, skipped)
            enet_cases = offline_phase('enet', enet_forms, enet_labels, photos, arguments,
                                       skipped)
        # Looked up only now: the model may be written while the ENet rows run.
        embedded = arguments.embedded or os.path.join(REPO_ROOT, EMBEDDED_MODEL)
        embedded_cases: list[Case] = []
        synthetic: list[np.ndarray] = []
        if not os.path.isfile(embedded):
            skipped.append(f'embedded model: {os.path.relpath(embedded, REPO_ROOT)} is absent '
                           '(not trained yet?); its rows are skipped')
            log(skipped[-1])
        else:
            synthetic = synthetic_frames(4)
            embedded_cases = offline_phase(
                'embedded', {'onnx': embedded}, default_label_paths(embedded), synthetic,
                arguments, skipped)
        all_cases = enet_cases + embedded_cases
        arguments.fast_forms = {case.model: True for case in all_cases
                                if case.form.endswith(' fast')}
        offline_load = {'load_after': load_average(), 'others_percent': others.percent()}
        runs = []
        if not arguments.skip_node:
            photos_dir = (copy_photos(arguments.images, os.path.join(temp_dir, 'photos'))
                          if enet_cases else None)
            synthetic_dir = (write_frames(synthetic, os.path.join(temp_dir, 'synthetic'))
                             if embedded_cases else None)
            configs = node_configs(enet_forms, enet_labels, photos_dir,
                                   embedded if embedded_cases else None, synthetic_dir,
                                   arguments)
            for offset, config in enumerate(configs):
                log(f'node: {config["name"]} ({arguments.node_seconds:g} s measured, domain '
                    f'{arguments.domain + offset})')
                model_frames = photos if config['model'] == 'enet' else synthetic
                runs.append(node_run(config, all_cases, model_frames, arguments.domain + offset,
                                     arguments.node_seconds, arguments.spot_count))
        ratios = target_ratios(all_cases, runs)
        report = build_report(all_cases, runs, ratios, skipped, arguments,
                              dict(offline_load, load_before=load_before),
                              time.monotonic() - started)
        print('\n'.join(report['markdown']))
        os.makedirs(os.path.dirname(os.path.abspath(arguments.output)), exist_ok=True)
        with open(arguments.output, 'w', encoding='utf-8') as output:
            json.dump(report, output, indent=2, default=str)
        log(f'wrote {arguments.output}')
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    return 0


def spot_check(cases: list[Case], frames: list[np.ndarray], count: int) -> dict[str, list]:
    """
    Time each case ``count`` more times, interleaved (outside its interleaved-round samples).

    :return: case key -> the timings of each call (ms: total, cpu, ...).
    """
    samples: dict[str, list[dict]] = {case.key: [] for case in cases}
    for index in range(count):
        for case in cases:
            time.sleep(CASE_GAP_S)
            samples[case.key].append(case.step(frames[index % len(frames)]))
    return samples


def node_run(config: dict, cases: list[Case], frames: list[np.ndarray], domain_id: int,
             seconds: float, spot_count: int) -> dict:
    """
    Run one node configuration, bracketed by offline runs of the seg_ros case it matches.

    The machine's load drifts; timing seg_ros alone right before and right after the node run
    gives the fps ratio a reference taken within seconds of it.
    """
    candidates = [case for case in cases if case.model == config['model'] and
                  case.pipeline == 'seg_ros' and case.form == config['form'] and
                  config['node']['backend'] in ('auto', case.backend)]
    # The tutorial too: the goal ratio then compares two figures taken within seconds.
    classic = find(cases, model=config['model'], pipeline='classic')
    bracket = [classic] if classic is not None else []
    before = spot_check(candidates + bracket, frames, spot_count)

    def beside_camera(result: dict) -> dict:
        # Only the case matching the backend the node used: another runtime's idle thread
        # pool would disturb its timing.
        used = find(candidates, backend=result.get('diagnostics', {}).get('backend', '?'))
        return (spot_check([used], frames, BESIDE_FACTOR * spot_count) if used is not None
                else {})
    result = node_probe.run_node(config['node'], config['camera'], domain_id, warmup_s=3.0,
                                 measure_s=seconds, log=log, beside_camera=beside_camera)
    run = dict(config, result=result)
    if 'error' in result:
        return run
    diagnostics = result.get('diagnostics', {})
    backend = diagnostics.get('backend', config['node']['backend'])
    offline = find(candidates, backend=backend)
    after = spot_check(([offline] if offline is not None else []) + bracket, frames, spot_count)
    if classic is not None:
        run['classic_ms_around_run'] = [sample['total'] for sample in
                                        before[classic.key] + after[classic.key]]
    if offline is not None:
        around = before[offline.key] + after[offline.key]
        run['offline_key'] = offline.key
        run['offline_ms_around_run'] = [sample['total'] for sample in around]
        run['offline_fps'] = 1000.0 / statistics.median(run['offline_ms_around_run'])
        run['fps_ratio'] = result['output_fps'] / run['offline_fps']
        # CPU time per frame does not depend on how much CPU other users leave to a process.
        run['offline_cpu_ms'] = statistics.median(sample['cpu'] for sample in around)
        beside = result.get('beside_camera')
        if beside is not None and beside['value'].get(offline.key):
            # seg_ros alone with the camera still publishing (and received here): the same load
            # on the machine as in the node run, so this ratio leaves out what the camera takes.
            run['beside_ms'] = [sample['total'] for sample in beside['value'][offline.key]]
            run['beside_fps'] = 1000.0 / statistics.median(run['beside_ms'])
            run['beside_noise'] = relative_noise(run['beside_ms'])
            run['fps_ratio_beside'] = result['output_fps'] / run['beside_fps']
            run['beside_camera_cpu_percent'] = beside['camera_cpu_percent']
        if result['frames_complete']:
            run['node_cpu_ms_per_frame'] = (10.0 * result['node_cpu_percent'] *
                                            result['window_s'] / result['frames_complete'])
            run['cpu_ratio'] = run['node_cpu_ms_per_frame'] / run['offline_cpu_ms']
    inference = to_float(diagnostics.get('inference mean (ms)'))
    if inference == inference:
        run['inference_mean_ms'] = inference
        run['latency_ratio'] = result['latency_p99_ms'] / inference
    return run


def build_report(cases: list[Case], runs: list[dict], ratios: list[dict], skipped: list[str],
                 arguments, load: dict, elapsed: float) -> dict:
    """
    Assemble the Markdown lines and the JSON record.

    :param load: ``load_before`` and ``load_after`` (the offline phase's load averages) and
        ``others_percent`` (CPU used by other processes during it, percent of one core).
    """
    others = load['others_percent']
    markdown = [f'## seg_ros segmentation benchmark ({os.cpu_count()} CPU cores, frames '
                f'{FRAME_SIZE[0]}x{FRAME_SIZE[1]}, model input {MODEL_SIZE[0]}x{MODEL_SIZE[1]})',
                '',
                f'Offline: median of {arguments.rounds} interleaved rounds a case. Other '
                f'processes used {others:.0f} % of one core meanwhile; load average before '
                f'{load["load_before"][0]:.2f}, after {load["load_after"][0]:.2f} (this '
                'process alone keeps it near 2; compare within a run).', '']
    if others > OTHERS_WARN_PERCENT:
        markdown += [f'**Warning**: other processes used {others:.0f} % of one core while the '
                     'offline rows were timed: multi-threaded runtimes lose most when a core '
                     'is taken from them, so even ratios of wall times are distorted. The CPU '
                     'ms columns (work per frame) depend much less on it.', '']
    for model in ('enet', 'embedded'):
        model_cases = [case for case in cases if case.model == model]
        if model_cases:
            markdown += offline_rows(model_cases) + ['']
    described = {}
    for case in cases:
        name = 'classic' if case.pipeline == 'classic' else f'{case.backend} {case.form}'
        described.setdefault(f'{case.model} {name}', case.describe)
    if described:
        markdown += ['Runtimes: ' + '; '.join(f'`{name}`: {text}'
                                              for name, text in described.items()), '']
    if runs:
        markdown += [f'Node over topics: camera_source {FRAME_SIZE[0]}x{FRAME_SIZE[1]} at '
                     f'{CAMERA_RATE:g} Hz -> segmentation_node (class map, colour mask and '
                     'overlay at frame size, bgr8) -> subscriber; CPU % of one core.', '']
        markdown += node_rows(runs) + [''] + stage_rows(runs) + ['']
    if ratios:
        markdown += ['Targets (ratios measured in this run):', ''] + ratio_rows(ratios) + ['']
    if skipped:
        markdown += ['Skipped:', ''] + [f'- {line}' for line in skipped] + ['']
    markdown.append(f'Total time {elapsed:.0f} s.')
    return {
        'markdown': markdown,
        'machine': {'cores': os.cpu_count(), 'load_before': load['load_before'],
                    'load_after': load['load_after'],
                    'others_cpu_percent_offline': others, 'versions': versions(),
                    'platform': platform.platform()},
        'settings': {'frame_size': FRAME_SIZE, 'model_size': MODEL_SIZE,
                     'rounds': arguments.rounds, 'quick': arguments.quick,
                     'camera_rate': CAMERA_RATE, 'backends': arguments.backends,
                     'target': arguments.target, 'node_seconds': arguments.node_seconds},
        'offline': [case_summary(case) for case in cases],
        'node': runs,
        'ratios': ratios,
        'skipped': skipped,
        'elapsed_s': elapsed,
    }


if __name__ == '__main__':
    sys.exit(main())
