"""Depth images in their encodings (REP 118) to metres; invalid depth becomes NaN."""

import math

import numpy as np

#: The depth encodings, with their element type and the units in a metre.
DEPTH_ENCODINGS = {'16UC1': (np.dtype(np.uint16), 1000), '32FC1': (np.dtype(np.float32), 1)}


def check_depth_range(depth_range) -> tuple[float, float]:
    """
    Return ``depth_range`` as (min, max) metres.

    :raises ValueError: unless it is two finite numbers with 0 <= min < max.
    """
    values = [float(value) for value in depth_range]
    if len(values) != 2 or not all(map(math.isfinite, values)) or \
            not 0.0 <= values[0] < values[1]:
        raise ValueError(f'depth_range={list(depth_range)!r} must be two numbers, min and max '
                         'metres, 0 <= min < max')
    return values[0], values[1]


def depth_encoding_of(depth: np.ndarray) -> str:
    """
    Return the encoding of a depth array by its element type: uint16 16UC1, float32 32FC1.

    :raises ValueError: for another element type or a shape other than (H, W).
    """
    if depth.ndim != 2:
        raise ValueError(f'a depth image must be (H, W), got shape {depth.shape}')
    for encoding, (dtype, _) in DEPTH_ENCODINGS.items():
        if depth.dtype == dtype:
            return encoding
    raise ValueError(f'depth element type {depth.dtype} is not uint16 (16UC1, millimetres) or '
                     'float32 (32FC1, metres)')


def depth_to_metres(depth: np.ndarray, depth_range: tuple[float, float],
                    encoding: str | None = None) -> np.ndarray:
    """
    Return the depth in metres, float32, NaN where it is invalid.

    Invalid: 0, NaN, infinite, or outside ``depth_range`` (inclusive bounds).

    :param depth: (H, W) uint16 millimetres or float32 metres (any strides).
    :param depth_range: (min, max) metres.
    :param encoding: ``'16UC1'`` or ``'32FC1'``; by default from the element type.
    :raises ValueError: unknown encoding, or an array that does not match it.
    """
    found = depth_encoding_of(depth)
    if encoding is not None and encoding != found:
        if encoding not in DEPTH_ENCODINGS:
            raise ValueError(f'depth encoding {encoding!r} is not one of '
                             f'{", ".join(DEPTH_ENCODINGS)}')
        raise ValueError(f'depth encoding {encoding!r} does not match element type {depth.dtype}')
    low, high = check_depth_range(depth_range)
    units_a_metre = DEPTH_ENCODINGS[found][1]
    metres = depth.astype(np.float32)
    if units_a_metre != 1:
        metres /= np.float32(units_a_metre)  # correctly rounded: 1500 mm is 1.5 m exactly
    with np.errstate(invalid='ignore'):
        # NaN fails both comparisons; 0 fails the first unless the range starts at 0.
        valid = (metres >= low) & (metres <= high) & (metres > 0)
    metres[~valid] = np.nan
    return metres
