"""
Cost of HuggingFace-exact pre- and post-processing against seg_ros's fast path, at 720p.

A HuggingFace-described model (a ``preprocessor_config.json``) is resized with Pillow
(``resize: pil``, antialiased) and post-processed at frame size (``postprocess: logits``: the
scores resized bilinearly to the frame, then the argmax); the fast path resizes with OpenCV and
upsamples the class map. This prints the median milliseconds per 1280x720 frame of each step,
for a SegFormer-like model: 384x384 input (``size`` of the config), scores at 1/4 of it
(96x96), 19 (Cityscapes) and 150 (ADE20k) classes. The network itself is not run: its cost is
the same on both paths. Frames are the photos in ``../shared/images`` resized to 1280x720
(a synthetic street scene where they are absent); scores are smooth random planes, with class
regions about 1/12 of the frame across (many boundaries) or 1/4 (large regions: the exact path
then interpolates only the pixels near a boundary).

Usage::

    .venv/bin/python bench/hf_exact_bench.py [--rounds 20]
"""

import argparse
import glob
import os
import statistics
import time

import cv2
import numpy as np

from seg_ros.core.decode.semantic import decode, decode_to_frame, resize_class_map
from seg_ros.core.model.description import ModelDescription
from seg_ros.core.model.preprocess import prepare_input
from seg_ros.data import synthetic

WIDTH, HEIGHT, INPUT = 1280, 720, 384
IMAGES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared',
                      'images')


def frames() -> list[np.ndarray]:
    """Return 1280x720 BGR frames: the photos, or one synthetic scene."""
    found = [cv2.imread(path) for path in sorted(glob.glob(os.path.join(IMAGES, '*.jpg')))]
    found = [frame for frame in found if frame is not None]
    if not found:
        found = [synthetic.render_scene(np.random.default_rng(0), WIDTH, HEIGHT)[0]]
    return [cv2.resize(frame, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA) for frame in found]


def smooth_scores(classes: int, regions: int, seed: int) -> dict[str, np.ndarray]:
    """Return a (1, classes, 96, 96) float32 ``logits`` output, ``regions`` blobs across."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(0, 1, (classes, regions, regions)).astype(np.float32)
    planes = np.stack([cv2.resize(plane, (INPUT // 4, INPUT // 4)) for plane in coarse])
    return {'logits': planes[np.newaxis]}


def median_ms(step, rounds: int) -> float:
    """Return the median wall time of ``step()`` over ``rounds`` runs, after one warm-up."""
    step()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        step()
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


def main() -> None:
    """Time each step and print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=20)
    args = parser.parse_args()
    base = ModelDescription.preset('imagenet', input_width=INPUT, input_height=INPUT,
                                   input_layout='NCHW', output_name='logits',
                                   output_layout='NCHW')
    fast = base.replaced(resize='opencv', postprocess='class_map')
    exact = base.replaced(resize='pil', resample=2, postprocess='logits')
    frame = frames()[0]
    rows = []
    for name, description in (('fast (opencv)', fast), ('HF-exact (pil)', exact)):
        rows.append((f'pre-processing, {name}', median_ms(
            lambda d=description: prepare_input(frame, 'bgr8', d), args.rounds)))
    for classes in (19, 150):
        for regions, label in ((12, 'fine regions'), (4, 'large regions')):
            outputs = smooth_scores(classes, regions, classes)
            case = f'post-processing, {classes} classes, {label}'
            rows.append((f'{case}, fast (argmax at 384, nearest)', median_ms(
                lambda o=outputs: resize_class_map(decode(o, fast), WIDTH, HEIGHT),
                args.rounds)))
            rows.append((f'{case}, HF-exact (logits to 720p)', median_ms(
                lambda o=outputs: decode_to_frame(o, exact, WIDTH, HEIGHT), args.rounds)))
    print(f'HF-exact vs fast pre/post-processing, {WIDTH}x{HEIGHT} frame, {INPUT}x{INPUT} '
          f'input, median of {args.rounds} rounds (ms per frame)\n')
    print('| step | ms |\n|---|---|')
    for label, value in rows:
        print(f'| {label} | {value:.1f} |')


if __name__ == '__main__':
    main()
