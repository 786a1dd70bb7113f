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

NumPy and OpenCV only: the camera_source node imports this module at run time.

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
import enum
import math

import cv2
import numpy as np


class CityscapesClass(enum.IntEnum):
    """ENet's Cityscapes class indices (0 = Unlabeled, then the 19 evaluation classes)."""

    UNLABELED = 0
    ROAD = 1
    SIDEWALK = 2
    BUILDING = 3
    WALL = 4
    FENCE = 5
    POLE = 6
    TRAFFIC_LIGHT = 7
    TRAFFIC_SIGN = 8
    VEGETATION = 9
    TERRAIN = 10
    SKY = 11
    PERSON = 12
    RIDER = 13
    CAR = 14
    TRUCK = 15
    BUS = 16
    TRAIN = 17
    MOTORCYCLE = 18
    BICYCLE = 19


C = CityscapesClass

CLASS_NAMES: tuple[str, ...] = (
    'Unlabeled', 'Road', 'Sidewalk', 'Building', 'Wall', 'Fence', 'Pole', 'TrafficLight',
    'TrafficSign', 'Vegetation', 'Terrain', 'Sky', 'Person', 'Rider', 'Car', 'Truck', 'Bus',
    'Train', 'Motorcycle', 'Bicycle')

# The Cityscapes colours, R,G,B, in class order.
CLASS_COLORS_RGB = np.array([
    (0, 0, 0), (81, 0, 81), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32)], dtype=np.uint8)
CLASS_COLORS_BGR = np.ascontiguousarray(CLASS_COLORS_RGB[:, ::-1])

# The classes this generator draws (it never draws Unlabeled, Train or Motorcycle).
SCENE_CLASSES: frozenset[int] = frozenset((
    C.ROAD, C.SIDEWALK, C.BUILDING, C.WALL, C.FENCE, C.POLE, C.TRAFFIC_LIGHT, C.TRAFFIC_SIGN,
    C.VEGETATION, C.TERRAIN, C.SKY, C.PERSON, C.RIDER, C.CAR, C.TRUCK, C.BUS, C.BICYCLE))

# Geometry is clipped to this near plane (metres) so nothing projects from behind the camera.
_Z_NEAR = 0.3
# Moving objects stay at least this far ahead (metres): nearer, a car fills the frame.
_MOVER_Z_MIN = 4.0
_MOVER_Z_MAX = 110.0

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

BGR = tuple[int, int, int]

# Appearance palettes (B, G, R), jittered per object.
_CAR_COLORS: tuple[BGR, ...] = (
    (235, 235, 235), (25, 25, 28), (160, 160, 165), (110, 110, 115), (40, 40, 170),
    (140, 70, 30), (60, 90, 40), (200, 200, 190), (30, 120, 200), (90, 40, 30), (20, 20, 90))
_BUS_COLORS: tuple[BGR, ...] = (
    (40, 40, 200), (30, 190, 230), (230, 230, 230), (160, 90, 30), (60, 130, 40))
_TRUCK_COLORS: tuple[BGR, ...] = (
    (230, 230, 230), (60, 60, 180), (160, 100, 40), (40, 160, 210), (90, 90, 90))
_FACADE_COLORS: tuple[BGR, ...] = (
    (150, 170, 190), (70, 90, 150), (190, 200, 205), (120, 120, 125), (100, 130, 170),
    (60, 60, 110), (175, 190, 215), (140, 140, 150), (90, 100, 95), (200, 215, 225))
_CLOTH_COLORS: tuple[BGR, ...] = (
    (30, 30, 30), (120, 60, 20), (200, 200, 200), (40, 40, 160), (60, 120, 60),
    (150, 150, 150), (20, 80, 180), (140, 40, 120), (80, 60, 50), (180, 130, 60))
_SKIN_COLORS: tuple[BGR, ...] = (
    (150, 180, 220), (120, 150, 200), (80, 110, 160), (50, 70, 110), (140, 170, 205))
_HAIR_COLORS: tuple[BGR, ...] = ((20, 20, 25), (30, 50, 80), (60, 110, 160), (160, 170, 180))


def _jitter(rng: np.random.Generator, bgr: BGR, amount: float) -> BGR:
    """Return ``bgr`` with every channel moved by up to ``amount`` (uniformly), clipped."""
    deltas = rng.uniform(-amount, amount, 3)
    return tuple(int(min(255, max(0, c + d))) for c, d in zip(bgr, deltas))


def _pick(rng: np.random.Generator, palette: tuple[BGR, ...], amount: float = 18) -> BGR:
    return _jitter(rng, palette[int(rng.integers(len(palette)))], amount)


@dataclasses.dataclass(frozen=True)
class _Camera:
    """Pinhole camera at (0, height, 0) looking along +Z; X right, Y up, pixels per metre."""

    focal: float
    cx: float
    cy: float
    height: float

    def project(self, points: np.ndarray) -> np.ndarray:
        """Project (..., 3) world points to (..., 2) pixel coordinates (float)."""
        inverse_depth = self.focal / np.maximum(points[..., 2], _Z_NEAR)
        pixels = np.empty(points.shape[:-1] + (2,))
        pixels[..., 0] = points[..., 0] * inverse_depth + self.cx
        pixels[..., 1] = (self.height - points[..., 1]) * inverse_depth + self.cy
        return pixels

    def point(self, x: float, y: float, z: float) -> tuple[float, float]:
        z = max(z, _Z_NEAR)
        return self.cx + self.focal * x / z, self.cy + self.focal * (self.height - y) / z

    def scale(self, z: float) -> float:
        """Pixels per metre at depth ``z``."""
        return self.focal / max(z, _Z_NEAR)

    def shifted(self, du: float, dv: float) -> '_Camera':
        return dataclasses.replace(self, cx=self.cx + du, cy=self.cy + dv)


@dataclasses.dataclass(frozen=True)
class _Light:
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


class _Canvas:
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


def _quad_x(x: float, y0: float, y1: float, z0: float, z1: float) -> np.ndarray:
    """Corners of a rectangle in the plane X = x."""
    return np.array(((x, y0, z0), (x, y1, z0), (x, y1, z1), (x, y0, z1)), np.float64)


def _quad_y(y: float, x0: float, x1: float, z0: float, z1: float) -> np.ndarray:
    """Corners of a rectangle in the plane Y = y (the ground, a roof)."""
    return np.array(((x0, y, z0), (x1, y, z0), (x1, y, z1), (x0, y, z1)), np.float64)


def _quad_z(z: float, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    """Corners of a rectangle in the plane Z = z (facing the camera)."""
    return np.array(((x0, y0, z), (x1, y0, z), (x1, y1, z), (x0, y1, z)), np.float64)


def _draw_box(canvas: _Canvas, cam: _Camera, light: _Light, bounds: tuple[float, ...],
              cls: int, bgr: BGR) -> None:
    """Draw the faces of an axis-aligned box (x0, x1, y0, y1, z0, z1) the camera sees."""
    x0, x1, y0, y1, z0, z1 = bounds
    z0 = max(z0, _Z_NEAR)
    if z1 <= z0:
        return
    if x0 > 0:
        canvas.polygons([cam.project(_quad_x(x0, y0, y1, z0, z1))], cls,
                        light.paint(bgr, z0, light.facing_left))
    elif x1 < 0:
        canvas.polygons([cam.project(_quad_x(x1, y0, y1, z0, z1))], cls,
                        light.paint(bgr, z0, light.facing_right))
    if y1 < cam.height:
        canvas.polygons([cam.project(_quad_y(y1, x0, x1, z0, z1))], cls,
                        light.paint(bgr, z0, light.facing_up))
    canvas.polygons([cam.project(_quad_z(z0, x0, x1, y0, y1))], cls,
                    light.paint(bgr, z0, light.toward_camera))


@dataclasses.dataclass(frozen=True)
class _Track:
    """Where an object is at time t: start + velocity * t, wrapped into its lane's range."""

    x: float
    z: float
    vx: float = 0.0
    vz: float = 0.0
    low: float = 0.0
    high: float = 0.0

    def at(self, t: float) -> tuple[float, float]:
        x, z = self.x + self.vx * t, self.z + self.vz * t
        span = self.high - self.low
        if self.vx and span > 0:
            x = self.low + (x - self.low) % span
        if self.vz and span > 0:
            z = self.low + (z - self.low) % span
        return x, z


class _Item:
    """An object standing in the street, drawn far to near."""

    track: _Track
    moving: bool = False

    def depth(self, t: float) -> float:
        return self.track.at(t)[1]

    def draw(self, canvas: _Canvas, cam: _Camera, light: _Light, t: float) -> None:
        raise NotImplementedError


class _Vehicle(_Item):
    """Car, truck or bus seen from behind (driving away) or from the front (oncoming)."""

    def __init__(self, rng: np.random.Generator, kind: int, track: _Track, oncoming: bool,
                 moving: bool) -> None:
        self.kind = kind
        self.track = track
        self.oncoming = oncoming
        self.moving = moving
        if kind == C.CAR:
            self.width, self.length = rng.uniform(1.65, 1.95), rng.uniform(3.8, 4.9)
            self.height = rng.uniform(1.35, 1.6)
            self.color = _pick(rng, _CAR_COLORS, 15)
        elif kind == C.BUS:
            self.width, self.length, self.height = 2.5, rng.uniform(10, 13), rng.uniform(2.9, 3.3)
            self.color = _pick(rng, _BUS_COLORS, 15)
        else:
            self.width, self.length = rng.uniform(2.2, 2.5), rng.uniform(6.5, 10)
            self.height = rng.uniform(2.8, 3.8)
            self.color = _pick(rng, _TRUCK_COLORS, 15)
            self.cab_color = _pick(rng, _CAR_COLORS, 15)
        self.glass = _jitter(rng, (55, 45, 40), 15)

    def draw(self, canvas: _Canvas, cam: _Camera, light: _Light, t: float) -> None:
        xc, z0 = self.track.at(t)
        x0, x1 = xc - self.width / 2, xc + self.width / 2
        z1 = z0 + self.length
        if z0 < _Z_NEAR:
            return
        canvas.shade([cam.project(_quad_y(0.0, x0 - 0.15, x1 + 0.15, z0 - 0.2, z1))], 0.45)
        tyre = light.paint((25, 25, 28), z0)
        # Wheels under the body: visible in the ground clearance and on the visible side.
        wheel_r = 0.33 if self.kind == C.CAR else 0.5
        axles = (z0 + 0.8, z1 - 0.9)
        canvas.polygons([cam.project(_quad_z(axles[0], x0 + 0.05, x0 + 0.3, 0, wheel_r)),
                         cam.project(_quad_z(axles[0], x1 - 0.3, x1 - 0.05, 0, wheel_r))],
                        self.kind, tyre)
        clearance = 0.22 if self.kind == C.CAR else 0.4
        kind = self.kind
        if kind == C.CAR:
            body_top = clearance + 0.55 * (self.height - clearance)
            _draw_box(canvas, cam, light, (x0, x1, clearance, body_top, z0, z1), kind,
                      self.color)
            cabin = (x0 + 0.12, x1 - 0.12, body_top, self.height,
                     z0 + 0.22 * self.length, z1 - 0.3 * self.length)
            if self.oncoming:
                cabin = (cabin[0], cabin[1], body_top, self.height,
                         z0 + 0.3 * self.length, z1 - 0.22 * self.length)
            _draw_box(canvas, cam, light, cabin, kind, self.glass)
            # Roof and pillars in body colour keep the cabin from reading as one dark blob.
            if self.height < cam.height:
                canvas.polygons([cam.project(_quad_y(self.height, cabin[0], cabin[1],
                                                     cabin[4], cabin[5]))], kind,
                                light.paint(self.color, cabin[4], light.facing_up))
            pillar = 0.08
            for px in (cabin[0], cabin[1] - pillar):
                canvas.polygons([cam.project(_quad_z(cabin[4], px, px + pillar, body_top,
                                                     self.height))], kind,
                                light.paint(self.color, cabin[4], light.toward_camera))
            lamp_y = clearance + 0.6 * (body_top - clearance)
        elif kind == C.TRUCK:
            cab_len = 2.0
            cargo = (x0, x1, clearance + 0.5, self.height, z0, z1 - cab_len)
            cab = (x0 + 0.05, x1 - 0.05, clearance, 2.6, z1 - cab_len, z1)
            if self.oncoming:
                cab = (x0 + 0.05, x1 - 0.05, clearance, 2.6, z0, z0 + cab_len)
                cargo = (x0, x1, clearance + 0.5, self.height, z0 + cab_len, z1)
                _draw_box(canvas, cam, light, cargo, kind, self.color)
                _draw_box(canvas, cam, light, cab, kind, self.cab_color)
                canvas.polygons([cam.project(_quad_z(z0, x0 + 0.2, x1 - 0.2, 1.5, 2.4))], kind,
                                light.paint(self.glass, z0))
            else:
                _draw_box(canvas, cam, light, cab, kind, self.cab_color)
                _draw_box(canvas, cam, light, cargo, kind, self.color)
                # Rear doors: a darker seam down the middle.
                canvas.polygons([cam.project(_quad_z(z0, xc - 0.03, xc + 0.03, cargo[2] + 0.1,
                                                     self.height - 0.1))], kind,
                                light.paint(self.color, z0, 0.6 * light.toward_camera))
            lamp_y = clearance + 0.35
        else:
            _draw_box(canvas, cam, light, (x0, x1, clearance, self.height, z0, z1), kind,
                      self.color)
            # Window band along the side and a large rear or front window.
            side_x = x1 if x1 < 0 else x0 if x0 > 0 else None
            if side_x is not None:
                canvas.polygons([cam.project(_quad_x(side_x, 1.3, self.height - 0.35, z0 + 0.4,
                                                     z1 - 0.4))], kind,
                                light.paint(self.glass, z0))
            canvas.polygons([cam.project(_quad_z(z0, x0 + 0.15, x1 - 0.15, 1.4 if self.oncoming
                                                 else 1.9, self.height - 0.25))], kind,
                            light.paint(self.glass, z0))
            lamp_y = clearance + 0.4
        # Tail lights (red) or headlights (pale yellow) and a number plate.
        lamp = (170, 230, 250) if self.oncoming else (30, 30, 200)
        canvas.polygons([cam.project(_quad_z(z0, x0 + 0.08, x0 + 0.35, lamp_y, lamp_y + 0.15)),
                         cam.project(_quad_z(z0, x1 - 0.35, x1 - 0.08, lamp_y, lamp_y + 0.15))],
                        kind, light.paint(lamp, z0, 1.0))
        canvas.polygons([cam.project(_quad_z(z0, xc - 0.26, xc + 0.26, lamp_y - 0.2,
                                             lamp_y - 0.08))], kind,
                        light.paint((225, 225, 225), z0, light.toward_camera))


class _Pedestrian(_Item):
    """A person standing or walking, seen from the front/back or in profile."""

    def __init__(self, rng: np.random.Generator, track: _Track, moving: bool) -> None:
        self.track = track
        self.moving = moving
        self.stature = rng.uniform(1.45, 1.95)
        self.profile = track.vx != 0 or (not moving and rng.random() < 0.3)
        self.facing = 1.0 if track.vx >= 0 else -1.0
        self.phase0 = rng.uniform(0, 2 * math.pi)
        self.shirt = _pick(rng, _CLOTH_COLORS, 25)
        self.trousers = _pick(rng, _CLOTH_COLORS, 20)
        self.skin = _pick(rng, _SKIN_COLORS, 10)
        self.hair = _pick(rng, _HAIR_COLORS, 10)
        self.dress = rng.random() < 0.2
        self.bag = rng.random() < 0.3
        self.build = rng.uniform(0.85, 1.2)

    def draw(self, canvas: _Canvas, cam: _Camera, light: _Light, t: float) -> None:
        x, z = self.track.at(t)
        if z < _Z_NEAR + 1:
            return
        u, v = cam.point(x, 0.0, z)
        height = cam.scale(z) * self.stature
        stride = math.sin(self.phase0 + 7.0 * t) if self.moving else 0.0
        draw_figure(canvas, light, z, (u, v), height, self, stride, C.PERSON)


def draw_figure(canvas: _Canvas, light: _Light, z: float, foot: tuple[float, float],
                height: float, look: _Pedestrian, stride: float, cls: int,
                seated: tuple[tuple[float, float], tuple[float, float],
                              tuple[float, float]] | None = None) -> None:
    """
    Draw a human figure of ``height`` pixels standing at pixel ``foot``.

    :param stride: walking phase in [-1, 1] (legs and arms swing).
    :param seated: for a rider, pixel positions of (hip, pedal, handlebar); the figure then
        sits at the hip and leans towards the handlebar.
    """
    u, v = foot
    skin = light.paint(look.skin, z)
    shirt = light.paint(look.shirt, z, light.toward_camera)
    trousers = light.paint(look.trousers, z, light.toward_camera)
    limb = max(1.0, 0.075 * height * look.build)
    if seated is not None:
        hip, pedal, bar = seated
        shoulder = (hip[0] + look.facing * 0.16 * height, hip[1] - 0.33 * height)
        knee = ((hip[0] + pedal[0]) / 2 + look.facing * 0.12 * height,
                (hip[1] + pedal[1]) / 2 - 0.05 * height)
        canvas.line(hip, knee, cls, trousers, limb)
        canvas.line(knee, pedal, cls, trousers, limb * 0.85)
        canvas.line(hip, shoulder, cls, shirt, 0.13 * height * look.build)
        canvas.line(shoulder, bar, cls, shirt, limb * 0.7)
        head = (shoulder[0] + look.facing * 0.04 * height, shoulder[1] - 0.11 * height)
        canvas.circle(head, 0.065 * height, cls, skin)
        canvas.circle((head[0], head[1] - 0.02 * height), 0.055 * height, cls,
                      light.paint(look.hair, z))
        return
    hip_y = v - 0.48 * height
    shoulder_y = v - 0.81 * height
    if look.profile:
        swing = 0.16 * height * stride
        for sign in (1.0, -1.0):
            canvas.line((u, hip_y), (u + sign * swing * look.facing, v - 0.02 * height), cls,
                        trousers, limb)
        torso_w = 0.075 * height * look.build
        canvas.polygons([np.array(((u - torso_w, shoulder_y), (u + torso_w, shoulder_y),
                                   (u + torso_w * 0.9, hip_y + 0.04 * height),
                                   (u - torso_w * 0.9, hip_y + 0.04 * height)))], cls, shirt)
        if look.bag:
            back, pack = u - look.facing * torso_w, u - look.facing * torso_w * 2.0
            canvas.polygons([np.array(((pack, shoulder_y + 0.03 * height),
                                       (back, shoulder_y + 0.03 * height),
                                       (back, hip_y), (pack, hip_y)))], cls,
                            light.paint((40, 50, 60), z))
        canvas.line((u, shoulder_y + 0.02 * height),
                    (u - 0.12 * height * stride * look.facing, v - 0.45 * height), cls, shirt,
                    limb * 0.7)
        head = (u + look.facing * 0.01 * height, v - 0.915 * height)
    else:
        half_hip = 0.085 * height * look.build
        lift = 0.03 * height * stride
        canvas.polygons([
            np.array(((u - half_hip, hip_y), (u - 0.01 * height, hip_y),
                      (u - 0.02 * height, v - max(lift, 0)), (u - half_hip, v - max(lift, 0)))),
            np.array(((u + 0.01 * height, hip_y), (u + half_hip, hip_y),
                      (u + half_hip, v - max(-lift, 0)), (u + 0.02 * height, v - max(-lift, 0))))],
            cls, trousers)
        half_shoulder = 0.125 * height * look.build
        torso = np.array(((u - half_shoulder, shoulder_y), (u + half_shoulder, shoulder_y),
                          (u + half_hip * 1.05, hip_y + 0.03 * height),
                          (u - half_hip * 1.05, hip_y + 0.03 * height)))
        canvas.polygons([torso], cls, shirt)
        if look.dress:
            canvas.polygons([np.array(((u - half_hip, hip_y), (u + half_hip, hip_y),
                                       (u + half_hip * 1.5, v - 0.22 * height),
                                       (u - half_hip * 1.5, v - 0.22 * height)))], cls, shirt)
        arm_w = limb * 0.75
        for sign in (1.0, -1.0):
            shoulder = (u + sign * (half_shoulder - arm_w / 2), shoulder_y + arm_w / 2)
            hand = (u + sign * (half_shoulder + 0.01 * height),
                    v - (0.44 + 0.03 * sign * stride) * height)
            canvas.line(shoulder, hand, cls, shirt, arm_w)
            canvas.circle(hand, arm_w * 0.45, cls, skin)
        head = (u, v - 0.915 * height)
    canvas.line((head[0], head[1]), (head[0], shoulder_y), cls, skin, 0.05 * height)
    canvas.circle(head, 0.068 * height, cls, skin)
    canvas.circle((head[0], head[1] - 0.025 * height), 0.06 * height, cls,
                  light.paint(look.hair, z))


class _Bicycle(_Item):
    """A bicycle in profile, parked or crossing with its rider."""

    def __init__(self, rng: np.random.Generator, track: _Track, ridden: bool) -> None:
        self.track = track
        self.moving = ridden
        self.frame_color = _pick(rng, _CLOTH_COLORS, 30)
        self.rider = _Pedestrian(rng, track, moving=False) if ridden else None
        if track.vx:
            self.facing = 1.0 if track.vx > 0 else -1.0
        else:
            self.facing = 1.0 if rng.random() < 0.5 else -1.0
        if self.rider is not None:
            self.rider.facing = self.facing
        self.phase0 = rng.uniform(0, 2 * math.pi)

    def draw(self, canvas: _Canvas, cam: _Camera, light: _Light, t: float) -> None:
        x, z = self.track.at(t)
        if z < _Z_NEAR + 1:
            return
        s = cam.scale(z)
        u, v = cam.point(x, 0.0, z)
        f = self.facing
        wheel_r = 0.34 * s
        rear = (u - f * 0.52 * s, v - wheel_r)
        front = (u + f * 0.52 * s, v - wheel_r)
        crank = (u - f * 0.05 * s, v - 0.3 * s)
        seat = (u - f * 0.22 * s, v - 0.92 * s)
        bar = (u + f * 0.42 * s, v - 1.0 * s)
        tube = 0.04 * s
        frame = light.paint(self.frame_color, z)
        tyre = light.paint((30, 30, 30), z)
        for hub in (rear, front):
            canvas.circle(hub, wheel_r, C.BICYCLE, tyre, max(1, int(round(0.05 * s))))
        for start, end in ((rear, crank), (rear, seat), (crank, seat), (seat, bar),
                           (crank, bar), (bar, front)):
            canvas.line(start, end, C.BICYCLE, frame, tube)
        if self.rider is not None:
            angle = self.phase0 + 5.0 * t
            pedal = (crank[0] + 0.17 * s * math.cos(angle), crank[1] + 0.17 * s * math.sin(angle))
            draw_figure(canvas, light, z, (u, v), s * self.rider.stature, self.rider, 0.0,
                        C.RIDER, seated=(seat, pedal, bar))


class _Tree(_Item):
    """A trunk and a crown of overlapping leaf clusters (all Vegetation, as in Cityscapes)."""

    def __init__(self, rng: np.random.Generator, x: float, z: float) -> None:
        self.track = _Track(x, z)
        self.trunk_h = rng.uniform(1.8, 3.5)
        self.crown_r = rng.uniform(1.3, 3.2)
        self.trunk_w = rng.uniform(0.2, 0.4)
        base = np.asarray(_jitter(rng, (45, 110, 70), 25), np.float64)
        count = int(rng.integers(14, 30))
        angles = rng.uniform(0, 2 * math.pi, count)
        radii = self.crown_r * np.sqrt(rng.uniform(0, 1, count))
        # Leaf clusters relative to the crown's base (metres), lowest first so the lit upper
        # ones overlap them.
        self.blob_dx = np.cos(angles) * radii
        self.blob_dy = np.sin(angles) * radii * 0.9 + self.crown_r
        order = np.argsort(self.blob_dy)
        self.blob_dx, self.blob_dy = self.blob_dx[order], self.blob_dy[order]
        self.blob_r = self.crown_r * rng.uniform(0.3, 0.55, count)
        self.blob_bgr = np.clip(base + rng.uniform(-22, 22, (count, 3)), 0, 255)
        self.blob_lit = 0.75 + 0.35 * self.blob_dy / (2 * self.crown_r)
        self.bark = _jitter(rng, (40, 60, 80), 15)

    def draw(self, canvas: _Canvas, cam: _Camera, light: _Light, t: float) -> None:
        x, z = self.track.x, self.track.z
        canvas.polygons([cam.project(_quad_z(z, x - self.trunk_w / 2, x + self.trunk_w / 2,
                                             0.0, self.trunk_h + self.crown_r))],
                        C.VEGETATION, light.paint(self.bark, z))
        s = cam.scale(z)
        cu, cv = cam.point(x, self.trunk_h, z)
        colors = light.paint_many(self.blob_bgr, z, self.blob_lit)
        for dx, dy, r, color in zip(self.blob_dx.tolist(), self.blob_dy.tolist(),
                                    self.blob_r.tolist(), colors):
            canvas.circle((cu + dx * s, cv - dy * s), r * s, C.VEGETATION, color)


class _LampPost(_Item):
    """A street lamp: pole, arm over the road and lamp head (all Pole)."""

    def __init__(self, rng: np.random.Generator, x: float, z: float, toward: float) -> None:
        self.track = _Track(x, z)
        self.height = rng.uniform(5.0, 9.0)
        self.width = rng.uniform(0.12, 0.22)
        self.arm = rng.uniform(0.8, 2.0) * toward
        self.color = _jitter(rng, ((120, 120, 120), (60, 70, 50), (40, 40, 40))[
            int(rng.integers(3))], 15)

    def draw(self, canvas: _Canvas, cam: _Camera, light: _Light, t: float) -> None:
        x, z = self.track.x, self.track.z
        w = self.width
        color = light.paint(self.color, z)
        canvas.polygons([cam.project(_quad_z(z, x - w / 2, x + w / 2, 0.0, self.height))],
                        C.POLE, color)
        arm_end = x + self.arm
        canvas.polygons([cam.project(_quad_z(z, min(x, arm_end), max(x, arm_end),
                                             self.height - 0.12, self.height))], C.POLE, color)
        canvas.polygons([cam.project(_quad_z(z, arm_end - 0.3, arm_end + 0.3,
                                             self.height - 0.25, self.height))], C.POLE, color)


class _Sign(_Item):
    """A traffic sign on its pole."""

    def __init__(self, rng: np.random.Generator, x: float, z: float) -> None:
        self.track = _Track(x, z)
        self.height = rng.uniform(2.0, 3.0)
        self.size = rng.uniform(0.35, 0.5)
        self.shape = int(rng.integers(4))
        self.style = int(rng.integers(3))

    def draw(self, canvas: _Canvas, cam: _Camera, light: _Light, t: float) -> None:
        x, z = self.track.x, self.track.z
        canvas.polygons([cam.project(_quad_z(z, x - 0.04, x + 0.04, 0.0, self.height))],
                        C.POLE, light.paint((150, 150, 150), z))
        s = cam.scale(z)
        cu, cv = cam.point(x, self.height + self.size, z)
        r = self.size * s
        sign = C.TRAFFIC_SIGN
        white = light.paint((235, 235, 235), z, light.toward_camera)
        if self.shape == 0:  # round: prohibition (red ring) or mandatory (blue disc)
            outer = ((40, 40, 200), (170, 90, 20), (40, 40, 200))[self.style]
            canvas.circle((cu, cv), r, sign, light.paint(outer, z))
            canvas.circle((cu, cv), r * 0.72, sign, white if self.style != 1 else
                          light.paint((190, 110, 30), z))
            if self.style == 2:
                canvas.line((cu - r * 0.5, cv), (cu + r * 0.5, cv), sign,
                            light.paint((40, 40, 200), z), r * 0.3)
        elif self.shape == 1:  # warning triangle
            tri = np.array(((cu, cv - r), (cu + r * 1.1, cv + r * 0.9),
                            (cu - r * 1.1, cv + r * 0.9)))
            canvas.polygons([tri], sign, light.paint((40, 40, 210), z))
            inner = (tri - (cu, cv + 0.25 * r)) * 0.6 + (cu, cv + 0.25 * r)
            canvas.polygons([inner], sign, white)
        elif self.shape == 2:  # priority diamond
            diamond = np.array(((cu, cv - r), (cu + r, cv), (cu, cv + r), (cu - r, cv)))
            canvas.polygons([diamond], sign, white)
            canvas.polygons([(diamond - (cu, cv)) * 0.6 + (cu, cv)], sign,
                            light.paint((20, 190, 230), z))
        else:  # information panel
            panel = np.array(((cu - r * 1.3, cv - r * 0.8), (cu + r * 1.3, cv - r * 0.8),
                              (cu + r * 1.3, cv + r * 0.8), (cu - r * 1.3, cv + r * 0.8)))
            color = ((160, 90, 20), (60, 130, 30), (235, 235, 235))[self.style]
            canvas.polygons([panel], sign, light.paint(color, z))
            canvas.line((cu - r * 0.8, cv), (cu + r * 0.8, cv), sign,
                        white if self.style < 2 else light.paint((30, 30, 30), z), r * 0.2)


class _TrafficLight(_Item):
    """Signal head on a pole, at the curb or hanging over the road on an arm."""

    def __init__(self, rng: np.random.Generator, x: float, z: float, toward: float) -> None:
        self.track = _Track(x, z)
        self.overhead = rng.random() < 0.4
        self.arm = rng.uniform(2.0, 4.5) * toward
        self.head_y = rng.uniform(5.0, 6.0) if self.overhead else rng.uniform(2.2, 3.0)
        self.lit = int(rng.integers(3))
        self.housing = _jitter(rng, ((35, 35, 35), (20, 160, 200), (50, 60, 40))[
            int(rng.integers(3))], 10)

    def draw(self, canvas: _Canvas, cam: _Camera, light: _Light, t: float) -> None:
        x, z = self.track.x, self.track.z
        pole = light.paint((90, 90, 90), z)
        top = self.head_y + 1.0
        canvas.polygons([cam.project(_quad_z(z, x - 0.08, x + 0.08, 0.0, top))], C.POLE, pole)
        head_x = x
        if self.overhead:
            head_x = x + self.arm
            canvas.polygons([cam.project(_quad_z(z, min(x, head_x), max(x, head_x), top - 0.12,
                                                 top))], C.POLE, pole)
        canvas.polygons([cam.project(_quad_z(z, head_x - 0.18, head_x + 0.18, self.head_y,
                                             self.head_y + 0.95))], C.TRAFFIC_LIGHT,
                        light.paint(self.housing, z))
        s = cam.scale(z)
        lamps = ((40, 40, 230), (30, 190, 240), (90, 220, 40))
        for index, color in enumerate(lamps):
            lit = index == self.lit
            cu, cv = cam.point(head_x, self.head_y + 0.8 - 0.3 * index, z)
            canvas.circle((cu, cv), 0.11 * s, C.TRAFFIC_LIGHT,
                          color if lit else light.paint(tuple(c // 4 for c in color), z))


@dataclasses.dataclass
class _Scene:
    camera: _Camera
    light: _Light
    background: list        # callables drawing sky, ground, shadows and buildings, in order
    items: list[_Item]      # objects standing in the street


def _sky(canvas: _Canvas, cam: _Camera, rng: np.random.Generator) -> None:
    """Fill the frame with a vertical sky gradient and soft clouds (all Sky)."""
    height, width = canvas.labels.shape
    style = rng.random()
    if style < 0.55:
        top, horizon = _jitter(rng, (190, 130, 70), 25), _jitter(rng, (235, 215, 195), 15)
    elif style < 0.85:
        top, horizon = _jitter(rng, (175, 170, 165), 25), _jitter(rng, (215, 215, 210), 15)
    else:
        top, horizon = _jitter(rng, (140, 110, 100), 20), _jitter(rng, (140, 190, 235), 20)
    rows = np.arange(height, dtype=np.float32)
    span = max(cam.focal * 0.6, 1.0)
    mix = np.clip((rows - (cam.cy - span)) / span, 0.0, 1.0)[:, None]
    column = (np.asarray(top, np.float32) * (1 - mix) + np.asarray(horizon, np.float32) * mix)
    if canvas.label_colors:
        column[:] = CLASS_COLORS_BGR[C.SKY]
    canvas.bgr[:] = column[:, None, :].astype(np.uint8)
    canvas.labels[:] = C.SKY
    if not canvas.photometric:
        return
    # Clouds: blurred blobs on a coarse grid, blended towards white.
    small = np.zeros((max(2, height // 8), max(2, width // 8)), np.float32)
    for _ in range(int(rng.integers(0, 9))):
        centre = (int(rng.integers(small.shape[1])), int(rng.integers(small.shape[0] // 2 + 1)))
        axes = (int(rng.integers(2, max(3, small.shape[1] // 5))),
                int(rng.integers(1, max(2, small.shape[0] // 10))))
        cv2.ellipse(small, centre, axes, 0, 0, 360, float(rng.uniform(0.3, 0.9)), -1)
    if not small.any():
        return
    small = cv2.GaussianBlur(small, (0, 0), 1.5)
    cover = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    rows = np.flatnonzero(cover.max(axis=1) > 0.01)
    band = slice(rows[0], rows[-1] + 1)
    cover = cover[band, :, None]
    white = np.float32(rng.uniform(215, 250))
    sky = canvas.bgr[band]
    sky[:] = sky + (white - sky) * cover


@dataclasses.dataclass(frozen=True)
class _Street:
    """The cross-section of the street (metres, X positive to the right)."""

    road_left: float
    road_right: float
    lane_width: float
    walk_left: float        # outer edge of the left sidewalk (== road_left: none)
    walk_right: float
    line_left: float        # building line, left
    line_right: float
    curb: float
    end: float              # distance of the skyline closing the view


def _layout(rng: np.random.Generator) -> _Street:
    lanes = int(rng.choice((1, 2, 2, 3, 4)))
    lane_width = rng.uniform(2.8, 3.8)
    road_width = lanes * lane_width
    if rng.random() < 0.15:
        # A sidewalk robot's view: the camera stands on the right sidewalk.
        road_right = -rng.uniform(0.8, 2.5)
    else:
        road_right = road_width * rng.uniform(0.25, 0.8)
    road_left = road_right - road_width
    walk_left = road_left - (rng.uniform(1.5, 5.0) if rng.random() < 0.9 else 0.0)
    walk_right = road_right + (rng.uniform(1.5, 5.0) if rng.random() < 0.9 else 0.0)
    if road_right < 0:
        walk_right = max(walk_right, 1.5)
    line_left = walk_left - (rng.uniform(0.5, 8.0) if rng.random() < 0.35 else 0.0)
    line_right = walk_right + (rng.uniform(0.5, 8.0) if rng.random() < 0.35 else 0.0)
    return _Street(road_left, road_right, lane_width, walk_left, walk_right, line_left,
                   line_right, rng.uniform(0.08, 0.16), rng.uniform(70.0, 300.0))


def _ground(canvas: _Canvas, cam: _Camera, light: _Light, street: _Street,
            rng: np.random.Generator) -> None:
    """Terrain, sidewalks with curbs, the road and its markings."""
    z_end = street.end
    height = canvas.labels.shape[0]
    # The nearest ground row visible; start the ground a little nearer still.
    z_bottom = cam.focal * cam.height / max(height - cam.cy, 1.0)
    z_near = min(max(_Z_NEAR, 0.7 * z_bottom), 0.5 * z_end)

    def quad(x0: float, x1: float, y: float = 0.0, z0: float = z_near,
             z1: float = z_end) -> np.ndarray:
        return cam.project(_quad_y(y, x0, x1, z0, z1))

    grass = _jitter(rng, (60, 140, 120), 25)
    canvas.polygons([quad(-100.0, 100.0)], C.TERRAIN, light.paint(grass, 15.0, 0.9))
    # Asphalt: any grey level, only a slight tint.
    grey = rng.uniform(70.0, 140.0)
    asphalt = _jitter(rng, (int(grey) + 4, int(grey), int(grey)), 8)
    paving = _jitter(rng, ((150, 150, 155), (140, 160, 175), (110, 120, 150))[
        int(rng.integers(3))], 20)
    for inner, outer in ((street.road_left, street.walk_left),
                         (street.road_right, street.walk_right)):
        if inner == outer:
            continue
        canvas.polygons([quad(min(inner, outer), max(inner, outer), street.curb)], C.SIDEWALK,
                        light.paint(paving, 10.0, light.facing_up))
        canvas.polygons([cam.project(_quad_x(inner, 0.0, street.curb, z_near, z_end))],
                        C.SIDEWALK, light.paint(paving, 10.0, 0.8))
        # Paving joints across the sidewalk.
        joint = light.paint(paving, 10.0, 0.75)
        step = rng.uniform(1.0, 2.5)
        zs = np.arange(z_near + rng.uniform(0, step), min(z_end, 60.0), step)
        lo, hi = min(inner, outer), max(inner, outer)
        joints = [quad(lo, hi, street.curb, z, z + 0.04 * max(1.0, z / 10)) for z in zs]
        canvas.polygons(joints, C.SIDEWALK, joint)
    canvas.polygons([quad(street.road_left, street.road_right)], C.ROAD,
                    light.paint(asphalt, 10.0, light.facing_up))
    # Patches of repaired asphalt.
    for _ in range(int(rng.integers(0, 4))):
        x = rng.uniform(street.road_left, street.road_right - 1)
        z = rng.uniform(z_near, z_near + 40.0)
        canvas.polygons([quad(x, x + rng.uniform(0.5, 3), 0.0, z, z + rng.uniform(1, 8))],
                        C.ROAD, light.paint(_jitter(rng, asphalt, 20), z))
    paint = light.paint(_jitter(rng, (225, 225, 225) if rng.random() < 0.8 else (40, 190, 230),
                                10), 10.0)
    marks = []
    lanes = int(round((street.road_right - street.road_left) / street.lane_width))
    dash, gap = rng.uniform(2.0, 4.0), rng.uniform(4.0, 8.0)
    offset = rng.uniform(0, dash + gap)
    for lane in range(1, lanes):
        x = street.road_left + lane * street.lane_width
        for z in np.arange(z_near - offset, z_end, dash + gap):
            marks.append(quad(x - 0.07, x + 0.07, 0.0, max(z, z_near), z + dash))
    if rng.random() < 0.6:
        for x in (street.road_left + 0.3, street.road_right - 0.3):
            marks.append(quad(x - 0.06, x + 0.06))
    if rng.random() < 0.35:
        z = rng.uniform(6.0, 30.0)
        for x in np.arange(street.road_left + 0.3, street.road_right - 0.5, 1.0):
            marks.append(quad(x, x + 0.5, 0.0, z, z + 3.0))
    canvas.polygons(marks, C.ROAD, paint)


@dataclasses.dataclass(frozen=True)
class _Building:
    side: float             # -1 left of the street, +1 right
    facade_x: float
    z0: float
    z1: float
    height: float
    depth: float
    color: BGR
    glass: BGR
    floor_h: float
    window_w: float
    window_h: float
    bay: float
    shop: bool


def _facade_windows(building: _Building, z0: float, z1: float) -> np.ndarray:
    """Window rectangles (N, 4, 3) on the facade plane between z0 and z1."""
    b = building
    first = 1.0 if b.shop else 0.9
    floors = np.arange(first + (b.floor_h - b.window_h) / 2, b.height - b.window_h - 0.6,
                       b.floor_h)
    bays = np.arange(z0 + 0.6, z1 - b.window_w - 0.4, b.bay)
    if floors.size == 0 or bays.size == 0:
        return np.zeros((0, 4, 3))
    if b.shop:
        floors = floors[floors > b.floor_h]
    y, z = np.meshgrid(floors, bays, indexing='ij')
    y, z = y.ravel(), z.ravel()
    corners = np.empty((y.size, 4, 3))
    corners[:, :, 0] = b.facade_x
    corners[:, 0, 1:] = np.stack((y, z), -1)
    corners[:, 1, 1:] = np.stack((y + b.window_h, z), -1)
    corners[:, 2, 1:] = np.stack((y + b.window_h, z + b.window_w), -1)
    corners[:, 3, 1:] = np.stack((y, z + b.window_w), -1)
    return corners


def _draw_building(canvas: _Canvas, cam: _Camera, light: _Light, b: _Building) -> None:
    z0 = max(b.z0, _Z_NEAR)
    if b.z1 <= z0:
        return
    face = light.facing_right if b.side < 0 else light.facing_left
    back_x = b.facade_x + b.side * b.depth
    if b.z0 > _Z_NEAR:
        canvas.polygons([cam.project(_quad_z(b.z0, min(b.facade_x, back_x),
                                             max(b.facade_x, back_x), 0.0, b.height))],
                        C.BUILDING, light.paint(b.color, b.z0, light.toward_camera))
    canvas.polygons([cam.project(_quad_x(b.facade_x, 0.0, b.height, z0, b.z1))], C.BUILDING,
                    light.paint(b.color, b.z0, face))
    # A darker cornice under the roof line and a plinth.
    trim = light.paint(b.color, b.z0, face * 0.7)
    canvas.polygons([cam.project(_quad_x(b.facade_x, b.height - 0.5, b.height, z0, b.z1)),
                     cam.project(_quad_x(b.facade_x, 0.0, 0.4, z0, b.z1))], C.BUILDING, trim)
    windows = _facade_windows(b, z0, b.z1)
    if len(windows):
        frame = light.paint(b.color, b.z0, face * 1.15)
        grow = np.array(((0, -0.08, -0.08), (0, 0.08, -0.08), (0, 0.08, 0.08), (0, -0.08, 0.08)))
        canvas.polygons(cam.project(windows + grow), C.BUILDING, frame)
        projected = cam.project(windows)
        # Three glass shades stand in for reflections.
        for shade in range(3):
            canvas.polygons(projected[shade::3], C.BUILDING,
                            light.paint(b.glass, b.z0, 0.8 + 0.25 * shade))
    if b.shop:
        shop = light.paint(b.glass, b.z0, 1.1)
        canvas.polygons([cam.project(_quad_x(b.facade_x, 0.5, 2.8, z0 + 0.8, b.z1 - 0.8))],
                        C.BUILDING, shop)


def _buildings(rng: np.random.Generator, street: _Street) -> tuple[list, list]:
    """
    Line both sides of the street with buildings and, in the gaps, walls, fences or hedges.

    :return: (buildings, boundary pieces) where a boundary piece is (kind, side, x, z0, z1, h).
    """
    buildings: list[_Building] = []
    boundaries: list[tuple] = []
    for side, line in ((-1.0, street.line_left), (1.0, street.line_right)):
        built_up = rng.random() < 0.85
        z = rng.uniform(-10.0, 8.0)
        while z < street.end:
            if built_up and rng.random() < 0.8:
                length = rng.uniform(8.0, 40.0)
                setback = rng.uniform(0.0, 1.5) if rng.random() < 0.4 else 0.0
                floor_h = rng.uniform(2.8, 3.6)
                window_h = floor_h * rng.uniform(0.4, 0.6)
                buildings.append(_Building(
                    side, line + side * setback, z, z + length,
                    rng.uniform(6.0, 35.0) if rng.random() < 0.85 else rng.uniform(3.5, 6.0),
                    rng.uniform(8.0, 20.0), _pick(rng, _FACADE_COLORS, 20),
                    _jitter(rng, (90, 75, 60), 30), floor_h, rng.uniform(0.8, 1.6), window_h,
                    rng.uniform(2.2, 4.0), rng.random() < 0.4))
            else:
                length = rng.uniform(5.0, 25.0)
                kind = rng.choice((C.WALL, C.FENCE, C.VEGETATION, C.TERRAIN))
                if kind != C.TERRAIN:
                    boundaries.append((int(kind), side, line, z, z + length,
                                       rng.uniform(1.0, 2.6)))
            z += length
    buildings.sort(key=lambda b: -b.z0)
    return buildings, boundaries


def _draw_boundary(canvas: _Canvas, cam: _Camera, light: _Light, rng: np.random.Generator,
                   piece: tuple) -> None:
    """Draw a wall, a fence or a hedge along a building line."""
    kind, side, x, z0, z1, height = piece
    z0 = max(z0, _Z_NEAR)
    if z1 <= z0:
        return
    face = light.facing_right if side < 0 else light.facing_left
    if kind == C.WALL:
        color = _jitter(rng, ((150, 150, 150), (120, 150, 180), (70, 90, 140))[
            int(rng.integers(3))], 20)
        canvas.polygons([cam.project(_quad_x(x, 0.0, height, z0, z1))], C.WALL,
                        light.paint(color, z0, face))
        canvas.polygons([cam.project(_quad_x(x, height - 0.15, height, z0, z1))], C.WALL,
                        light.paint(color, z0, face * 0.8))
        if height < cam.height:
            canvas.polygons([cam.project(_quad_y(height, x + side * 0.25, x, z0, z1))], C.WALL,
                            light.paint(color, z0, light.facing_up))
    elif kind == C.FENCE:
        color = _jitter(rng, ((60, 90, 120), (70, 110, 60), (140, 140, 140))[
            int(rng.integers(3))], 20)
        paint = light.paint(color, z0, face)
        pitch = rng.uniform(0.12, 0.3)
        gap = pitch * rng.uniform(0.0, 0.5)
        # Slats with gaps up to 60 m, a solid band beyond where the gaps vanish.
        starts = np.arange(z0, min(z1, 60.0), pitch)
        slats = np.empty((starts.size, 4, 3))
        slats[:, :, 0] = x
        slats[:, :, 1] = (0.0, height, height, 0.0)
        slats[:, :, 2] = np.stack((starts, starts, starts + pitch - gap, starts + pitch - gap), -1)
        polygons = list(cam.project(slats))
        if z1 > 60.0:
            polygons.append(cam.project(_quad_x(x, 0.0, height, 60.0, z1)))
        canvas.polygons(polygons, C.FENCE, paint)
        canvas.polygons([cam.project(_quad_x(x, height * 0.75, height * 0.85, z0, z1)),
                         cam.project(_quad_x(x, height * 0.2, height * 0.3, z0, z1))], C.FENCE,
                        light.paint(color, z0, face * 0.8))
    else:
        hedge = _jitter(rng, (40, 100, 50), 20)
        canvas.polygons([cam.project(_quad_x(x, 0.0, height, z0, z1))], C.VEGETATION,
                        light.paint(hedge, z0, face))
        for z in np.arange(z0, min(z1, 50.0), 0.7):
            cu, cv = cam.point(x, height, z)
            canvas.circle((cu, cv), 0.45 * cam.scale(z), C.VEGETATION,
                          light.paint(_jitter(rng, hedge, 20), z, face))


def _skyline(canvas: _Canvas, cam: _Camera, light: _Light, street: _Street,
             rng: np.random.Generator) -> None:
    """Close the view at the street's end: distant blocks or a tree line."""
    z = street.end
    if rng.random() < 0.65:
        x = -3.0 * z
        blocks = []
        while x < 3.0 * z:
            w = rng.uniform(8.0, 40.0)
            blocks.append((x, x + w, rng.uniform(6.0, 45.0)))
            x += w
        for x0, x1, h in blocks:
            canvas.polygons([cam.project(_quad_z(z, x0, x1, 0.0, h))], C.BUILDING,
                            light.paint(_pick(rng, _FACADE_COLORS, 25), z))
    else:
        green = _jitter(rng, (50, 100, 60), 20)
        canvas.polygons([cam.project(_quad_z(z, -3.0 * z, 3.0 * z, 0.0, 4.0))], C.VEGETATION,
                        light.paint(green, z))
        s = cam.scale(z)
        for x in np.arange(-1.0 * z, 1.0 * z, rng.uniform(3.0, 8.0)):
            cu, cv = cam.point(x, 4.0, z)
            canvas.circle((cu, cv), rng.uniform(3.0, 7.0) * s, C.VEGETATION,
                          light.paint(_jitter(rng, green, 20), z))


def _shadows(canvas: _Canvas, cam: _Camera, street: _Street, buildings: list[_Building],
             sun_side: float, strength: float) -> None:
    """Shadows the buildings on the sunny side cast across the street."""
    polygons = []
    for b in buildings:
        if b.side != sun_side or b.z1 <= _Z_NEAR:
            continue
        reach = min(b.height * 0.6, abs(street.line_right - street.line_left))
        x_a, x_b = b.facade_x, b.facade_x - sun_side * reach
        polygons.append(cam.project(_quad_y(0.0, min(x_a, x_b), max(x_a, x_b),
                                            max(b.z0, _Z_NEAR), b.z1)))
    canvas.shade(polygons, strength)


def _scene(rng: np.random.Generator, width: int, height: int, zoom: float,
           moving_share: float = 0.6) -> _Scene:
    """Draw every random decision of a scene from ``rng``."""
    focal = width * rng.uniform(0.75, 1.2)
    horizon = height * rng.uniform(0.36, 0.56)
    cx = width * rng.uniform(0.4, 0.6)
    # zoom: a window of a zoom-times larger frame, at a random place in it.
    off_x = rng.uniform(0.0, (zoom - 1.0) * width)
    off_y = rng.uniform(0.0, (zoom - 1.0) * height)
    camera = _Camera(focal * zoom, cx * zoom - off_x, horizon * zoom - off_y,
                     rng.uniform(0.8, 2.1))
    sun = rng.uniform(0.75, 1.2)
    side_light = rng.uniform(0.55, 1.0)
    sun_side = -1.0 if rng.random() < 0.5 else 1.0
    light = _Light(
        toward_camera=sun * rng.uniform(0.8, 1.0),
        facing_right=sun * (1.0 if sun_side < 0 else side_light),
        facing_left=sun * (side_light if sun_side < 0 else 1.0),
        facing_up=sun * rng.uniform(0.9, 1.1),
        haze_bgr=_jitter(rng, (205, 200, 195), 20),
        haze_distance=rng.uniform(120.0, 500.0))
    street = _layout(rng)
    buildings, boundaries = _buildings(rng, street)
    sky_seed, ground_seed, skyline_seed, boundary_seed = rng.integers(0, 2 ** 31, 4)
    shadow = rng.uniform(0.5, 0.85) if rng.random() < 0.6 else 1.0

    def draw_background(canvas: _Canvas, cam: _Camera) -> None:
        _sky(canvas, cam, np.random.default_rng(sky_seed))
        _skyline(canvas, cam, light, street, np.random.default_rng(skyline_seed))
        _ground(canvas, cam, light, street, np.random.default_rng(ground_seed))
        if shadow < 1.0:
            _shadows(canvas, cam, street, buildings, sun_side, shadow)
        boundary_rng = np.random.default_rng(boundary_seed)
        for piece in boundaries:
            side, x, z0, z1 = piece[1:5]
            if piece[0] == C.VEGETATION:
                # Gardens behind the line: trees further out than the hedge.
                for z in np.arange(z0 + 2.0, z1, 6.0):
                    _Tree(boundary_rng, x + side * 4.0, z).draw(canvas, cam, light, 0.0)
        for b in buildings:
            _draw_building(canvas, cam, light, b)
        for piece in sorted(boundaries, key=lambda p: -p[3]):
            _draw_boundary(canvas, cam, light, boundary_rng, piece)

    items: list[_Item] = []
    far = min(street.end - 5.0, 90.0)
    walks = [(street.road_left, street.walk_left), (street.road_right, street.walk_right)]
    # Street furniture along the curbs.
    for inner, outer in walks:
        toward = 1.0 if inner < outer else -1.0
        toward = -toward
        curb_x = inner - toward * 0.5 if inner != outer else inner - toward * 0.3
        if rng.random() < 0.8:
            step = rng.uniform(18.0, 35.0)
            for z in np.arange(rng.uniform(3.0, step), far, step):
                items.append(_LampPost(rng, curb_x, z, toward))
        if rng.random() < 0.55 and inner != outer:
            step = rng.uniform(7.0, 15.0)
            tree_x = curb_x - toward * rng.uniform(0.3, 1.0)
            for z in np.arange(rng.uniform(3.0, step), far, step):
                if rng.random() < 0.85:
                    items.append(_Tree(rng, tree_x, z))
        for _ in range(int(rng.integers(0, 3))):
            items.append(_Sign(rng, curb_x - toward * 0.2, rng.uniform(4.0, 45.0)))
        if rng.random() < 0.5:
            for _ in range(int(rng.integers(1, 3))):
                items.append(_TrafficLight(rng, curb_x, rng.uniform(6.0, 40.0), toward))
    # Vehicles: right lanes drive away, left lanes come towards the camera.
    lanes = max(1, int(round((street.road_right - street.road_left) / street.lane_width)))
    for lane in range(lanes):
        x = street.road_left + (lane + 0.5) * street.lane_width
        oncoming = lanes > 1 and lane < lanes // 2
        parked_lane = lanes >= 3 and lane in (0, lanes - 1) and rng.random() < 0.5
        z = rng.uniform(3.0, 12.0)
        while z < far:
            kind = C.CAR
            roll = rng.random()
            if roll < 0.1:
                kind = C.BUS
            elif roll < 0.22:
                kind = C.TRUCK
            moving = not parked_lane and rng.random() < moving_share
            speed = rng.uniform(4.0, 12.0) * (-1.0 if oncoming else 1.0)
            track = _Track(x + rng.uniform(-0.3, 0.3), z, vz=speed if moving else 0.0,
                           low=_MOVER_Z_MIN, high=_MOVER_Z_MAX)
            if rng.random() < 0.6:
                items.append(_Vehicle(rng, kind, track, oncoming, moving))
            z += rng.uniform(6.0, 25.0) + (12.0 if kind != C.CAR else 5.0)
    # Pedestrians on the sidewalks and on the road, cyclists crossing, parked bicycles.
    for inner, outer in walks:
        if inner == outer:
            continue
        lo, hi = min(inner, outer), max(inner, outer)
        for _ in range(int(rng.integers(0, 7))):
            moving = rng.random() < moving_share
            track = _Track(rng.uniform(lo + 0.3, hi - 0.3), rng.uniform(3.0, 60.0),
                           vz=rng.choice((-1.0, 1.0)) * rng.uniform(0.8, 1.8) if moving else 0.0,
                           low=_MOVER_Z_MIN, high=70.0)
            items.append(_Pedestrian(rng, track, moving))
        if rng.random() < 0.25:
            track = _Track(rng.uniform(lo + 0.5, hi - 0.5), rng.uniform(4.0, 30.0))
            items.append(_Bicycle(rng, track, ridden=False))
    road_lo, road_hi = street.road_left - 2.0, street.road_right + 2.0
    for _ in range(int(rng.integers(0, 3))):
        speed = rng.choice((-1.0, 1.0)) * rng.uniform(0.9, 1.6)
        track = _Track(rng.uniform(road_lo, road_hi), rng.uniform(5.0, 35.0), vx=speed,
                       low=road_lo, high=road_hi)
        items.append(_Pedestrian(rng, track, moving=True))
    for _ in range(int(rng.integers(0, 3))):
        speed = rng.choice((-1.0, 1.0)) * rng.uniform(3.0, 6.0)
        track = _Track(rng.uniform(road_lo, road_hi), rng.uniform(5.0, 40.0), vx=speed,
                       low=road_lo, high=road_hi)
        items.append(_Bicycle(rng, track, ridden=True))
    return _Scene(camera, light, [draw_background], items)


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


def _draw_items(canvas: _Canvas, cam: _Camera, light: _Light, items: list[_Item],
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
    scene = _scene(rng, width, height, zoom)
    finish = _Finish.draw(rng)
    bgr = np.empty((height, width, 3), np.uint8)
    labels = np.empty((height, width), np.uint8)
    canvas = _Canvas(bgr, labels, label_colors=label_colors, photometric=photometric)
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

    item: _Item
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
        scene = _scene(rng, width, height, 1.0, moving_share=0.85)
        finish = _Finish.draw(rng)
        finish = dataclasses.replace(finish, blur_sigma=min(finish.blur_sigma, 0.8),
                                     noise_sigma=min(finish.noise_sigma, 4.0))
        self._finish = finish
        self._light = scene.light
        self._camera = scene.camera.shifted(self._margin_x, self._margin_y)
        full_h, full_w = height + 2 * self._margin_y, width + 2 * self._margin_x
        bgr = np.empty((full_h, full_w, 3), np.uint8)
        labels = np.empty((full_h, full_w), np.uint8)
        canvas = _Canvas(bgr, labels, label_colors=False, photometric=True)
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

    def _sprite(self, item: _Item, shape: tuple[int, int], finish: _Finish,
                rng: np.random.Generator) -> '_Sprite | None':
        bgr = np.zeros(shape + (3,), np.uint8)
        # 255 marks pixels the object does not cover.
        labels = np.full(shape, 255, np.uint8)
        item.draw(_Canvas(bgr, labels, label_colors=False, photometric=True), self._camera,
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
        canvas = _Canvas(bgr, labels, label_colors=False, photometric=True)
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
