"""
The classic ENet tutorial pipeline (OpenCV DNN, NumPy post-processing): the benchmark's baseline.

It is the per-frame work of the well-known blog tutorial that runs the e-Lab Torch7 ENet with
``cv2.dnn``: a 1/255-scaled RGB blob at the network size, ``forward``, an ``argmax`` over the
class axis in NumPy, palette indexing, a nearest-neighbour resize of the mask to the frame and a
60/40 float blend. Each step is timed on its own so the table can show forward vs the rest.
"""

import time

import cv2
import numpy as np


def read_tutorial_colors(path: str) -> np.ndarray:
    """
    Read one ``R,G,B`` line a class as the tutorial does: used as-is, i.e. as BGR.

    :param path: the ``enet-colors.txt`` file.
    :return: (N, 3) uint8 palette.
    """
    with open(path, encoding='utf-8') as text_file:
        rows = [[int(value) for value in line.split(',')]
                for line in text_file.read().split() if line]
    return np.array(rows, dtype=np.uint8)


def fixed_palette(count: int) -> np.ndarray:
    """
    Return ``count`` distinct-looking colours, for models without a colour file.

    :param count: number of classes.
    :return: (count, 3) uint8 palette.
    """
    return np.random.default_rng(42).integers(0, 256, (count, 3), dtype=np.uint8)


class ClassicPipeline:
    """Run the tutorial's per-frame steps on a BGR frame and time forward against the rest."""

    def __init__(self, model_path: str, colors: np.ndarray, width: int, height: int) -> None:
        """
        Load the network with ``cv2.dnn.readNet``.

        :param model_path: a model cv2.dnn reads that outputs (1, C, H, W) scores.
        :param colors: (C, 3) uint8 palette, used as BGR.
        :param width: network input width.
        :param height: network input height.
        """
        self._net = cv2.dnn.readNet(model_path)
        self._colors = colors
        self._size = (width, height)

    def run(self, frame: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """
        Segment one frame the tutorial's way.

        :param frame: (H, W, 3) uint8 BGR.
        :return: (overlay, timings in ms: total, network, blob, argmax, render).
        """
        start = time.perf_counter()
        blob = cv2.dnn.blobFromImage(frame, 1 / 255.0, self._size, 0, swapRB=True, crop=False)
        self._net.setInput(blob)
        blob_done = time.perf_counter()
        scores = self._net.forward()
        forward_done = time.perf_counter()
        class_map = np.argmax(scores[0], 0)
        argmax_done = time.perf_counter()
        mask = self._colors[class_map]
        mask = cv2.resize(mask, (frame.shape[1], frame.shape[0]),
                          interpolation=cv2.INTER_NEAREST)
        overlay = ((0.4 * frame) + (0.6 * mask)).astype('uint8')
        end = time.perf_counter()
        timings = {
            'total': 1e3 * (end - start),
            'network': 1e3 * (forward_done - blob_done),
            'blob': 1e3 * (blob_done - start),
            'argmax': 1e3 * (argmax_done - forward_done),
            'render': 1e3 * (end - argmax_done),
        }
        return overlay, timings
