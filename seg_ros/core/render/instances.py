"""Drawing instances on an image: each in its own colour, filled, outlined and labelled."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from seg_ros.core.decode.instances import class_name, equal_mask, Instances

FONT = cv2.FONT_HERSHEY_SIMPLEX
# Hue steps of the golden ratio keep neighbouring ids far apart on the colour wheel.
_GOLDEN = 0.6180339887498949


def instance_colors(ids: np.ndarray, encoding: str = 'rgb8') -> np.ndarray:
    """
    Return one distinct, stable colour per instance id.

    :param ids: (N,) instance ids.
    :param encoding: ``'rgb8'`` or ``'bgr8'`` channel order of the result.
    :return: (N, 3) uint8.
    """
    ids = np.asarray(ids, np.float64).reshape(-1)
    if ids.size == 0:
        # cv2.cvtColor refuses an empty image: a frame without detections has no colours.
        return np.empty((0, 3), np.uint8)
    hues = ((ids * _GOLDEN) % 1.0 * 180).astype(np.uint8)
    hsv = np.stack((hues, np.full_like(hues, 220), np.full_like(hues, 255)), axis=-1)
    code = cv2.COLOR_HSV2RGB if encoding == 'rgb8' else cv2.COLOR_HSV2BGR
    return cv2.cvtColor(hsv.reshape(-1, 1, 3), code).reshape(-1, 3)


def draw_instances(image: np.ndarray, instances: Instances, instance_map: np.ndarray,
                   class_names: Sequence[str], *, encoding: str = 'rgb8', fill_alpha: float = 0.5,
                   thickness: int = 2, labels: bool = True) -> np.ndarray:
    """
    Draw instances in place: fill (``fill_alpha`` > 0), outline and ``name score`` label.

    The visible part of each instance is where ``instance_map`` holds its id, so overlaps are
    drawn as the map resolves them. Only each instance's box region is touched.

    :param image: (H, W, 3) uint8 in ``encoding`` order, drawn on.
    :param instances: the instances of this frame.
    :param instance_map: their (H, W) uint16 map (:meth:`Instances.instance_map`).
    :param class_names: names by class id, for the labels.
    :param encoding: ``'rgb8'`` or ``'bgr8'``.
    :param fill_alpha: weight of the instance colour inside its mask; 0 outlines only.
    :param thickness: outline width in pixels.
    :param labels: write the class name and score above each box.
    :return: ``image``.
    """
    if image.shape[:2] != instance_map.shape or image.ndim != 3 or image.dtype != np.uint8:
        raise ValueError(f'image {image.shape} {image.dtype} must be (H, W, 3) uint8 of the '
                         f'instance map size {instance_map.shape}')
    colors = instance_colors(instances.ids, encoding)
    for index, (u0, v0, u1, v1) in enumerate(instances.regions()):
        color = tuple(int(c) for c in colors[index])
        visible = equal_mask(instance_map[v0:v1, u0:u1], int(instances.ids[index]))
        patch = image[v0:v1, u0:u1]
        if fill_alpha > 0 and patch.size:
            tint = np.empty_like(patch)
            # A filled rectangle paints 3 channels far faster than NumPy broadcasting does.
            cv2.rectangle(tint, (0, 0), (tint.shape[1], tint.shape[0]), color, cv2.FILLED)
            blended = cv2.addWeighted(patch, 1.0 - fill_alpha, tint, fill_alpha, 0.0)
            cv2.copyTo(blended, visible, patch)  # in place: patch is a view of image
        contours, _ = cv2.findContours(visible, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE,
                                       offset=(u0, v0))
        cv2.drawContours(image, contours, -1, color, thickness, cv2.LINE_8)
        if labels:
            text = (f'{class_name(class_names, int(instances.class_id[index]))} '
                    f'{float(instances.score[index]):.2f}')
            _label(image, text, u0, v0, color)
    return image


def _label(image: np.ndarray, text: str, left: int, top: int, color: tuple[int, ...]) -> None:
    """Write ``text`` on a filled box of ``color`` above (or inside) the point."""
    scale = max(0.4, image.shape[0] / 1500)
    (text_w, text_h), baseline = cv2.getTextSize(text, FONT, scale, 1)
    bottom = top if top - text_h - baseline >= 0 else top + text_h + baseline
    left = min(left, max(image.shape[1] - text_w, 0))
    cv2.rectangle(image, (left, bottom - text_h - baseline), (left + text_w, bottom), color,
                  cv2.FILLED)
    ink = (0, 0, 0) if sum(color) > 380 else (255, 255, 255)
    cv2.putText(image, text, (left, bottom - baseline), FONT, scale, ink, 1, cv2.LINE_AA)
