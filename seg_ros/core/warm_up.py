"""
The warm-up frame: a fixed street-like picture on which a new network runs first.

Loading runs it once on every backend it opens (first runs allocate and compile) and compares
backends on it: a conversion against the original, OpenCV DNN against ONNX Runtime or
OpenVINO, ``precision='fast'`` against float32. A flat grey frame would make those comparisons
meaningless (every pixel the same class), so the frame has what a street camera sees: a sky
gradient, facades with windows, a road with markings, sidewalks, trees, cars, texture and noise.
It is drawn in relative coordinates, so every size shows the same scene.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

WARM_UP_SEED = 2024
# Facade colours (B, G, R) from left to right.
_FACADES = ((150, 170, 190), (70, 90, 150), (190, 200, 205), (100, 130, 170), (90, 100, 95),
            (175, 190, 215))
_CARS = ((40, 40, 170), (235, 235, 235), (25, 25, 28), (140, 70, 30))


def _polygon(image: np.ndarray, points: list[tuple[float, float]], color: tuple) -> None:
    height, width = image.shape[:2]
    pixels = np.array([(x * width, y * height) for x, y in points], np.float64)
    cv2.fillPoly(image, [np.rint(pixels).astype(np.int32)], color, cv2.LINE_AA)


def _box(image: np.ndarray, left: float, top: float, right: float, bottom: float,
         color: tuple) -> None:
    _polygon(image, [(left, top), (right, top), (right, bottom), (left, bottom)], color)


@functools.cache
def warm_up_frame(width: int, height: int) -> np.ndarray:
    """
    Return the warm-up street scene, BGR uint8 ``(height, width, 3)``, read-only.

    The same (width, height) always gives the same pixels (seeded noise, no other input).
    """
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    sky = np.array((200, 140, 80), np.float32) * (1 - rows) + np.array((235, 215, 195)) * rows
    frame = np.ascontiguousarray(np.broadcast_to(sky[:, None, :], (height, width, 3))
                                 .astype(np.uint8))
    horizon = 0.45
    _box(frame, 0.0, 0.12, 0.06, horizon + 0.05, (120, 120, 125))
    for index, color in enumerate(_FACADES):
        left = 0.02 + 0.16 * index
        top = 0.08 + 0.1 * (index % 3)
        _box(frame, left, top, left + 0.15, horizon, color)
        for row in np.arange(top + 0.04, horizon - 0.06, 0.07):
            for column in np.arange(left + 0.02, left + 0.13, 0.04):
                _box(frame, column, row, column + 0.02, row + 0.035, (90, 75, 60))
    _polygon(frame, [(0.0, horizon), (1.0, horizon), (1.0, 1.0), (0.0, 1.0)], (152, 168, 150))
    _polygon(frame, [(0.42, horizon), (0.58, horizon), (1.0, 0.8), (1.0, 1.0), (0.0, 1.0),
                     (0.0, 0.8)], (185, 180, 175))
    _polygon(frame, [(0.45, horizon), (0.55, horizon), (0.95, 1.0), (0.05, 1.0)], (95, 95, 100))
    for start in np.arange(0.5, 1.0, 0.12):
        _polygon(frame, [(0.498, start), (0.502, start), (0.505, start + 0.06),
                         (0.495, start + 0.06)], (225, 225, 225))
    for centre, radius in ((0.08, 0.09), (0.9, 0.1), (0.75, 0.06)):
        cv2.circle(frame, (int(centre * width), int(0.3 * height)),
                   max(1, int(radius * min(width, 2 * height))), (40, 110, 60), -1, cv2.LINE_AA)
        _box(frame, centre - 0.005, 0.3, centre + 0.005, horizon + 0.04, (30, 50, 70))
    for index, color in enumerate(_CARS):
        left, top = 0.3 + 0.1 * index, 0.5 + 0.06 * (index % 2)
        _box(frame, left, top, left + 0.08, top + 0.09, color)
        _box(frame, left + 0.01, top + 0.01, left + 0.07, top + 0.035, (55, 45, 40))
    rng = np.random.default_rng(WARM_UP_SEED)
    noisy = frame + rng.normal(0.0, 6.0, frame.shape)
    frame = cv2.GaussianBlur(np.clip(noisy, 0, 255).astype(np.uint8), (3, 3), 0)
    frame.setflags(write=False)
    return frame
