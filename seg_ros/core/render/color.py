"""Colour mask and overlay from a class map."""

from __future__ import annotations

import cv2
import numpy as np

ENCODINGS = ('rgb8', 'bgr8')


def color_lut(colors_rgb: np.ndarray, encoding: str) -> np.ndarray:
    """
    Build the lookup table that :func:`colorize` uses.

    :param colors_rgb: (N, 3) uint8 RGB colour per class id, N <= 256.
    :param encoding: channel order of the masks to produce, ``'rgb8'`` or ``'bgr8'``.
    :return: (256, 3) uint8 table in ``encoding`` order; ids with no colour map to black.
    :raises ValueError: bad encoding or colour array.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f'encoding must be one of {ENCODINGS}, got {encoding!r}')
    colors = np.asarray(colors_rgb)
    if colors.dtype != np.uint8 or colors.ndim != 2 or colors.shape[1] != 3 \
            or not 1 <= len(colors) <= 256:
        raise ValueError(f'colors_rgb must be (N, 3) uint8 with N <= 256, got '
                         f'{colors.shape} {colors.dtype}')
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[:len(colors)] = colors if encoding == 'rgb8' else colors[:, ::-1]
    return lut


def colorize(class_map: np.ndarray, lut: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """
    Paint each pixel with the colour of its class.

    :param class_map: (H, W) uint8 class ids.
    :param lut: table from :func:`color_lut`.
    :param out: optional (H, W, 3) uint8 array to write into.
    :return: (H, W, 3) uint8 colour mask (``out`` when given).
    """
    if class_map.dtype != np.uint8 or class_map.ndim != 2:
        raise ValueError(f'class_map must be (H, W) uint8, got {class_map.shape} '
                         f'{class_map.dtype}')
    # cv2.LUT maps a 3-channel image through a 3-channel table; it is faster than NumPy indexing.
    return cv2.LUT(cv2.merge((class_map, class_map, class_map)), lut.reshape(256, 1, 3), dst=out)


def blend(image: np.ndarray, mask: np.ndarray, alpha: float,
          out: np.ndarray | None = None) -> np.ndarray:
    """
    Overlay a colour mask on an image: ``(1 - alpha) * image + alpha * mask``, rounded.

    :param image: (H, W, 3) uint8.
    :param mask: (H, W, 3) uint8, same channel order as ``image``.
    :param alpha: mask weight, 0 to 1.
    :param out: optional (H, W, 3) uint8 array to write into.
    :return: (H, W, 3) uint8 overlay (``out`` when given).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f'alpha must be between 0 and 1, got {alpha}')
    if image.shape != mask.shape or image.dtype != np.uint8 or mask.dtype != np.uint8:
        raise ValueError(f'image {image.shape} {image.dtype} and mask {mask.shape} {mask.dtype} '
                         'must be uint8 of the same shape')
    return cv2.addWeighted(image, 1.0 - alpha, mask, alpha, 0.0, dst=out)
