"""
The embedded ENet before and after ``seg_ros.tools.opencv_compat``, through seg_ros's Segmenter.

``--current`` (default: the committed ``models/enet-synth/enet-synth.onnx``) and its rewrite
(``--rewritten``; default: :func:`seg_ros.tools.opencv_compat.make_opencv_compatible` of
``--current``, made in a temporary folder) each go next to a copy of the committed model's
description and labels, and run through :class:`seg_ros.core.segmenter.Segmenter` on every
backend this Python has (opencv, onnxruntime, openvino; f32), and on backend opencv in each
``--python`` interpreter that can import seg_ros (e.g. a Python 3.10 venv with opencv-python
4.5.4.60, ROS 2 Humble's OpenCV). Each runtime runs in its own child process.

Frames: the photos of ``--images`` (default ``../shared/images``) and ``--frames`` synthetic
street scenes (``seg_ros.data.synthetic``, 1024x512), segmented at each ``--sizes``. It prints:

1. for each runtime and size, the share of class-map pixels (Segmenter's model-size map) that
   are the same for both forms, and whether the network's scores are bit-identical; a form that
   does not load gets its error;
2. the rewritten form on each runtime against the current form on each runtime (the class maps
   of one runtime against another's);
3. the median milliseconds of ``Segmenter.run`` (class map only) at the first size, ``--runs``
   runs of each form on each runtime, the two forms alternated run by run on the same frames,
   ``--threads`` inference threads (1 by default: the least disturbed on a shared machine), and
   the median of each run's ratio to the current form; with a control: a second copy of the
   current form, loaded after the others, whose ratio is what two identical files give.

Usage::

    .venv/bin/python bench/opencv_compat_bench.py [--current FILE] [--rewritten FILE]
        [--python PY ...] [--frames 6] [--sizes 512x256,1024x512] [--runs 25] [--threads 1]
"""

import argparse
import glob
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MODEL_DIR = os.path.join(REPO, 'models', 'enet-synth')
IMAGES = os.path.join(REPO, '..', 'shared', 'images')
# What goes next to each form, so that both are described as the committed model is.
COMPANIONS = ('enet-synth.seg_ros.json', 'classes.txt', 'colors.txt')
FORMS = ('current', 'rewritten')
# A second copy of the current form, loaded last and timed with the others: what the timing
# gives two identical files (OpenVINO runs the first model it compiles measurably faster).
CONTROL = 'control'
SEED = 2745


# ---- worker: one backend, both forms -----------------------------------------------------------
def runtime_version(backend: str) -> str:
    module = {'opencv': 'cv2'}.get(backend, backend)
    return __import__(module).__version__.split('-')[0]


def first_line(error: Exception) -> str:
    """Return the part of an error that says what failed, without the file's temporary path."""
    lines = [line.strip().lstrip('>').strip() for line in str(error).splitlines()]
    said = ([line for line in lines if line] or [type(error).__name__])[-1]
    said = said[said.find('Node ['):] if 'Node [' in said else said
    return said[:120].replace('|', '/')


def run_worker(request: dict) -> dict:
    """Segment every frame with both forms at every size; time the first size."""
    import cv2

    from seg_ros.core.decode.semantic import decode
    from seg_ros.core.segmenter import Segmenter, SegmenterConfig

    cv2.setNumThreads(request['threads'])
    backend = request['backend']
    frames = dict(np.load(request['frames']))
    result = {'backend': backend, 'version': runtime_version(backend),
              'python': sys.version.split()[0], 'errors': {}, 'scores': {}, 'ms': {}}
    maps = {}
    for index, (width, height) in enumerate(request['sizes']):
        size = f'{width}x{height}'
        segmenters = {}
        for form in FORMS:
            config = SegmenterConfig(request['models'][form], input_width=width,
                                     input_height=height, backend=backend)
            try:
                segmenters[form] = Segmenter(config)
            except Exception as error:  # ModelError, or a runtime's own
                result['errors'][form] = first_line(error)
        for form, segmenter in segmenters.items():
            for name, frame in frames.items():
                outputs = segmenter.backend.forward(segmenter.backend.prepare(frame, 'bgr8'))
                description = segmenter.backend.description
                scores = np.ascontiguousarray(outputs[description.output_name])
                maps[f'{form}|{size}|{name}'] = decode(outputs, description)
                result['scores'][f'{form}|{size}|{name}'] = hashlib.sha256(
                    scores.tobytes()).hexdigest()
        if index == 0 and len(segmenters) == 2:
            segmenters[CONTROL] = Segmenter(SegmenterConfig(
                request['models'][CONTROL], input_width=width, input_height=height,
                backend=backend))
        if index == 0 and segmenters:
            result['ms'] = time_forms(segmenters, list(frames.values()), request['runs'])
        del segmenters
    result['maps'] = request['maps']
    np.savez_compressed(request['maps'], **maps)
    return result


def time_forms(segmenters: dict, frames: list[np.ndarray], runs: int) -> dict[str, float]:
    """
    Return each form's median ms of ``Segmenter.run``, and of its ratio to the current form's.

    The forms take turns within each run (the order rotated run by run) on the same frame; the
    median of each run's ratio is less moved by other processes than the ratio of the medians.
    """
    times = {form: [] for form in segmenters}
    forms = list(segmenters)
    for segmenter in segmenters.values():
        segmenter.run(frames[0], encoding='bgr8', color_mask=False, overlay=False)
    for run in range(runs):
        frame = frames[run % len(frames)]
        for form in forms[run % len(forms):] + forms[:run % len(forms)]:
            started = time.perf_counter()
            segmenters[form].run(frame, encoding='bgr8', color_mask=False, overlay=False,
                                 full_resolution=False)
            times[form].append((time.perf_counter() - started) * 1e3)
    medians = {form: statistics.median(values) for form, values in times.items()}
    if 'current' in times:
        for form in [form for form in forms if form != 'current']:
            medians[f'{form}/current'] = statistics.median(
                mine / current for current, mine in zip(times['current'], times[form]))
    return medians


# ---- parent: models, frames, workers, tables ---------------------------------------------------
def place_forms(current: str, rewritten: str, folder: str) -> dict[str, str]:
    """Copy both forms, each next to the committed description and labels; return the paths."""
    if not rewritten:
        import onnx

        from seg_ros.tools.opencv_compat import make_opencv_compatible

        model = onnx.load(current)
        counts = make_opencv_compatible(model)
        rewritten = os.path.join(folder, 'rewritten.onnx')
        onnx.save(model, rewritten)
        print(f'rewrote {current}: {counts}', file=sys.stderr)
    paths = {}
    for form, source in zip(FORMS + (CONTROL,), (current, rewritten, current)):
        os.makedirs(os.path.join(folder, form))
        paths[form] = os.path.join(folder, form, 'enet-synth.onnx')
        shutil.copyfile(source, paths[form])
        for name in COMPANIONS:
            shutil.copyfile(os.path.join(MODEL_DIR, name), os.path.join(folder, form, name))
    return paths


def make_frames(count: int, images: str) -> dict[str, np.ndarray]:
    import cv2

    from seg_ros.data import synthetic

    frames = {os.path.basename(path): cv2.imread(path)
              for path in sorted(glob.glob(os.path.join(images, '*.jpg')))}
    frames = {name: frame for name, frame in frames.items() if frame is not None}
    rng = np.random.default_rng(SEED)
    for index in range(count):
        frames[f'scene{index}'] = synthetic.render_scene(rng, 1024, 512)[0]
    return frames


def backends_here() -> list[str]:
    from seg_ros.core.backends import available_backends

    return [name for name, problem in available_backends().items() if problem is None]


def spawn(python: str, request: dict, threads: int) -> dict:
    environment = dict(os.environ, SEG_ROS_THREADS=str(threads),
                       PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get(
                           'PYTHONPATH', '')])))
    child = subprocess.run([python, os.path.abspath(__file__), '--worker', json.dumps(request)],
                           capture_output=True, text=True, check=False, env=environment)
    lines = [line for line in child.stdout.splitlines() if line.startswith('{')]
    if child.returncode or not lines:
        tail = (child.stderr.strip().splitlines() or ['no output'])[-1]
        return {'backend': request['backend'], 'version': '?', 'failed': tail[:200]}
    return json.loads(lines[-1])


def share_same(first: dict, second: dict, keys: list[str]) -> str:
    """Return the share of pixels with the same class, and how many differ of how many."""
    total = sum(first[key].size for key in keys)
    differ = total - sum(int(np.count_nonzero(first[key] == second[key])) for key in keys)
    return f'{100.0 * (total - differ) / max(1, total):.4f} % ({differ} of {total:,} differ)'


def report(results: list[dict], sizes: list[str], frames: list[str], runs: int,
           threads: int) -> None:
    maps = {}
    for result in results:
        if 'maps' in result:
            with np.load(result['maps']) as saved:
                for name in saved.files:
                    form, key = name.split('|', 1)
                    maps.setdefault((result['label'], form), {})[key] = saved[name]
    print(f'{len(frames)} frames ({", ".join(frames)}) at each of {", ".join(sizes)}\n')
    print('| runtime | size | class-map pixels identical, rewritten vs current | scores '
          'bit-identical |')
    print('|---|---|---|---|')
    for result in results:
        label = result['label']
        if 'failed' in result:
            print(f'| {label} | | worker failed: {result["failed"]} | |')
            continue
        errors = result['errors']
        for size in sizes:
            keys = [f'{size}|{name}' for name in frames]
            if errors:
                text = '; '.join(f'{form} fails: {error}' for form, error in errors.items())
                print(f'| {label} | {size} | {text} | |')
                continue
            share = share_same(maps[(label, 'current')], maps[(label, 'rewritten')], keys)
            exact = all(result['scores'][f'current|{key}'] == result['scores'][f'rewritten|{key}']
                        for key in keys)
            print(f'| {label} | {size} | {share} | {"yes" if exact else "no"} |')
    references = [label for label, form in maps if form == 'current']
    print('\nThe rewritten form on each runtime against the current form on each runtime '
          '(class-map pixels identical, all sizes):\n')
    print('| rewritten on | ' + ' | '.join(f'current on {label}' for label in references) + ' |')
    print('|---|' + '---|' * len(references))
    keys = [f'{size}|{name}' for size in sizes for name in frames]
    for label, form in maps:
        if form == 'rewritten':
            cells = [share_same(maps[(label, form)], maps[(reference, 'current')], keys)
                     for reference in references]
            print(f'| {label} | ' + ' | '.join(cells) + ' |')
    print(f'\nms of Segmenter.run (class map only) at {sizes[0]}, median of {runs} runs each, '
          f'forms taking turns, {threads} inference thread(s):\n')
    print('| runtime | current ms | rewritten ms | control ms (current again) | rewritten / '
          'current | control / current |')
    print('|---|---|---|---|---|---|')
    for result in results:
        times = result.get('ms') or {}
        if 'rewritten/current' in times:
            print(f'| {result["label"]} | {times["current"]:.1f} | {times["rewritten"]:.1f} | '
                  f'{times[CONTROL]:.1f} | {times["rewritten/current"]:.3f} | '
                  f'{times[CONTROL + "/current"]:.3f} |')
        elif 'rewritten' in times:
            print(f'| {result["label"]} | fails | {times["rewritten"]:.1f} | | | |')


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == '--worker':
        print(json.dumps(run_worker(json.loads(sys.argv[2]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--current', default=os.path.join(MODEL_DIR, 'enet-synth.onnx'))
    parser.add_argument('--rewritten', default='',
                        help='the rewritten form (default: rewrite --current now)')
    parser.add_argument('--python', action='append', default=[],
                        help='another interpreter (with NumPy and OpenCV) whose OpenCV DNN runs '
                             'both forms through seg_ros')
    parser.add_argument('--frames', type=int, default=6, help='synthetic scenes')
    parser.add_argument('--sizes', default='512x256,1024x512',
                        help='network sizes; the first is timed')
    parser.add_argument('--runs', type=int, default=25, help='timed runs of each form')
    parser.add_argument('--threads', type=int, default=1, help='inference threads')
    parser.add_argument('--images', default=IMAGES)
    args = parser.parse_args()
    sizes = [[int(value) for value in size.split('x')] for size in args.sizes.split(',')]
    with tempfile.TemporaryDirectory(prefix='seg_ros_compat_') as folder:
        models = place_forms(os.path.abspath(args.current), args.rewritten, folder)
        frames = make_frames(args.frames, args.images)
        np.savez(os.path.join(folder, 'frames.npz'), **frames)
        jobs = [(backend, sys.executable) for backend in backends_here()]
        jobs += [('opencv', python) for python in args.python]
        results = []
        for index, (backend, python) in enumerate(jobs):
            print(f'running {backend} in {python} ...', file=sys.stderr)
            request = {'backend': backend, 'models': models, 'sizes': sizes, 'runs': args.runs,
                       'threads': args.threads, 'frames': os.path.join(folder, 'frames.npz'),
                       'maps': os.path.join(folder, f'maps{index}.npz')}
            result = spawn(python, request, args.threads)
            result['label'] = f'{backend} {result["version"]}'
            if python != sys.executable:
                result['label'] += f' (Python {result.get("python", "?")})'
            results.append(result)
        report(results, [f'{width}x{height}' for width, height in sizes], list(frames),
               args.runs, args.threads)
    return 0


if __name__ == '__main__':
    sys.exit(main())
