"""
Cost and size of the node's compressed outputs at 1280x720, against the raw topics.

Segments street photos (``--images``, default ``../shared/images``) resized to 1280x720 with
the real ENet when ``--enet`` is given (default: ``../shared/models/enet-cityscapes/
enet-model.net`` where it exists), else with the embedded model, then times the encoding the
node does for ``~/overlay/compressed`` and ``~/color_mask/compressed`` (JPEG) and
``~/class_map/compressed`` (PNG) with ``seg_ros.ros.compressed.encode`` (median of
``--repeat`` runs a frame, CPU time of this thread), and the decoding of a 720p camera JPEG
(``input_transport: compressed``).

Usage: ``.venv/bin/python bench/compressed_outputs.py [--jpeg-quality 80] [--png-level 1]``.
"""

import argparse
import glob
import os
import statistics
import time

import cv2
import numpy as np

from seg_ros.core.segmenter import Segmenter, SegmenterConfig
from seg_ros.paths import default_label_paths, embedded_model_path
from seg_ros.ros import compressed

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO_ROOT), 'shared')
WIDTH, HEIGHT = 1280, 720


def cpu_ms(function, repeat: int) -> float:
    """Return the median thread CPU time of ``function()`` in milliseconds."""
    times = []
    for _ in range(repeat):
        started = time.thread_time()
        function()
        times.append((time.thread_time() - started) * 1e3)
    return statistics.median(times)


def main() -> None:
    """Segment the photos, encode every output, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--images', default=os.path.join(SHARED, 'images'))
    default_enet = os.path.join(SHARED, 'models', 'enet-cityscapes', 'enet-model.net')
    parser.add_argument('--enet', default=default_enet if os.path.isfile(default_enet) else '')
    parser.add_argument('--jpeg-quality', type=int, default=80)
    parser.add_argument('--png-level', type=int, default=1)
    parser.add_argument('--repeat', type=int, default=15)
    arguments = parser.parse_args()
    cv2.setNumThreads(1)  # what one encoder thread gets; also makes CPU time = wall time

    model = arguments.enet or embedded_model_path()
    classes, colors = default_label_paths(model)
    segmenter = Segmenter(SegmenterConfig(model_path=model, input_width=1024, input_height=512,
                                          classes_path=classes, colors_path=colors))
    photos = sorted(glob.glob(os.path.join(arguments.images, '*.jpg')))
    if not photos:
        raise SystemExit(f'no *.jpg in {arguments.images}')
    rows = {}
    for photo in photos:
        frame = cv2.resize(cv2.imread(photo), (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        result = segmenter.run(rgb, encoding='rgb8')
        outputs = {'overlay': (result.overlay, 'rgb8', 'jpeg'),
                   'color_mask': (result.color_mask, 'rgb8', 'jpeg'),
                   'class_map': (result.class_map_full, 'mono8', 'png')}
        for name, (pixels, encoding, codec) in outputs.items():
            def encode(pixels=pixels, encoding=encoding, codec=codec):
                return compressed.encode(pixels, encoding, codec,
                                         jpeg_quality=arguments.jpeg_quality,
                                         png_level=arguments.png_level)
            _, data = encode()
            rows.setdefault(name, []).append(
                (cpu_ms(encode, arguments.repeat), len(data), pixels.nbytes, codec))
        ok, camera_jpeg = cv2.imencode('.jpg', frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        rows.setdefault('camera input (decode)', []).append(
            (cpu_ms(lambda: compressed.decode(camera_jpeg, 'bgr8; jpeg compressed bgr8'),
                    arguments.repeat), camera_jpeg.size, frame.nbytes, 'jpeg q90'))

    print(f'model {model}; {len(photos)} photos at {WIDTH}x{HEIGHT}; jpeg_quality '
          f'{arguments.jpeg_quality}, png_level {arguments.png_level}; OpenCV {cv2.__version__}, '
          f'1 thread; median of {arguments.repeat} a photo, then mean over the photos')
    print('| topic | codec | encode ms (CPU) | bytes a frame | raw bytes | ratio |')
    print('|---|---|---:|---:|---:|---:|')
    for name, entries in rows.items():
        milliseconds = np.mean([entry[0] for entry in entries])
        size = np.mean([entry[1] for entry in entries])
        raw = entries[0][2]
        topic = name if name.startswith('camera') else f'~/{name}/compressed'
        print(f'| {topic} | {entries[0][3]} | {milliseconds:.1f} | {size:,.0f} | {raw:,} | '
              f'{raw / size:.0f}x |')


if __name__ == '__main__':
    main()
