"""
The letterbox of instance models: the frame scaled into the input, aspect kept, grey padding.

As ultralytics' ``LetterBox`` (centre, ``auto=False``): :class:`Letterbox` gives the scaled
size and the padding, puts a frame into it and maps boxes and the prototype grid back to the
frame; :func:`letterbox_blob` makes the network's blob of a letterboxed frame.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import cv2
import numpy as np

LETTERBOX_PAD = 114


@dataclass(frozen=True)
class MaskUpsampling:
    """
    Prototype-grid logits to frame size: enlarged ``factor`` times, then the frame's part cut.

    The part ``[top:bottom, left:right]`` of the enlarged grid is then resized bilinearly to the
    frame (see :meth:`Letterbox.mask_upsampling`).
    """

    factor: int
    left: int
    top: int
    right: int
    bottom: int


@dataclass(frozen=True)
class Letterbox:
    """
    A frame resized into the network input keeping its aspect ratio, centred, padded.

    Network coordinate ``x_in = x * scale_x + left`` for a frame coordinate ``x`` (pixel edges).
    """

    frame_width: int
    frame_height: int
    input_width: int
    input_height: int
    resized_width: int
    resized_height: int
    left: int
    top: int

    @classmethod
    def fit(cls, frame_width: int, frame_height: int, input_width: int,
            input_height: int) -> Letterbox:
        """Return the letterbox of a frame into an input (ultralytics' rounding)."""
        ratio = min(input_width / frame_width, input_height / frame_height)
        resized_width = min(max(int(round(frame_width * ratio)), 1), input_width)
        resized_height = min(max(int(round(frame_height * ratio)), 1), input_height)
        left = int(round((input_width - resized_width) / 2 - 0.1))
        top = int(round((input_height - resized_height) / 2 - 0.1))
        return cls(frame_width, frame_height, input_width, input_height, resized_width,
                   resized_height, max(left, 0), max(top, 0))

    @property
    def scale_x(self) -> float:
        """Return network pixels per frame pixel, horizontally."""
        return self.resized_width / self.frame_width

    @property
    def scale_y(self) -> float:
        """Return network pixels per frame pixel, vertically."""
        return self.resized_height / self.frame_height

    def apply(self, frame: np.ndarray, pad: int = LETTERBOX_PAD) -> np.ndarray:
        """Return the (input_height, input_width, channels) letterboxed frame."""
        resized = frame
        if (frame.shape[1], frame.shape[0]) != (self.resized_width, self.resized_height):
            resized = cv2.resize(frame, (self.resized_width, self.resized_height),
                                 interpolation=cv2.INTER_LINEAR)
        bottom = self.input_height - self.resized_height - self.top
        right = self.input_width - self.resized_width - self.left
        return cv2.copyMakeBorder(resized, self.top, bottom, self.left, right,
                                  cv2.BORDER_CONSTANT, value=(pad, pad, pad))

    def boxes_to_frame(self, xyxy: np.ndarray) -> np.ndarray:
        """
        Map (N, 4) network-input boxes to frame pixels, clipped to the frame (float32).

        ``(x - left) / scale_x`` with the letterbox's own rounded size and padding on each axis:
        ultralytics' ``scale_boxes`` (8.4: "LetterBox rounds each side").
        """
        boxes = np.empty((len(xyxy), 4), np.float32)
        boxes[:, 0::2] = (xyxy[:, 0::2] - self.left) / self.scale_x
        boxes[:, 1::2] = (xyxy[:, 1::2] - self.top) / self.scale_y
        np.clip(boxes[:, 0::2], 0, self.frame_width, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, self.frame_height, out=boxes[:, 1::2])
        return boxes

    def mask_upsampling(self, grid_width: int, grid_height: int) -> MaskUpsampling:
        """
        Return how a prototype grid becomes frame-size masks: ultralytics' ``process_mask_native``.

        The grid (1/4 of the input) is first enlarged ``factor`` times (1, 2 or 4, the smallest
        on which the letterbox padding is whole cells), then the frame's part of it is cut out
        with ``scale_masks``' rounding: ``top = round(pad - 0.1)``, ``bottom = top +
        round(frame height x gain)``.
        """
        gain = min(4 * grid_height / self.frame_height, 4 * grid_width / self.frame_width)
        padding = (4 * grid_height - max(round(self.frame_height * gain), 1)) \
            | (4 * grid_width - max(round(self.frame_width * gain), 1))
        factor = 4 // math.gcd(4, padding | padding // 2)
        height, width = grid_height * factor, grid_width * factor
        gain = min(height / self.frame_height, width / self.frame_width)
        content_height = max(round(self.frame_height * gain), 1)
        content_width = max(round(self.frame_width * gain), 1)
        top = round((height - content_height) / 2 - 0.1)
        left = round((width - content_width) / 2 - 0.1)
        return MaskUpsampling(factor, left, top, left + content_width, top + content_height)

    def grid_mapping(self, grid_width: int) -> tuple[float, float, float, float]:
        """
        Return ``(a_x, b_x, a_y, b_y)``: frame pixel (u, v) samples a grid at (a_x u + b_x, ...).

        The grid covers the network input with ``grid_width`` cells across (prototypes: 1/4 of
        the input, Mask R-CNN masks: the input itself); pixel centres map to pixel centres.
        """
        cell = self.input_width / grid_width
        a_x, a_y = self.scale_x / cell, self.scale_y / cell
        return (a_x, (0.5 * self.scale_x + self.left) / cell - 0.5,
                a_y, (0.5 * self.scale_y + self.top) / cell - 0.5)


def letterbox_blob(frame: np.ndarray, encoding: str, letterbox: Letterbox) -> np.ndarray:
    """
    Return the (1, 3, H, W) float32 RGB network input, 0-1, of a BGR, RGB or grey frame.

    :param frame: (h, w, 3) uint8 in ``encoding`` order or (h, w) grey.
    :param encoding: ``'bgr8'`` or ``'rgb8'`` (ignored for grey frames).
    :param letterbox: from :meth:`Letterbox.fit` for this frame size.
    """
    image = letterbox.apply(frame)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        encoding = 'rgb8'
    blob = cv2.dnn.blobFromImage(image, 1.0, swapRB=encoding != 'rgb8')
    blob /= 255  # divided in float32, bit for bit ultralytics' input
    return blob


# --------------------------------------------------------------------------------------------
# Shared steps
