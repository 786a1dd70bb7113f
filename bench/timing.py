"""Helpers the offline benchmarks share: a median timer and the embedded model's segmenter."""

import statistics
import time

from seg_ros.core.segmenter import Segmenter, SegmenterConfig
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
