"""
Procedural street scenes with exact per-pixel ground truth in the Cityscapes classes.

The scenes are drawn from a small 3-D model (a pinhole camera over a straight street: road,
sidewalks with curbs, terrain verges, building facades with windows, walls, fences, trees,
lamp posts, traffic signs and lights, parked and moving cars, trucks, buses, pedestrians and
cyclists, a sky with clouds and a distant skyline). Every shape is drawn into the image and
into the class map by the same OpenCV call with the same geometry, so the class of every
pixel is exactly the class of what was drawn there; the photometric finish (surface
textures, shadows, colour grading, sensor noise and blur) only changes pixel values, never
labels. Class indices and names follow ENet's Cityscapes list (``CLASS_NAMES``).

NumPy and OpenCV only: the camera_source node imports this module at run time. This module
renders and finishes a scene and holds the public names; the pieces live beside it, by theme:
:mod:`.scene_classes` (class indices, names, colours), :mod:`.scene_drawing` (camera, light,
the canvas drawing image and labels together), :mod:`.scene_objects` (vehicles, people,
street furniture) and :mod:`.scene_street` (sky, ground, buildings; :func:`build_scene`).

API::

    bgr, class_map = render_scene(rng, width, height, *, zoom=1.0, photometric=True,
                                  label_colors=False)
    # bgr: uint8 (height, width, 3); class_map: uint8 (height, width), values in SCENE_CLASSES.
    # zoom > 1 shows a random 1/zoom window of the scene as a zoom-times larger render
    # would show it (objects zoom times larger in pixels). photometric=False skips textures,
    # shadows, grading, noise and blur; label_colors=True paints every shape in its class
    # colour (CLASS_COLORS_BGR), so the image equals CLASS_COLORS_BGR[class_map].

    animation = SceneAnimation(width, height, seed=0)
    bgr, class_map = animation.frame(t)   # t in seconds: cars drive, people walk and the
                                          # camera drifts; the same (seed, t) gives the same frame.

Evaluation on generated frames (the embedded model's card and its test use these)::

    rng = held_out_rng(index)              # frame ``index`` of the held-out set; training
                                           # streams never use this generator's key
    confusion = class_confusion(class_map, predicted, num_classes)   # (C, C) int64 counts
    iou = class_iou(confusion)             # (C,) IoU per class, NaN where a class is absent
"""

import dataclasses
import math

import cv2
import numpy as np

from seg_ros.data.scene_classes import (C, CityscapesClass, CLASS_COLORS_BGR, CLASS_COLORS_RGB,
                                        CLASS_NAMES, SCENE_CLASSES)
from seg_ros.data.scene_drawing import Camera, Canvas, Light
from seg_ros.data.scene_objects import Item
from seg_ros.data.scene_street import build_scene

__all__ = ['CityscapesClass', 'CLASS_COLORS_BGR', 'CLASS_COLORS_RGB', 'CLASS_NAMES',
           'class_confusion', 'class_iou', 'HELD_OUT_KEY', 'held_out_rng', 'render_scene',
           'SCENE_CLASSES', 'SceneAnimation']

# Surface texture strength per class: (fine grain, coarse blotches), fractions of the colour.
_TEXTURE_AMPLITUDE = np.zeros((256, 2), dtype=np.float32)
for _cls, _fine, _coarse in (
        (C.ROAD, 0.07, 0.06), (C.SIDEWALK, 0.06, 0.06), (C.BUILDING, 0.04, 0.08),
        (C.WALL, 0.06, 0.08), (C.FENCE, 0.05, 0.05), (C.POLE, 0.02, 0.03),
        (C.VEGETATION, 0.16, 0.12), (C.TERRAIN, 0.12, 0.12), (C.SKY, 0.0, 0.015),
        (C.PERSON, 0.03, 0.04), (C.RIDER, 0.03, 0.04), (C.CAR, 0.015, 0.03),
        (C.TRUCK, 0.02, 0.04), (C.BUS, 0.02, 0.04), (C.BICYCLE, 0.02, 0.02),
        (C.TRAFFIC_SIGN, 0.02, 0.02), (C.TRAFFIC_LIGHT, 0.02, 0.02)):
    _TEXTURE_AMPLITUDE[_cls] = (_fine, _coarse)


@dataclasses.dataclass(frozen=True)
class _Finish:
    """The photometric finish of a scene: textures, grading, sensor noise and blur."""

    texture_fine: float
    texture_coarse: float
    lut: np.ndarray         # (256, 1, 3) uint8 per-channel tone curve
    noise_sigma: float
    blur_sigma: float

    @staticmethod
    def draw(rng: np.random.Generator) -> '_Finish':
        gains = rng.uniform(0.85, 1.15, 3) * rng.uniform(0.75, 1.2)
        gamma = rng.uniform(0.75, 1.35)
        contrast = rng.uniform(0.8, 1.15)
        levels = np.arange(256, dtype=np.float64) / 255.0
        curves = [np.clip(((levels ** gamma - 0.5) * contrast + 0.5) * g, 0, 1) * 255
                  for g in gains]
        lut = np.stack(curves, -1).reshape(256, 1, 3).astype(np.uint8)
        return _Finish(rng.uniform(0.5, 1.6), rng.uniform(0.5, 1.6), lut,
                       rng.uniform(0.0, 7.0), rng.uniform(0.0, 1.2) if rng.random() < 0.7 else 0)

    def texture(self, bgr: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> None:
        """Modulate every surface with fine grain and coarse blotches, by class."""
        height, width = labels.shape
        fine = rng.standard_normal((height, width), dtype=np.float32)
        coarse_small = rng.standard_normal((max(2, height // 16), max(2, width // 16)),
                                           dtype=np.float32)
        coarse = cv2.resize(coarse_small, (width, height), interpolation=cv2.INTER_CUBIC)
        fine *= (self.texture_fine * _TEXTURE_AMPLITUDE[:, 0])[labels]
        coarse *= (self.texture_coarse * _TEXTURE_AMPLITUDE[:, 1])[labels]
        fine += coarse
        fine += 1.0
        bgr[:] = np.clip(bgr * fine[..., None], 0, 255)

    def grade(self, bgr: np.ndarray) -> np.ndarray:
        return cv2.LUT(bgr, self.lut)

    def blur(self, bgr: np.ndarray) -> np.ndarray:
        if self.blur_sigma < 0.3:
            return bgr
        return cv2.GaussianBlur(bgr, (0, 0), self.blur_sigma)


# First entropy word of the held-out frames; training seeds are below 2**31.
HELD_OUT_KEY = 2 ** 32 - 1


def held_out_rng(index: int) -> np.random.Generator:
    """Return the generator of held-out evaluation frame ``index`` (>= 0)."""
    if int(index) != index or index < 0:
        raise ValueError(f'index must be an integer >= 0, got {index!r}')
    return np.random.default_rng((HELD_OUT_KEY, int(index)))


def class_confusion(truth: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """
    Count (true class, predicted class) pixel pairs.

    :param truth: class map, integer (H, W).
    :param predicted: class map of the same shape.
    :param num_classes: C; every value of both maps must be below it.
    :return: int64 (C, C) matrix, rows true classes, columns predicted classes.
    """
    if truth.shape != predicted.shape:
        raise ValueError(f'predicted shape {predicted.shape} differs from truth {truth.shape}')
    pairs = truth.astype(np.int64).ravel() * num_classes + predicted.astype(np.int64).ravel()
    return np.bincount(pairs, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes)


def class_iou(confusion: np.ndarray) -> np.ndarray:
    """
    Intersection over union per class from a confusion matrix (``class_confusion``).

    :param confusion: (C, C) counts, rows true classes.
    :return: float64 (C,) IoU; NaN for classes with no true pixel (they count for no mean).
    """
    hits = np.diag(confusion).astype(np.float64)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - hits
    present = confusion.sum(axis=1) > 0
    iou = np.full(len(hits), np.nan)
    iou[present] = hits[present] / union[present]
    return iou


def _check_size(width: int, height: int) -> None:
    if int(width) != width or width < 8:
        raise ValueError(f'width must be an integer >= 8, got {width!r}')
    if int(height) != height or height < 8:
        raise ValueError(f'height must be an integer >= 8, got {height!r}')


def _draw_items(canvas: Canvas, cam: Camera, light: Light, items: list[Item],
                t: float) -> None:
    for item in sorted(items, key=lambda it: -it.depth(t)):
        item.draw(canvas, cam, light, t)


def render_scene(rng: np.random.Generator, width: int, height: int, *, zoom: float = 1.0,
                 photometric: bool = True,
                 label_colors: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """
    Render one random street scene and its exact class map.

    :param rng: source of every random decision; the same generator state gives the same scene.
    :param width: frame width in pixels.
    :param height: frame height in pixels.
    :param zoom: >= 1; show a random 1/zoom window of the scene at zoom-times the pixel scale.
    :param photometric: apply textures, shadows, colour grading, sensor noise and blur.
    :param label_colors: paint every shape in its class colour (checks the ground truth).
    :return: (BGR uint8 (height, width, 3), class map uint8 (height, width)).
    """
    _check_size(width, height)
    if not zoom >= 1.0:
        raise ValueError(f'zoom must be >= 1, got {zoom!r}')
    scene = build_scene(rng, width, height, zoom)
    finish = _Finish.draw(rng)
    bgr = np.empty((height, width, 3), np.uint8)
    labels = np.empty((height, width), np.uint8)
    canvas = Canvas(bgr, labels, label_colors=label_colors, photometric=photometric)
    for draw in scene.background:
        draw(canvas, scene.camera)
    _draw_items(canvas, scene.camera, scene.light, scene.items, 0.0)
    if not canvas.photometric:
        return bgr, labels
    finish.texture(bgr, labels, rng)
    bgr = finish.grade(bgr)
    if finish.noise_sigma > 0.5:
        noise = rng.standard_normal(bgr.shape, dtype=np.float32)
        noise *= finish.noise_sigma
        noise += bgr
        bgr = np.clip(noise, 0, 255).astype(np.uint8)
    return finish.blur(bgr), labels


@dataclasses.dataclass(frozen=True)
class _Sprite:
    """A static object pre-rendered once: its pixels, classes and coverage in its box."""

    item: Item
    top: int
    left: int
    bgr: np.ndarray
    labels: np.ndarray
    mask: np.ndarray


class SceneAnimation:
    """
    An endless street scene for a camera simulator: cars drive, people walk, the camera drifts.

    The static part (sky, ground, buildings and street furniture) is rendered once, with a
    margin for the camera's drift; each frame copies its window and draws the moving objects
    over it, far to near with the furniture, then adds sensor noise and blur.
    """

    # Camera drift amplitude, as a fraction of the frame size.
    DRIFT = 0.02
    # Pre-computed sensor-noise frames, cycled.
    NOISE_FRAMES = 4

    def __init__(self, width: int, height: int, seed: int = 0) -> None:
        """
        Build the scene for ``seed``.

        :param width: frame width in pixels.
        :param height: frame height in pixels.
        :param seed: scene seed; frames depend only on (width, height, seed, t).
        """
        _check_size(width, height)
        self.width, self.height = int(width), int(height)
        self._margin_x = int(math.ceil(self.DRIFT * width)) + 1
        self._margin_y = int(math.ceil(self.DRIFT * height)) + 1
        rng = np.random.default_rng(seed)
        scene = build_scene(rng, width, height, 1.0, moving_share=0.85)
        finish = _Finish.draw(rng)
        finish = dataclasses.replace(finish, blur_sigma=min(finish.blur_sigma, 0.8),
                                     noise_sigma=min(finish.noise_sigma, 4.0))
        self._finish = finish
        self._light = scene.light
        self._camera = scene.camera.shifted(self._margin_x, self._margin_y)
        full_h, full_w = height + 2 * self._margin_y, width + 2 * self._margin_x
        bgr = np.empty((full_h, full_w, 3), np.uint8)
        labels = np.empty((full_h, full_w), np.uint8)
        canvas = Canvas(bgr, labels, label_colors=False, photometric=True)
        for draw in scene.background:
            draw(canvas, self._camera)
        finish.texture(bgr, labels, rng)
        self._background = (bgr, labels)
        self._movers = [item for item in scene.items if item.moving]
        self._sprites = [self._sprite(item, (full_h, full_w), finish, rng)
                         for item in scene.items if not item.moving]
        self._sprites = [s for s in self._sprites if s is not None]
        self._noise = []
        for _ in range(self.NOISE_FRAMES):
            noise = rng.normal(0.0, finish.noise_sigma, (height, width, 3))
            self._noise.append((np.clip(noise, 0, 255).astype(np.uint8),
                                np.clip(-noise, 0, 255).astype(np.uint8)))
        phases = rng.uniform(0, 2 * math.pi, 4)
        self._drift_phase = phases

    def _sprite(self, item: Item, shape: tuple[int, int], finish: _Finish,
                rng: np.random.Generator) -> '_Sprite | None':
        bgr = np.zeros(shape + (3,), np.uint8)
        # 255 marks pixels the object does not cover.
        labels = np.full(shape, 255, np.uint8)
        item.draw(Canvas(bgr, labels, label_colors=False, photometric=True), self._camera,
                  self._light, 0.0)
        covered = labels != 255
        rows = np.flatnonzero(covered.any(axis=1))
        cols = np.flatnonzero(covered.any(axis=0))
        if rows.size == 0:
            return None
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        sprite_bgr, sprite_labels = bgr[box].copy(), labels[box].copy()
        finish.texture(sprite_bgr, np.where(covered[box], sprite_labels, 0).astype(np.uint8),
                       rng)
        return _Sprite(item, int(rows[0]), int(cols[0]), sprite_bgr, sprite_labels,
                       covered[box].copy())

    def _offset(self, t: float) -> tuple[int, int]:
        """Camera drift at ``t``: a slow smooth wander, in whole pixels."""
        p = self._drift_phase
        dx = 0.6 * math.sin(0.31 * t + p[0]) + 0.4 * math.sin(0.13 * t + p[1])
        dy = 0.6 * math.sin(0.23 * t + p[2]) + 0.4 * math.sin(0.07 * t + p[3])
        return (int(round(self._margin_x - 1 + dx * (self._margin_x - 1))),
                int(round(self._margin_y - 1 + dy * (self._margin_y - 1))))

    def frame(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """
        Render the frame at time ``t``.

        :param t: time in seconds.
        :return: (BGR uint8 (height, width, 3), class map uint8 (height, width)).
        """
        ox, oy = self._offset(t)
        window = (slice(oy, oy + self.height), slice(ox, ox + self.width))
        bgr = self._background[0][window].copy()
        labels = self._background[1][window].copy()
        canvas = Canvas(bgr, labels, label_colors=False, photometric=True)
        camera = self._camera.shifted(-ox, -oy)
        drawables = [(s.item.depth(t), s) for s in self._sprites]
        drawables += [(m.depth(t), m) for m in self._movers]
        drawables.sort(key=lambda pair: -pair[0])
        for _, thing in drawables:
            if isinstance(thing, _Sprite):
                self._blit(thing, bgr, labels, ox, oy)
            else:
                thing.draw(canvas, camera, self._light, t)
        bgr = self._finish.grade(bgr)
        positive, negative = self._noise[int(math.floor(t * 30.0)) % self.NOISE_FRAMES]
        cv2.add(bgr, positive, dst=bgr)
        cv2.subtract(bgr, negative, dst=bgr)
        return self._finish.blur(bgr), labels

    def _blit(self, sprite: _Sprite, bgr: np.ndarray, labels: np.ndarray, ox: int,
              oy: int) -> None:
        top, left = sprite.top - oy, sprite.left - ox
        h, w = sprite.mask.shape
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + h, self.height), min(left + w, self.width)
        if y1 <= y0 or x1 <= x0:
            return
        src = (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))
        mask = sprite.mask[src]
        np.copyto(bgr[y0:y1, x0:x1], sprite.bgr[src], where=mask[..., None])
        np.copyto(labels[y0:y1, x0:x1], sprite.labels[src], where=mask)
