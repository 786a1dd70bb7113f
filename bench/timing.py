"""Helpers the offline benchmarks share: a median timer and the embedded model's segmenter."""

import argparse
import statistics
import time

import numpy as np

from seg_ros.core.segmenter import Segmenter, SegmenterConfig
from seg_ros.data import synthetic
from seg_ros.paths import default_label_paths, embedded_model_path


def median_ms(function, rounds: int) -> tuple[float, object]:
    """
    Call ``function`` ``rounds`` times; return the median milliseconds and the last result.

    :param function: no arguments.
    :param rounds: calls, at least 1.
    """
    times, result = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        result = function()
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times), result


def embedded_segmenter() -> Segmenter:
    """Return the Segmenter of the embedded ENet with its labels, on the best backend."""
    model = embedded_model_path()
    classes, colors = default_label_paths(model)
    return Segmenter(SegmenterConfig(model, classes_path=classes, colors_path=colors))


def frame_time_setup(description: str, width: int, height: int):
    """
    Parse ``--rounds`` (30), time ``Segmenter.run`` of the embedded ENet on a synthetic frame.

    What a benchmark that compares a step with the frame time starts with.

    :param description: the script's one-line description, for ``--help``.
    :return: (arguments, segmenter, frame median milliseconds, the frame's result).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--rounds', type=int, default=30)
    arguments = parser.parse_args()
    frame, _ = synthetic.render_scene(np.random.default_rng(2), width, height)
    segmenter = embedded_segmenter()
    frame_ms, result = median_ms(lambda: segmenter.run(frame, encoding='bgr8'),
                                 arguments.rounds)
    return arguments, segmenter, frame_ms, result
