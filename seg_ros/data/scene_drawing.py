"""
Drawing a scene: the pinhole camera, the lighting, and the canvas that paints image and labels.

Every shape goes into the image and the class map by the same OpenCV call with the same
geometry (:class:`Canvas`), so the class of every pixel is the class of what was drawn there.
"""

import dataclasses
import math

import cv2
import numpy as np

from seg_ros.data.scene_classes import CLASS_COLORS_BGR

# Geometry is clipped to this near plane (metres) so nothing projects from behind the camera.
Z_NEAR = 0.3

BGR = tuple[int, int, int]


def jitter(rng: np.random.Generator, bgr: BGR, amount: float) -> BGR:
    """Return ``bgr`` with every channel moved by up to ``amount`` (uniformly), clipped."""
    deltas = rng.uniform(-amount, amount, 3)
    return tuple(int(min(255, max(0, c + d))) for c, d in zip(bgr, deltas))


def pick(rng: np.random.Generator, palette: tuple[BGR, ...], amount: float = 18) -> BGR:
    return jitter(rng, palette[int(rng.integers(len(palette)))], amount)


@dataclasses.dataclass(frozen=True)
class Camera:
    """Pinhole camera at (0, height, 0) looking along +Z; X right, Y up, pixels per metre."""

    focal: float
    cx: float
    cy: float
    height: float

    def project(self, points: np.ndarray) -> np.ndarray:
        """Project (..., 3) world points to (..., 2) pixel coordinates (float)."""
        inverse_depth = self.focal / np.maximum(points[..., 2], Z_NEAR)
        pixels = np.empty(points.shape[:-1] + (2,))
        pixels[..., 0] = points[..., 0] * inverse_depth + self.cx
        pixels[..., 1] = (self.height - points[..., 1]) * inverse_depth + self.cy
        return pixels

    def point(self, x: float, y: float, z: float) -> tuple[float, float]:
        z = max(z, Z_NEAR)
        return self.cx + self.focal * x / z, self.cy + self.focal * (self.height - y) / z

    def scale(self, z: float) -> float:
        """Pixels per metre at depth ``z``."""
        return self.focal / max(z, Z_NEAR)

    def shifted(self, du: float, dv: float) -> 'Camera':
        return dataclasses.replace(self, cx=self.cx + du, cy=self.cy + dv)


@dataclasses.dataclass(frozen=True)
class Light:
    """Per-scene lighting: face brightness by orientation and the haze of distance."""

    toward_camera: float
    facing_right: float
    facing_left: float
    facing_up: float
    haze_bgr: BGR
    haze_distance: float

    def paint(self, bgr: BGR, z: float, face: float = 1.0) -> BGR:
        """Colour ``bgr`` lit by ``face`` and hazed as seen from ``z`` metres."""
        mix = 1.0 - math.exp(-max(z, 0.0) / self.haze_distance)
        return tuple(int(min(255.0, c * face * (1.0 - mix) + h * mix))
                     for c, h in zip(bgr, self.haze_bgr))

    def paint_many(self, bgr: np.ndarray, z: float, faces: np.ndarray) -> list[BGR]:
        """Vectorised ``paint`` of (N, 3) colours with (N,) face brightnesses."""
        mix = 1.0 - math.exp(-max(z, 0.0) / self.haze_distance)
        lit = bgr * (faces[:, None] * (1.0 - mix)) + np.asarray(self.haze_bgr) * mix
        return [tuple(c) for c in np.minimum(lit, 255.0).astype(int).tolist()]


def _pixels(points: np.ndarray) -> np.ndarray:
    """Round float pixel coordinates for OpenCV (geometry keeps them well inside int32)."""
    return np.rint(points).astype(np.int32)


class Canvas:
    """An image and its class map, always drawn together with the same geometry."""

    def __init__(self, bgr: np.ndarray, labels: np.ndarray, *, label_colors: bool,
                 photometric: bool) -> None:
        self.bgr = bgr
        self.labels = labels
        self.label_colors = label_colors
        self.photometric = photometric and not label_colors

    def _color(self, cls: int, bgr: BGR) -> BGR:
        if self.label_colors:
            return tuple(int(c) for c in CLASS_COLORS_BGR[cls])
        return bgr

    def polygons(self, polygons: list[np.ndarray] | np.ndarray, cls: int, bgr: BGR) -> None:
        """Fill polygons given as float pixel coordinates: a list of (K, 2) or an (N, K, 2)."""
        if len(polygons) == 0:
            return
        if isinstance(polygons, np.ndarray):
            points = list(_pixels(polygons))
        else:
            points = [_pixels(p) for p in polygons]
        cv2.fillPoly(self.bgr, points, self._color(cls, bgr), cv2.LINE_8)
        cv2.fillPoly(self.labels, points, int(cls), cv2.LINE_8)

    def circle(self, centre: tuple[float, float], radius: float, cls: int, bgr: BGR,
               thickness: int = -1) -> None:
        centre_px = (int(round(centre[0])), int(round(centre[1])))
        radius_px = max(1, int(round(radius)))
        cv2.circle(self.bgr, centre_px, radius_px, self._color(cls, bgr), thickness, cv2.LINE_8)
        cv2.circle(self.labels, centre_px, radius_px, int(cls), thickness, cv2.LINE_8)

    def line(self, start: tuple[float, float], end: tuple[float, float], cls: int, bgr: BGR,
             thickness: float) -> None:
        p0 = tuple(int(v) for v in _pixels(np.asarray(start)))
        p1 = tuple(int(v) for v in _pixels(np.asarray(end)))
        width = max(1, int(round(thickness)))
        cv2.line(self.bgr, p0, p1, self._color(cls, bgr), width, cv2.LINE_8)
        cv2.line(self.labels, p0, p1, int(cls), width, cv2.LINE_8)

    def shade(self, polygons: list[np.ndarray], factor: float) -> None:
        """Darken the image inside polygons (shadows); labels are untouched."""
        if not self.photometric or len(polygons) == 0:
            return
        mask = np.zeros(self.labels.shape, np.uint8)
        cv2.fillPoly(mask, [_pixels(p) for p in polygons], 1, cv2.LINE_8)
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size == 0:
            return
        band = slice(rows[0], rows[-1] + 1)
        darker = cv2.convertScaleAbs(self.bgr[band], alpha=factor)
        np.copyto(self.bgr[band], darker, where=mask[band, :, None].astype(bool))


def quad_x(x: float, y0: float, y1: float, z0: float, z1: float) -> np.ndarray:
    """Corners of a rectangle in the plane X = x."""
    return np.array(((x, y0, z0), (x, y1, z0), (x, y1, z1), (x, y0, z1)), np.float64)


def quad_y(y: float, x0: float, x1: float, z0: float, z1: float) -> np.ndarray:
    """Corners of a rectangle in the plane Y = y (the ground, a roof)."""
    return np.array(((x0, y, z0), (x1, y, z0), (x1, y, z1), (x0, y, z1)), np.float64)


def quad_z(z: float, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """Corners of a rectangle in the plane Z = z (facing the camera)."""
    return np.array(((x0, y0, z), (x1, y0, z), (x1, y1, z), (x0, y1, z)), np.float64)


def draw_box(canvas: Canvas, cam: Camera, light: Light, bounds: tuple[float, ...],
             cls: int, bgr: BGR) -> None:
    """Draw the faces of an axis-aligned box (x0, x1, y0, y1, z0, z1) the camera sees."""
    x0, x1, y0, y1, z0, z1 = bounds
    z0 = max(z0, Z_NEAR)
    if z1 <= z0:
        return
    if x0 > 0:
        canvas.polygons([cam.project(quad_x(x0, y0, y1, z0, z1))], cls,
                        light.paint(bgr, z0, light.facing_left))
    elif x1 < 0:
        canvas.polygons([cam.project(quad_x(x1, y0, y1, z0, z1))], cls,
                        light.paint(bgr, z0, light.facing_right))
    if y1 < cam.height:
        canvas.polygons([cam.project(quad_y(y1, x0, x1, z0, z1))], cls,
                        light.paint(bgr, z0, light.facing_up))
    canvas.polygons([cam.project(quad_z(z0, x0, x1, y0, y1))], cls,
                    light.paint(bgr, z0, light.toward_camera))
