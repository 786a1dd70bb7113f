"""
Object instances: one frozen set of parallel arrays, the instance map and the JSON form.

An :class:`Instances` holds N objects of one frame, best first: boxes ``xyxy`` in frame pixels
(edges, ``x_max`` exclusive), full-frame boolean ``masks``, ``class_id``, ``score`` and ``ids``
(1..N as decoded). Index it with a boolean or integer array to select some of them (the ids stay
with their objects), as with supervision's ``Detections``. Every mask is zero outside its box's
region (:meth:`Instances.regions`), so per-object work only touches that region.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Any, Sequence

import cv2
import numpy as np

MAX_INSTANCE_ID = np.iinfo(np.uint16).max  # the instance map is mono16


def equal_mask(image: np.ndarray, value: int) -> np.ndarray:
    """
    Return the uint8 mask of ``image == value``: 255 where equal, else 0 (``cv2.compare``).

    ``cv2.compare`` takes a 1x1 image and a Python number for two arrays of different sizes and
    raises: that image (a one-pixel instance's region, a 1x1 frame) is compared with a 1x1
    array of the value instead.
    """
    if image.shape[:2] == (1, 1):
        return cv2.compare(image, np.full((1, 1), value, image.dtype), cv2.CMP_EQ)
    return cv2.compare(image, value, cv2.CMP_EQ)


def pixel_region(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """
    Return the pixels ``(u0, v0, u1, v1)`` (``u1``, ``v1`` exclusive) of a box, rounded.

    A pixel ``u`` belongs to the box ``[x0, x1]`` when ``round(x0) <= u < round(x1)``, halves
    rounded to even (``torch.round``: ultralytics' ``crop_mask``), which is "its centre lies in
    the box" except on exact halves; the region is clipped to the frame and may be empty.

    :param box: ``(x_min, y_min, x_max, y_max)`` in pixel-edge coordinates.
    :param width: frame width.
    :param height: frame height.
    :return: the integer region.
    """
    x0, y0, x1, y1 = (float(value) for value in box)
    u0 = min(max(int(np.rint(x0)), 0), width)
    v0 = min(max(int(np.rint(y0)), 0), height)
    u1 = min(max(int(np.rint(x1)), u0), width)
    v1 = min(max(int(np.rint(y1)), v0), height)
    return u0, v0, u1, v1


def crop_region(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """
    Return the pixels ``(u0, v0, u1, v1)`` whose indices lie in a box: ultralytics' ``crop_mask``.

    A pixel ``u`` belongs to the box ``[x0, x1]`` when ``x0 <= u < x1`` (its corner, not its
    centre), so ``u0 = ceil(x0)``, ``u1 = ceil(x1)``; clipped to the frame, may be empty.
    """
    x0, y0, x1, y1 = (float(value) for value in box)
    u0 = min(max(math.ceil(x0), 0), width)
    v0 = min(max(math.ceil(y0), 0), height)
    u1 = min(max(math.ceil(x1), u0), width)
    v1 = min(max(math.ceil(y1), v0), height)
    return u0, v0, u1, v1


@dataclass(frozen=True)
class Instances:
    """
    N object instances of one frame, as parallel arrays (best first).

    :ivar xyxy: (N, 4) float32 boxes ``x_min, y_min, x_max, y_max`` in frame pixels.
    :ivar masks: (N, H, W) bool masks at frame size, zero outside each box's region.
    :ivar class_id: (N,) int32 class ids of the model.
    :ivar score: (N,) float32 confidences (1.0 for connected components of a class map).
    :ivar ids: (N,) uint16 instance ids, 1..N as decoded; the instance map uses them.
    """

    xyxy: np.ndarray
    masks: np.ndarray
    class_id: np.ndarray
    score: np.ndarray
    ids: np.ndarray

    def __post_init__(self) -> None:
        """Check that the arrays are parallel and of the documented types."""
        count = len(self.xyxy)
        if self.xyxy.shape != (count, 4) or self.xyxy.dtype != np.float32:
            raise ValueError(f'xyxy must be (N, 4) float32, got {self.xyxy.shape} '
                             f'{self.xyxy.dtype}')
        if self.masks.ndim != 3 or len(self.masks) != count or self.masks.dtype != np.bool_:
            raise ValueError(f'masks must be ({count}, H, W) bool, got {self.masks.shape} '
                             f'{self.masks.dtype}')
        for name, dtype in (('class_id', np.int32), ('score', np.float32), ('ids', np.uint16)):
            array = getattr(self, name)
            if array.shape != (count,) or array.dtype != dtype:
                raise ValueError(f'{name} must be ({count},) {np.dtype(dtype)}, got '
                                 f'{array.shape} {array.dtype}')

    @classmethod
    def empty(cls, height: int, width: int) -> Instances:
        """Return no instance for a ``height`` x ``width`` frame."""
        return cls(np.zeros((0, 4), np.float32), np.zeros((0, height, width), bool),
                   np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros(0, np.uint16))

    @classmethod
    def numbered(cls, xyxy: np.ndarray, masks: np.ndarray, class_id: np.ndarray,
                 score: np.ndarray) -> Instances:
        """Return instances with ids 1..N in array order (arrays converted to the field types)."""
        count = len(xyxy)
        if count > MAX_INSTANCE_ID:
            raise ValueError(f'{count} instances: at most {MAX_INSTANCE_ID} fit a mono16 map')
        return cls(np.asarray(xyxy, np.float32).reshape(count, 4), masks,
                   np.asarray(class_id, np.int32), np.asarray(score, np.float32),
                   np.arange(1, count + 1, dtype=np.uint16))

    def __len__(self) -> int:
        """Return the number of instances."""
        return len(self.xyxy)

    def __getitem__(self, index: Any) -> Instances:
        """Select instances by a boolean mask, an integer array or a slice; ids are kept."""
        if isinstance(index, (int, np.integer)):
            index = [index]
        return Instances(self.xyxy[index], self.masks[index], self.class_id[index],
                         self.score[index], self.ids[index])

    @property
    def frame_shape(self) -> tuple[int, int]:
        """Return (height, width) of the frame the masks cover."""
        return self.masks.shape[1], self.masks.shape[2]

    def regions(self) -> list[tuple[int, int, int, int]]:
        """
        Return each instance's region: the pixels its mask may have.

        Those of :func:`pixel_region` (centre in the box: Mask R-CNN, connected components) and
        of :func:`crop_region` (index in the box: YOLO-seg), that is ``round(x0)`` to
        ``ceil(x1)`` (clipped), at most one row or column more than either.
        """
        height, width = self.frame_shape
        regions = []
        for box in self.xyxy:
            u0, v0, _, _ = pixel_region(box, width, height)
            _, _, u1, v1 = crop_region(box, width, height)
            regions.append((u0, v0, max(u1, u0), max(v1, v0)))
        return regions

    def instance_map(self) -> np.ndarray:
        """
        Return the (H, W) uint16 map: 0 where no instance, else the id of the instance there.

        Where masks overlap, the earlier (better) instance wins.
        """
        instance_map = np.zeros(self.frame_shape, np.uint16)
        # Written worst first, so the best instance is written last and wins overlaps.
        for index, (u0, v0, u1, v1) in reversed(list(enumerate(self.regions()))):
            np.copyto(instance_map[v0:v1, u0:u1], self.ids[index],
                      where=self.masks[index, v0:v1, u0:u1])
        return instance_map

    def to_json(self, class_names: Sequence[str]) -> dict:
        """
        Return ``{"instances": [{"id", "class_id", "class_name", "score", "box"}, ...]}``.

        :param class_names: names indexed by class id; an id beyond them is named ``class_<id>``.
        """
        return {'instances': [
            {'id': int(instance_id), 'class_id': int(class_id),
             'class_name': class_name(class_names, int(class_id)),
             'score': round(float(score), 4), 'box': [round(float(v), 2) for v in box]}
            for instance_id, class_id, score, box in zip(self.ids, self.class_id, self.score,
                                                         self.xyxy)]}


def class_name(class_names: Sequence[str], class_id: int) -> str:
    """Return the name of ``class_id``, or ``class_<id>`` when the names do not cover it."""
    return class_names[class_id] if 0 <= class_id < len(class_names) else f'class_{class_id}'
