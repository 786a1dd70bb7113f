"""
Two forms of one ONNX model on every runtime: identical class maps, and how fast.

Made for the embedded ENet's rewrite (``seg_ros.tools.depth_to_space``: DepthToSpace replaced by
one-hot ConvTranspose nodes so that OpenCV 4.6 reads it), it runs ``--old`` and ``--new`` on the
same network inputs with every runtime it finds: OpenCV DNN, ONNX Runtime and OpenVINO (f32) of
this Python, and OpenCV DNN of each ``--python`` interpreter (e.g. Debian's ``/usr/bin/python3``
with apt's ``python3-opencv`` 4.6, or a Python 3.10 venv with OpenCV 4.5.4, Humble's). Those run
this file as a worker that imports only NumPy and the runtime.

Inputs: ``--frames`` synthetic street scenes (``seg_ros.data.synthetic``, the model's domain) and
the photos of ``--images`` at each ``--sizes``, as the node prepares them (RGB, x/255, NCHW
float32). For each runtime and size it prints the share of pixels whose class (argmax of the
scores) is the same for both forms, whether the scores are bit-identical, and the median
milliseconds of one forward of each form, the two timed alternately on the same inputs. Where
one form cannot be loaded, the other is compared with the old form on the first runtime that
ran it (marked).

Usage::

    git show <commit before the rewrite>:models/enet-synth/enet-synth.onnx > /tmp/old.onnx
    .venv/bin/python bench/model_form_bench.py --old /tmp/old.onnx
        [--new models/enet-synth/enet-synth.onnx] [--python /usr/bin/python3]
        [--frames 40] [--sizes 256x128,512x256,1024x512] [--rounds 3]
"""

import argparse
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
IMAGES = os.path.join(REPO, '..', 'shared', 'images')
SEED = 7100


# ---- worker: NumPy and one runtime only --------------------------------------------------------
def load(runtime: str, path: str, threads: int):
    """Return ``forward(blob) -> scores`` of ``path`` on ``runtime`` with ``threads`` threads."""
    if runtime == 'opencv':
        import cv2

        cv2.setNumThreads(threads)
        nets = {}

        def forward(blob):
            # A fresh Net per input shape: OpenCV DNN keeps the first shape's buffers.
            if blob.shape not in nets:
                nets[blob.shape] = cv2.dnn.readNet(path)
            net = nets[blob.shape]
            net.setInput(blob)
            return net.forward()
        forward(np.zeros((1, 3, 64, 128), np.float32))  # parse errors show here
        return forward
    if runtime == 'onnxruntime':
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        session = onnxruntime.InferenceSession(path, options, providers=['CPUExecutionProvider'])
        name = session.get_inputs()[0].name
        return lambda blob: session.run(None, {name: blob})[0]
    import openvino

    core = openvino.Core()
    core.set_property('CPU', {'INFERENCE_PRECISION_HINT': 'f32', 'INFERENCE_NUM_THREADS': threads})
    model = core.read_model(path)
    compiled = {}

    def forward(blob):
        if blob.shape not in compiled:
            model.reshape({model.inputs[0].any_name: list(blob.shape)})
            compiled[blob.shape] = core.compile_model(model, 'CPU')
        return compiled[blob.shape](blob)[0]
    return forward


def version(runtime: str) -> str:
    module = {'opencv': 'cv2'}.get(runtime, runtime)
    return __import__(module).__version__.split('-')[0]


def short_error(error: Exception) -> str:
    """Return the line of an error that says what failed (OpenCV's nest theirs in '>' lines)."""
    lines = [line.strip().lstrip('>').strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line]
    said = [line for line in lines if 'Node [' in line] or lines or [type(error).__name__]
    text = re.sub(r'OpenCV\([^)]*\)\s*\S+:\d+:\s*error:\s*\([^)]*\)\s*', '', said[-1])
    return text.split(' in function')[0][:200].replace('|', '/')


def run_worker(request: dict) -> dict:
    """Run both forms of the model on every input: class maps, scores' digests, times."""
    blobs = np.load(request['inputs'])
    runtime = request['runtime']
    result = {'runtime': runtime, 'version': version(runtime), 'forms': {}}
    forwards = {}
    for form, path in request['models'].items():
        try:
            forwards[form] = load(runtime, path, request['threads'])
        except Exception as error:  # every runtime raises its own types
            result['forms'][form] = {'error': short_error(error)}
    outputs = {form: {} for form in forwards}
    times = {form: {} for form in forwards}
    for index, key in enumerate(blobs.files):
        blob = blobs[key]
        order = list(forwards) if index % 2 == 0 else list(forwards)[::-1]
        for _ in range(request['rounds']):
            for form in order:
                started = time.perf_counter()
                scores = forwards[form](blob)
                times[form].setdefault(key.split('/')[0], []).append(
                    (time.perf_counter() - started) * 1e3)
        for form in forwards:
            scores = np.asarray(forwards[form](blob))
            outputs[form][key] = scores
    with tempfile.NamedTemporaryFile(suffix='.npz', delete=False,
                                     dir=os.path.dirname(request['inputs'])) as stream:
        result['outputs'] = stream.name
    np.savez_compressed(result['outputs'], **{
        f'{form}|{key}': scores for form, by_key in outputs.items()
        for key, scores in by_key.items()})
    for form in forwards:
        result['forms'][form] = {'ms': {size: statistics.median(values)
                                        for size, values in times[form].items()}}
    return result


# ---- parent: inputs, workers, table ------------------------------------------------------------
def make_inputs(frames: int, sizes: list[tuple[int, int]], images: str) -> dict:
    """Return ``{'WxH/name': blob}``: synthetic scenes and photos, as the node prepares them."""
    import cv2

    from seg_ros.data import synthetic

    photos = [(os.path.basename(path), cv2.imread(path))
              for path in sorted(glob.glob(os.path.join(images, '*.jpg')))]
    blobs = {}
    for width, height in sizes:
        rng = np.random.default_rng(SEED + width)
        scenes = [(f'scene{index}', synthetic.render_scene(rng, width, height)[0])
                  for index in range(frames)]
        for name, image in scenes + [(name, photo) for name, photo in photos
                                     if photo is not None]:
            blobs[f'{width}x{height}/{name}'] = cv2.dnn.blobFromImage(
                image, 1 / 255, (width, height), swapRB=True, crop=False)
    return blobs


def runtimes_here() -> list[str]:
    found = ['opencv']
    for name in ('onnxruntime', 'openvino'):
        try:
            __import__(name)
            found.append(name)
        except ImportError:
            pass
    return found


def spawn(python: str, request: dict) -> dict:
    child = subprocess.run([python, os.path.abspath(__file__), '--worker', json.dumps(request)],
                           capture_output=True, text=True, check=False)
    lines = [line for line in child.stdout.splitlines() if line.startswith('{')]
    if child.returncode or not lines:
        tail = (child.stderr.strip().splitlines() or ['no output'])[-1]
        return {'runtime': request['runtime'], 'version': '?', 'failed': tail, 'forms': {}}
    return json.loads(lines[-1])


def compare(old: dict, new: dict, keys: list[str]) -> tuple[float, bool, int]:
    """Return (percent of identical class-map pixels, all scores bit-identical, pixels)."""
    same = total = 0
    exact = True
    for key in keys:
        first, second = old[key], new[key]
        exact = exact and first.shape == second.shape and np.array_equal(first, second)
        same += int(np.count_nonzero(first.argmax(axis=1) == second.argmax(axis=1)))
        total += first.shape[0] * first.shape[2] * first.shape[3]
    return 100.0 * same / max(total, 1), exact, total


def report(results: list[dict], keys: list[str], pythons: dict[str, str]) -> None:
    outputs = {}
    for result in results:
        if 'outputs' in result:
            with np.load(result['outputs']) as saved:
                for name in saved.files:
                    form, key = name.split('|', 1)
                    outputs.setdefault((result['label'], form), {})[key] = saved[name]
            os.unlink(result['outputs'])
    reference = next((label for label, form in outputs if form == 'old'), None)
    sizes = sorted({key.split('/')[0] for key in keys}, key=lambda s: int(s.split('x')[0]))
    print('| runtime | size | inputs | identical class-map pixels, new vs old | scores '
          'bit-identical | old ms | new ms | new / old |')
    print('|---|---|---|---|---|---|---|---|')
    for result in results:
        label = result['label']
        if 'failed' in result:
            print(f'| {label} | | | worker failed: {result["failed"]} | | | | |')
            continue
        forms = result['forms']
        old_error = forms.get('old', {}).get('error')
        new_error = forms.get('new', {}).get('error')
        for size in sizes:
            size_keys = [key for key in keys if key.startswith(size + '/')]
            old_ms = forms.get('old', {}).get('ms', {}).get(size)
            new_ms = forms.get('new', {}).get('ms', {}).get(size)
            if new_error:
                identity, exact = f'new form fails: {new_error}', ''
            else:
                against = label if not old_error else reference
                mark = '' if not old_error else f' (old on {reference}: old fails here)'
                if against is None:
                    identity, exact = f'old form fails: {old_error}', ''
                else:
                    share, same, _ = compare(outputs[(against, 'old')],
                                             outputs[(label, 'new')], size_keys)
                    identity = f'{share:.4f} %{mark}'
                    exact = ('n/a' if old_error else 'yes') if same or old_error else 'no'
            old_text = f'{old_ms:.1f}' if old_ms else (f'fails: {old_error}' if old_error
                                                       else '')
            new_text = f'{new_ms:.1f}' if new_ms else ''
            ratio = f'{new_ms / old_ms:.3f}' if old_ms and new_ms else ''
            print(f'| {label} | {size} | {len(size_keys)} | {identity} | {exact} | '
                  f'{old_text} | {new_text} | {ratio} |')
    print()
    for label, python in pythons.items():
        print(f'- {label}: {python}')


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == '--worker':
        print(json.dumps(run_worker(json.loads(sys.argv[2]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--old', required=True, help='the model before the rewrite')
    parser.add_argument('--new', default=os.path.join(REPO, 'models', 'enet-synth',
                                                      'enet-synth.onnx'))
    parser.add_argument('--python', action='append', default=[],
                        help='another interpreter whose OpenCV DNN runs both forms')
    parser.add_argument('--frames', type=int, default=40, help='synthetic scenes per size')
    parser.add_argument('--sizes', default='256x128,512x256,1024x512')
    parser.add_argument('--rounds', type=int, default=3, help='timed forwards per input')
    parser.add_argument('--threads', type=int, default=1,
                        help='inference threads of every runtime (1: least disturbed by other '
                             'processes on a shared machine)')
    parser.add_argument('--images', default=IMAGES)
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in size.split('x')) for size in args.sizes.split(',')]
    with tempfile.TemporaryDirectory(prefix='seg_ros_forms_') as folder:
        inputs = os.path.join(folder, 'inputs.npz')
        blobs = make_inputs(args.frames, sizes, args.images)
        np.savez(inputs, **blobs)
        models = {'old': os.path.abspath(args.old), 'new': os.path.abspath(args.new)}
        jobs = [(runtime, sys.executable) for runtime in runtimes_here()]
        jobs += [('opencv', python) for python in args.python]
        results, pythons = [], {}
        for runtime, python in jobs:
            print(f'running {runtime} in {python} ...', file=sys.stderr)
            result = spawn(python, {'inputs': inputs, 'runtime': runtime, 'models': models,
                                    'rounds': args.rounds, 'threads': args.threads})
            result['label'] = f'{runtime} {result["version"]}'
            pythons[result['label']] = python
            results.append(result)
        print(f'{len(blobs)} inputs: {args.frames} synthetic scenes and '
              f'{len(blobs) // len(sizes) - args.frames} photos at each of {args.sizes}; '
              f'median of {args.rounds} timed forwards an input, {args.threads} inference '
              f'thread(s)\n')
        report(results, list(blobs), pythons)
    return 0


if __name__ == '__main__':
    sys.exit(main())
