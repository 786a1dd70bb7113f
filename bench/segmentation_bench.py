"""
Performance of seg_ros against the classic ENet tutorial pipeline, offline and over ROS topics.

Everything is measured in one run, side by side, and reported as medians and as ratios taken in
that same run (a shared, noisy machine shifts absolute times, much less their ratios). Offline
cases are interleaved: each round runs every case once on the next frame, in a rotated order.

Offline, per model (frames: the ``../shared/images`` photos resized to 1280x720, or synthetic
street scenes for the embedded model when the photos are absent):

* ``classic``: the tutorial's cv2.dnn + NumPy per-frame work (:mod:`classic_enet`);
* ``bare``: ``Backend.infer(frame)`` of each backend and model form (frame -> class map at
  model size: pre-processing, network, class map);
* ``network``: the network call alone on an already prepared input (``Backend._forward``);
* ``seg_ros``: ``Segmenter.run`` with every output at frame size (class map, colour mask,
  overlay), i.e. all of seg_ros's per-frame work without ROS.

Model forms of the real ENet: the Torch7 ``.net`` (OpenCV only), and the ONNX files that
``seg_ros.tools.torch7.convert_torch7`` writes into a temporary folder (never into the repo:
the weights are non-commercial): ``onnx-scores`` (float input, score output) and
``onnx-fused`` (uint8 BGR in, class map out: normalisation and argmax inside the graph).

Over topics (``--skip-node`` leaves it out): ``camera_source`` at 30 Hz 1280x720 ->
``segmentation_node`` -> a subscriber here; see :mod:`node_probe`.

Usage::

    .venv/bin/python bench/segmentation_bench.py [--quick] [--skip-node] [--rounds N]

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

from seg_ros.core.backends import available_backends, open_backend, Preprocess
from seg_ros.core.errors import ModelError
from seg_ros.core.segmenter import Segmenter, SegmenterConfig
from seg_ros.paths import default_label_paths, embedded_model_path

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO_ROOT), 'shared')
ENET_PATH = os.path.join(SHARED, 'models', 'enet-cityscapes', 'enet-model.net')
IMAGES_DIR = os.path.join(SHARED, 'images')
RESULTS_PATH = os.path.join(REPO_ROOT, 'bench', 'results', 'segmentation.json')
FRAME_SIZE = (1280, 720)
MODEL_SIZE = (1024, 512)
CAMERA_RATE = 30.0
ALPHA = 0.5
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

    @property
    def key(self) -> str:
        """Return a unique name, e.g. ``enet/seg_ros/openvino/onnx-fused``."""
        return f'{self.model}/{self.pipeline}/{self.backend}/{self.form}'

    def median(self, name: str = 'total') -> float:
        """Return the median of one timing over the samples (NaN without samples)."""
        values = [sample[name] for sample in self.samples if name in sample]
        return statistics.median(values) if values else float('nan')


def log(message: str) -> None:
    """Print progress to stderr (stdout carries the tables)."""
    print(message, file=sys.stderr, flush=True)


# ---- frames and models ----------------------------------------------------------------------
def photo_paths() -> list[str]:
    """Return the shared photos (``../shared/images/*.jpg``), sorted."""
    return sorted(glob.glob(os.path.join(glob.escape(IMAGES_DIR), '*.jpg')))


def photo_frames() -> list[np.ndarray]:
    """Return the shared photos resized to the camera size, as camera_source resizes them."""
    frames = []
    for path in photo_paths():
        frame = cv2.imread(path, cv2.IMREAD_COLOR)
        if frame is not None:
            frames.append(cv2.resize(frame, FRAME_SIZE, interpolation=cv2.INTER_AREA))
    return frames


def synthetic_frames(count: int) -> list[np.ndarray]:
    """Return ``count`` synthetic street scenes at the camera size (the embedded model's domain)."""
    from seg_ros.core.synthetic import SceneAnimation

    animation = SceneAnimation(*FRAME_SIZE, seed=7)
    return [animation.frame(1.5 * index)[0] for index in range(count)]


def write_frames(frames: list[np.ndarray], folder: str) -> str:
    """Write frames as JPEG files for camera_source's folder source; return the folder."""
    os.makedirs(folder, exist_ok=True)
    for index, frame in enumerate(frames):
        cv2.imwrite(os.path.join(folder, f'frame{index:03d}.jpg'), frame,
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
    return folder


def convert_enet(temp_dir: str, skipped: list[str]) -> dict[str, str]:
    """
    Return the real ENet's model forms: the Torch7 file and its ONNX conversions (temp files).

    :param temp_dir: where the ONNX files go.
    :param skipped: receives a line for each form that could not be made.
    :return: form name -> model path.
    """
    forms = {'torch7': ENET_PATH}
    try:
        from seg_ros.tools.torch7 import convert_torch7
    except ImportError as error:
        skipped.append(f'enet ONNX forms: the converter does not import ({error})')
        return forms
    for form, fused in (('onnx-fused', True), ('onnx-scores', False)):
        path = os.path.join(temp_dir, f'enet-{form}.onnx')
        started = time.perf_counter()
        try:
            convert_torch7(ENET_PATH, path, MODEL_SIZE[0], MODEL_SIZE[1], fused=fused)
        except Exception as error:  # report any converter failure and go on with the rest
            skipped.append(f'enet {form}: conversion failed: {error}')
            continue
        log(f'  converted {form} in {time.perf_counter() - started:.1f} s')
        forms[form] = path
    return forms


# ---- cases ----------------------------------------------------------------------------------
def bare_step(backend) -> Callable[[np.ndarray], dict[str, float]]:
    """Time ``backend.infer(frame)``."""
    def step(frame: np.ndarray) -> dict[str, float]:
        started = time.perf_counter()
        backend.infer(frame)
        return {'total': 1e3 * (time.perf_counter() - started)}
    return step


def network_step(backend) -> Callable[[np.ndarray], dict[str, float]] | None:
    """
    Time the network call alone on an input prepared beforehand (one per distinct frame).

    It uses the backend's private ``_prepare``/``_forward``: the public API has no way to run
    the network without its pre- and post-processing. None when they are missing.
    """
    prepare = getattr(backend, '_prepare', None)
    forward = getattr(backend, '_forward', None)
    if prepare is None or forward is None:
        return None
    prepared: dict[int, np.ndarray] = {}

    def step(frame: np.ndarray) -> dict[str, float]:
        network_input = prepared.get(id(frame))
        if network_input is None:
            network_input = prepared[id(frame)] = prepare(frame, 'bgr8')
        started = time.perf_counter()
        forward(network_input)
        return {'total': 1e3 * (time.perf_counter() - started)}
    return step


def segmenter_step(segmenter: Segmenter) -> Callable[[np.ndarray], dict[str, float]]:
    """Time ``Segmenter.run`` with every output at frame size; split inference from the rest."""
    def step(frame: np.ndarray) -> dict[str, float]:
        started = time.perf_counter()
        result = segmenter.run(frame, class_map=True, color_mask=True, overlay=True,
                               full_resolution=True, encoding='bgr8', alpha=ALPHA)
        total = 1e3 * (time.perf_counter() - started)
        return {'total': total, 'inference': result.inference_ms,
                'rest': total - result.inference_ms}
    return step


def classic_step(pipeline: classic_enet.ClassicPipeline):
    """Time the tutorial pipeline; its network share is ``forward`` alone."""
    def step(frame: np.ndarray) -> dict[str, float]:
        return pipeline.run(frame)[1]
    return step


def build_cases(model: str, forms: dict[str, str], labels: tuple[str, str],
                skipped: list[str]) -> list[Case]:
    """
    Open every (backend, model form) pair that loads: bare, network-only and seg_ros cases.

    :param model: model label for the table ('enet' or 'embedded').
    :param forms: form name -> model path.
    :param labels: (classes_path, colors_path), '' for none.
    :param skipped: receives a line for every pair that cannot run, with its reason.
    :return: the cases.
    """
    cases = []
    runtimes = available_backends()
    for backend_name, problem in runtimes.items():
        if problem:
            skipped.append(f'{model} {backend_name}: {problem}')
            continue
        for form, path in forms.items():
            if form == 'torch7' and backend_name != 'opencv':
                continue  # only OpenCV DNN reads Torch7 files
            started = time.perf_counter()
            try:
                backend, _ = open_backend(path, Preprocess(*MODEL_SIZE), backend=backend_name)
                segmenter = Segmenter(SegmenterConfig(
                    model_path=path, input_width=MODEL_SIZE[0], input_height=MODEL_SIZE[1],
                    backend=backend_name, classes_path=labels[0],
                    colors_path=labels[1]))
            except ModelError as error:
                skipped.append(f'{model} {backend_name} {form}: {error}')
                continue
            describe = backend.describe()
            log(f'  opened {model} {backend_name} {form} in '
                f'{time.perf_counter() - started:.1f} s: {describe}')
            cases.append(Case(model, 'bare', backend_name, form, bare_step(backend), describe))
            network = network_step(backend)
            if network is not None:
                cases.append(Case(model, 'network', backend_name, form, network, describe))
            cases.append(Case(model, 'seg_ros', backend_name, form, segmenter_step(segmenter),
                              segmenter.backend.describe()))
    return cases


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
            case.samples.append(case.step(frame))
        if round_index == 0 or (round_index + 1) % 5 == 0:
            log(f'  round {round_index + 1}/{rounds} '
                f'({time.perf_counter() - started:.0f} s)')


# ---- node -----------------------------------------------------------------------------------
def node_configs(enet_forms: dict[str, str], enet_labels: tuple[str, str], photos_dir: str,
                 embedded: str | None, synthetic_dir: str | None, quick: bool) -> list[dict]:
    """Return the node configurations to run: name, node parameters, camera parameters, form."""
    camera = {'width': FRAME_SIZE[0], 'height': FRAME_SIZE[1], 'rate': CAMERA_RATE,
              'loop': 'true'}
    common = {'input_width': MODEL_SIZE[0], 'input_height': MODEL_SIZE[1],
              'color_encoding': 'bgr8', 'alpha': ALPHA}
    configs = []
    if photos_dir:
        labels = {'classes_path': enet_labels[0], 'colors_path': enet_labels[1]}
        if 'onnx-fused' in enet_forms:
            configs.append({
                'name': 'enet auto (onnx-fused)', 'model': 'enet', 'form': 'onnx-fused',
                'node': {'model_path': enet_forms['onnx-fused'], 'backend': 'auto',
                         **common, **labels},
                'camera': {'source': photos_dir, **camera}})
        if not quick:
            configs.append({
                'name': 'enet opencv (torch7)', 'model': 'enet', 'form': 'torch7',
                'node': {'model_path': enet_forms['torch7'], 'backend': 'opencv',
                         **common, **labels},
                'camera': {'source': photos_dir, **camera}})
    if embedded and synthetic_dir:
        configs.append({
            'name': 'embedded auto', 'model': 'embedded', 'form': 'onnx',
            'node': {'model_path': embedded, 'backend': 'auto', **common},
            'camera': {'source': synthetic_dir, **camera}})
    return configs


# ---- report ---------------------------------------------------------------------------------
def case_summary(case: Case) -> dict:
    """Return the JSON record of one offline case: medians of each timing, sample count."""
    names = sorted({name for sample in case.samples for name in sample})
    return {'key': case.key, 'model': case.model, 'pipeline': case.pipeline,
            'backend': case.backend, 'form': case.form, 'describe': case.describe,
            'samples': len(case.samples),
            'median_ms': {name: case.median(name) for name in names},
            'p90_ms': node_probe.percentile([s['total'] for s in case.samples], 0.9)}


def find(cases: list[Case], **fields) -> Case | None:
    """Return the first case whose attributes equal ``fields``."""
    return next((case for case in cases
                 if all(getattr(case, name) == value for name, value in fields.items())), None)


def offline_rows(cases: list[Case]) -> list[str]:
    """Return the Markdown table of the offline cases of one model."""
    classic = find(cases, pipeline='classic')
    lines = ['| model | pipeline | backend | model form | frame ms | network ms | rest ms | '
             'rest share | fps | vs classic |',
             '|---|---|---|---|---:|---:|---:|---:|---:|---:|']
    for case in cases:
        total = case.median()
        if case.pipeline == 'classic':
            network, rest = case.median('network'), total - case.median('network')
        elif case.pipeline == 'seg_ros':
            network_case = find(cases, pipeline='network', backend=case.backend, form=case.form)
            network = network_case.median() if network_case else case.median('inference')
            rest = total - network
        elif case.pipeline == 'bare':
            network_case = find(cases, pipeline='network', backend=case.backend, form=case.form)
            network = network_case.median() if network_case else float('nan')
            rest = total - network
        else:
            network, rest = total, 0.0
        speedup = classic.median() / total if classic else float('nan')
        lines.append(f'| {case.model} | {case.pipeline} | {case.backend} | {case.form} | '
                     f'{total:.1f} | {network:.1f} | {rest:.1f} | {100 * rest / total:.1f}% | '
                     f'{1000 / total:.2f} | {speedup:.2f}x |')
    return lines


def node_rows(runs: list[dict]) -> list[str]:
    """Return the Markdown table of the node runs."""
    lines = ['| node config | backend | output fps | seg_ros alone fps | fps ratio | '
             'latency p50 ms | latency p99 ms | inference mean ms (diag) | p99 / inference | '
             'node CPU % | camera CPU % | machine busy % | node peak RSS MiB | dropped |',
             '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
    for run in runs:
        result = run['result']
        if 'error' in result:
            lines.append(f'| {run["name"]} | failed: {result["error"].splitlines()[0]} |')
            continue
        diagnostics = result.get('diagnostics', {})
        lines.append(
            f'| {run["name"]} | {diagnostics.get("backend", "?")} | {result["output_fps"]:.2f} | '
            f'{run.get("offline_fps", float("nan")):.2f} | {run.get("fps_ratio", float("nan")):.2f}'
            f' | {result["latency_p50_ms"]:.0f} | {result["latency_p99_ms"]:.0f} | '
            f'{run.get("inference_mean_ms", float("nan")):.1f} | '
            f'{run.get("latency_ratio", float("nan")):.2f} | {result["node_cpu_percent"]:.0f} | '
            f'{result["camera_cpu_percent"]:.0f} | {result["machine_busy_percent"]:.0f} | '
            f'{result["node_peak_rss_mib"]:.0f} | '
            f'{diagnostics.get("frames dropped (replaced by newer)", "?")} |')
    return lines


def to_float(text: str | None) -> float:
    """Parse a diagnostics value; NaN when missing or not a number."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return float('nan')


def target_ratios(enet_cases: list[Case], all_cases: list[Case], runs: list[dict]) -> list[dict]:
    """
    Compute the issue's target ratios from this run's measurements.

    :param enet_cases: offline cases of the real ENet (the tutorial runs only on it).
    :param all_cases: every offline case.
    :param runs: node runs, with their matching offline figures added.
    :return: one record per ratio: name, value, goal, met, what it compares.
    """
    ratios = []
    classic = find(enet_cases, pipeline='classic')
    seg_cases = [case for case in enet_cases if case.pipeline == 'seg_ros']
    if classic and seg_cases:
        best = min(seg_cases, key=lambda case: case.median())
        same = find(enet_cases, pipeline='seg_ros', backend='opencv', form='torch7')
        ratios.append({
            'name': 'seg_ros per frame vs classic tutorial (speedup)',
            'value': classic.median() / best.median(), 'goal': '>= 2', 'met':
                classic.median() / best.median() >= 2.0,
            'compares': f'classic {classic.median():.1f} ms / seg_ros {best.backend} '
                        f'{best.form} {best.median():.1f} ms'})
        if same is not None:
            ratios.append({
                'name': 'same model file and runtime (opencv, torch7) vs classic (speedup)',
                'value': classic.median() / same.median(), 'goal': '(information)',
                'met': None,
                'compares': f'classic {classic.median():.1f} ms / seg_ros opencv torch7 '
                            f'{same.median():.1f} ms'})
    for case in (c for c in all_cases if c.pipeline == 'seg_ros'):
        network = find(all_cases, model=case.model, pipeline='network', backend=case.backend,
                       form=case.form)
        if network is None:
            continue
        share = (case.median() - network.median()) / case.median()
        ratios.append({
            'name': f'non-network share of frame time, {case.model} {case.backend} {case.form}',
            'value': share, 'goal': '<= 0.10', 'met': share <= 0.10,
            'compares': f'({case.median():.1f} - network {network.median():.1f}) / '
                        f'{case.median():.1f} ms'})
    for run in runs:
        if 'fps_ratio' in run:
            ratios.append({
                'name': f'node fps over topics vs seg_ros alone, {run["name"]}',
                'value': run['fps_ratio'], 'goal': '>= 0.90', 'met': run['fps_ratio'] >= 0.9,
                'compares': f'{run["result"]["output_fps"]:.2f} fps / '
                            f'{run["offline_fps"]:.2f} fps'})
        if 'latency_ratio' in run:
            ratios.append({
                'name': f'latency p99 vs mean inference, {run["name"]}',
                'value': run['latency_ratio'], 'goal': '<= 2', 'met': run['latency_ratio'] <= 2,
                'compares': f'p99 {run["result"]["latency_p99_ms"]:.0f} ms / inference mean '
                            f'{run["inference_mean_ms"]:.1f} ms (node diagnostics)'})
    return ratios


def ratio_rows(ratios: list[dict]) -> list[str]:
    """Return the Markdown table of the target ratios."""
    lines = ['| ratio | value | goal | met | from |', '|---|---:|---|---|---|']
    for ratio in ratios:
        met = {True: 'yes', False: 'NO', None: '-'}[ratio['met']]
        value = ratio['value']
        text = f'{100 * value:.1f}%' if 'share' in ratio['name'] else f'{value:.2f}'
        lines.append(f'| {ratio["name"]} | {text} | {ratio["goal"]} | {met} | '
                     f'{ratio["compares"]} |')
    return lines


def load_average() -> list[float]:
    """Return the 1, 5 and 15 minute load averages."""
    return list(os.getloadavg())


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
def offline_phase(model: str, forms: dict[str, str], labels: tuple[str, str],
                  frames: list[np.ndarray], arguments, skipped: list[str]) -> list[Case]:
    """Build and measure the offline cases of one model (with the classic one for ENet)."""
    log(f'{model}: loading')
    cases = []
    if model == 'enet':
        cases.append(Case('enet', 'classic', 'opencv', 'torch7', classic_step(
            classic_enet.ClassicPipeline(ENET_PATH, labels[1], *MODEL_SIZE)),
            f'cv2.dnn {cv2.__version__} + NumPy (tutorial)'))
    cases += build_cases(model, forms, labels, skipped)
    if not cases:
        return cases
    log(f'{model}: {len(cases)} cases, {arguments.rounds} interleaved rounds')
    measure(cases, frames, arguments.rounds, arguments.warmup)
    return cases


def main() -> int:
    """Parse the command line, measure, print the tables, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true',
                        help='fewer rounds, shorter and fewer node runs')
    parser.add_argument('--skip-node', action='store_true', help='leave out the node runs')
    parser.add_argument('--rounds', type=int, help='interleaved offline rounds (15; quick 4)')
    parser.add_argument('--node-seconds', type=float, help='measured seconds a node run (20)')
    parser.add_argument('--domain', type=int, default=51,
                        help='ROS_DOMAIN_ID of the first node run (then +1, ...)')
    parser.add_argument('--output', default=RESULTS_PATH, help='JSON results file')
    arguments = parser.parse_args()
    if not os.environ.get('AMENT_PREFIX_PATH'):
        # seg_ros.paths.share_directory() lets ament_index's OSError for an unset
        # AMENT_PREFIX_PATH escape; the virtual environment is the ament prefix of its ROS
        # packages, and seg_ros, absent from its index, then falls back to the source tree.
        os.environ['AMENT_PREFIX_PATH'] = sys.prefix
    arguments.rounds = arguments.rounds or (4 if arguments.quick else 15)
    arguments.warmup = 1 if arguments.quick else 2
    node_seconds = arguments.node_seconds or (8.0 if arguments.quick else 20.0)
    started = time.monotonic()
    load_before = load_average()
    skipped: list[str] = []
    temp_dir = tempfile.mkdtemp(prefix='seg_ros-bench-')
    try:
        photos = photo_frames()
        enet_cases: list[Case] = []
        enet_forms: dict[str, str] = {}
        enet_labels = default_label_paths(ENET_PATH)
        if not os.path.isfile(ENET_PATH) or not photos:
            skipped.append(f'real ENet: {ENET_PATH if not photos else IMAGES_DIR} is absent; '
                           'the classic baseline and every ENet row are skipped')
            log(skipped[-1])
        else:
            log('enet: converting the Torch7 file to ONNX in a temporary folder')
            enet_forms = convert_enet(temp_dir, skipped)
            enet_cases = offline_phase('enet', enet_forms, enet_labels, photos, arguments,
                                       skipped)
        embedded = embedded_model_path()
        embedded_cases: list[Case] = []
        synthetic_dir = None
        if not os.path.isfile(embedded):
            skipped.append(f'embedded model: {os.path.relpath(embedded, REPO_ROOT)} is absent '
                           '(not trained yet?); its rows are skipped')
            log(skipped[-1])
            embedded = None
        else:
            synthetic = synthetic_frames(4)
            synthetic_dir = write_frames(synthetic, os.path.join(temp_dir, 'synthetic'))
            embedded_cases = offline_phase(
                'embedded', {'onnx': embedded}, default_label_paths(embedded),
                photos or synthetic, arguments, skipped)
        all_cases = enet_cases + embedded_cases
        runs = []
        if not arguments.skip_node:
            photos_dir = (write_frames(photos, os.path.join(temp_dir, 'photos'))
                          if enet_cases else None)
            configs = node_configs(enet_forms, enet_labels, photos_dir, embedded,
                                   synthetic_dir, arguments.quick)
            for offset, config in enumerate(configs):
                log(f'node: {config["name"]} ({node_seconds:g} s measured, domain '
                    f'{arguments.domain + offset})')
                result = node_probe.run_node(config['node'], config['camera'],
                                             arguments.domain + offset, warmup_s=3.0,
                                             measure_s=node_seconds, log=log)
                runs.append(match_offline(dict(config, result=result), all_cases))
        ratios = target_ratios(enet_cases, all_cases, runs)
        report = build_report(all_cases, runs, ratios, skipped, arguments, load_before,
                              time.monotonic() - started)
        print('\n'.join(report['markdown']))
        os.makedirs(os.path.dirname(os.path.abspath(arguments.output)), exist_ok=True)
        with open(arguments.output, 'w', encoding='utf-8') as output:
            json.dump(report, output, indent=2, default=str)
        log(f'wrote {arguments.output}')
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    return 0


def match_offline(run: dict, cases: list[Case]) -> dict:
    """Add to a node run the offline seg_ros figures of the same model, backend and form."""
    result = run['result']
    if 'error' in result:
        return run
    diagnostics = result.get('diagnostics', {})
    backend = diagnostics.get('backend', run['node']['backend'])
    offline = find(cases, model=run['model'], pipeline='seg_ros', backend=backend,
                   form=run['form'])
    if offline is not None:
        run['offline_key'] = offline.key
        run['offline_fps'] = 1000.0 / offline.median()
        run['fps_ratio'] = result['output_fps'] / run['offline_fps']
    inference = to_float(diagnostics.get('inference mean (ms)'))
    if inference == inference:
        run['inference_mean_ms'] = inference
        run['latency_ratio'] = result['latency_p99_ms'] / inference
    return run


def build_report(cases: list[Case], runs: list[dict], ratios: list[dict], skipped: list[str],
                 arguments, load_before: list[float], elapsed: float) -> dict:
    """Assemble the Markdown lines and the JSON record."""
    load_after = load_average()
    markdown = [f'## seg_ros segmentation benchmark ({os.cpu_count()} CPU cores, frames '
                f'{FRAME_SIZE[0]}x{FRAME_SIZE[1]}, model input {MODEL_SIZE[0]}x{MODEL_SIZE[1]})',
                '',
                f'Offline: median of {arguments.rounds} interleaved rounds a case. Load average '
                f'before {load_before[0]:.2f}, after {load_after[0]:.2f} (other users of this '
                'machine disturb absolute times; compare within a run).', '']
    for model in ('enet', 'embedded'):
        model_cases = [case for case in cases if case.model == model]
        if model_cases:
            markdown += offline_rows(model_cases) + ['']
    if runs:
        markdown += [f'Node over topics: camera_source {FRAME_SIZE[0]}x{FRAME_SIZE[1]} at '
                     f'{CAMERA_RATE:g} Hz -> segmentation_node (class map, colour mask and '
                     'overlay at frame size, bgr8) -> subscriber; CPU % of one core.', '']
        markdown += node_rows(runs) + ['']
    if ratios:
        markdown += ['Targets (ratios measured in this run):', ''] + ratio_rows(ratios) + ['']
    markdown += [f'Skipped: {line}' for line in skipped]
    markdown.append(f'Total time {elapsed:.0f} s.')
    return {
        'markdown': markdown,
        'machine': {'cores': os.cpu_count(), 'load_before': load_before,
                    'load_after': load_after, 'versions': versions(),
                    'platform': platform.platform()},
        'settings': {'frame_size': FRAME_SIZE, 'model_size': MODEL_SIZE,
                     'rounds': arguments.rounds, 'quick': arguments.quick,
                     'camera_rate': CAMERA_RATE},
        'offline': [case_summary(case) for case in cases],
        'node': runs,
        'ratios': ratios,
        'skipped': skipped,
        'elapsed_s': elapsed,
    }


if __name__ == '__main__':
    sys.exit(main())
