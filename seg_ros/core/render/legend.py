"""A legend panel (class colours and names) to put beside an overlay."""

import cv2
import numpy as np

from seg_ros.core.model.labels import Labels

ROW_HEIGHT = 22
PANEL_WIDTH = 190


def legend_panel(labels: Labels, height: int, class_ids: list[int] | None = None,
                 encoding: str = 'bgr8') -> np.ndarray:
    """
    Draw a legend: one colour swatch and name per class, top to bottom.

    :param labels: class names and colours.
    :param height: panel height in pixels (rows that do not fit are left out, with a note).
    :param class_ids: the classes to list (e.g. those present in the frame); all when None.
    :param encoding: 'bgr8' or 'rgb8', the channel order of the returned panel.
    :return: (height, PANEL_WIDTH, 3) uint8 image.
    """
    if encoding not in ('bgr8', 'rgb8'):
        raise ValueError(f"encoding={encoding!r} must be 'bgr8' or 'rgb8'")
    ids = list(range(len(labels.names))) if class_ids is None else list(class_ids)
    panel = np.full((height, PANEL_WIDTH, 3), 32, np.uint8)
    fits = max(0, (height - 8) // ROW_HEIGHT)
    shown = ids if len(ids) <= fits else ids[:max(fits - 1, 0)]
    for row, class_id in enumerate(shown):
        top = 6 + row * ROW_HEIGHT
        red, green, blue = (int(value) for value in labels.colors_rgb[class_id])
        cv2.rectangle(panel, (8, top), (30, top + ROW_HEIGHT - 6), (blue, green, red), -1)
        cv2.rectangle(panel, (8, top), (30, top + ROW_HEIGHT - 6), (200, 200, 200), 1)
        cv2.putText(panel, labels.names[class_id], (38, top + ROW_HEIGHT - 9),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (235, 235, 235), 1, cv2.LINE_AA)
    if len(shown) < len(ids):
        cv2.putText(panel, f'+{len(ids) - len(shown)} more', (8, 6 + len(shown) * ROW_HEIGHT + 14),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (235, 235, 235), 1, cv2.LINE_AA)
    return panel if encoding == 'bgr8' else np.ascontiguousarray(panel[:, :, ::-1])


def with_legend(image: np.ndarray, labels: Labels, class_map: np.ndarray,
                encoding: str = 'bgr8') -> np.ndarray:
    """Return ``image`` with a legend of the classes present in ``class_map`` on its right."""
    present = np.flatnonzero(np.bincount(class_map.ravel(), minlength=len(labels.names)))
    panel = legend_panel(labels, image.shape[0], [int(c) for c in present], encoding)
    return np.hstack([image, panel])
