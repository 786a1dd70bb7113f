"""
Per model family x exporter x backend: does it load, does it agree with the reference, how fast.

The families and exports of ``test/architectures.py`` (small random-weight torchvision
FCN-ResNet50, DeepLabV3-MobileNetV3, LR-ASPP-MobileNetV3, a SegFormer-B0-like network; torch's
dynamo exporter with external data and the ``dynamo=False`` one), cached like the tests cache
them. "agrees" counts the pixels whose class differs from onnxruntime + NumPy
(``architectures.reference_scores``), and how many of those are not near-ties (two best
reference scores within 1e-3). "ms" is the median of ``Backend.infer`` over ``--frames``
frames (pre-processing, network, upsampling, argmax) at ``--size``.

Run::

    .venv/bin/python bench/model_families.py [--size 256x192] [--frames 10]
"""

import argparse
import importlib
import os
import statistics
import sys
import time

import numpy as np

from seg_ros.core.backends import available_backends, open_backend
from seg_ros.core.errors import ModelError

# The exports and the reference are the tests' (test/architectures.py, test/models.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test'))
architectures = importlib.import_module('architectures')
ambiguous_pixels = importlib.import_module('models').ambiguous_pixels


def measure(path: str, backend: str, size: tuple[int, int], frames: int) -> list[str]:
    """Return the row's cells: loads, agrees, ms per frame."""
    width, height = size
    try:
        opened = open_backend(path, {'input_width': width, 'input_height': height}, backend,
                              'cpu', preset='imagenet')
    except ModelError as error:
        why = str(error).split(']: ', 1)[-1]  # after 'cannot run <path> at input shape [..]'
        return [f'refused: {why[:100]}', '', '']
    frame = architectures.street_frame(width=2 * width, height=2 * height, seed=1)
    scores = architectures.reference_scores(path, frame, width, height)
    differs = opened.infer(frame) != np.argmax(scores, axis=0)
    unexplained = int((differs & ~ambiguous_pixels(scores, 1e-3)).sum())
    times = []
    for _ in range(frames):
        started = time.perf_counter()
        opened.infer(frame)
        times.append(1e3 * (time.perf_counter() - started))
    return ['yes', f'{int(differs.sum())} of {differs.size} differ, {unexplained} not near-ties',
            f'{statistics.median(times):.1f}']


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--size', default='256x192', help='network input WxH')
    parser.add_argument('--frames', type=int, default=10)
    arguments = parser.parse_args()
    size = tuple(int(value) for value in arguments.size.lower().split('x'))
    backends = [name for name, problem in available_backends().items() if problem is None]
    print(f'input {size[0]}x{size[1]}, {arguments.frames} frames, backends: '
          f'{", ".join(backends)}\n')
    print('| family | exporter | backend | loads | agrees with onnxruntime + NumPy (pixels) '
          '| ms per frame |')
    print('|---|---|---|---|---|---|')
    paths = architectures.export_all()
    for family in architectures.FAMILIES:
        for exporter in architectures.EXPORTERS:
            path = paths[(family, exporter, False)]
            for backend in backends:
                cells = measure(path, backend, size, arguments.frames)
                print(f'| {family} | {exporter} | {backend} | ' + ' | '.join(cells) + ' |',
                      flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
