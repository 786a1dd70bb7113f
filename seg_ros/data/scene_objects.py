"""
What stands in the street: vehicles, pedestrians, cyclists, trees, lamp posts, signs, lights.

Each object is an :class:`Item` on a :class:`Track` (where it is at time t), drawn far to near.
"""

import dataclasses
import math

import numpy as np

from seg_ros.data.scene_classes import C
from seg_ros.data.scene_drawing import (BGR, Camera, Canvas, draw_box, jitter, Light, pick,
                                        quad_x, quad_y, quad_z, Z_NEAR)

# Appearance palettes (B, G, R), jittered per object.
_CAR_COLORS: tuple[BGR, ...] = (
    (235, 235, 235), (25, 25, 28), (160, 160, 165), (110, 110, 115), (40, 40, 170),
    (140, 70, 30), (60, 90, 40), (200, 200, 190), (30, 120, 200), (90, 40, 30), (20, 20, 90))
_BUS_COLORS: tuple[BGR, ...] = (
    (40, 40, 200), (30, 190, 230), (230, 230, 230), (160, 90, 30), (60, 130, 40))
_TRUCK_COLORS: tuple[BGR, ...] = (
    (230, 230, 230), (60, 60, 180), (160, 100, 40), (40, 160, 210), (90, 90, 90))
_CLOTH_COLORS: tuple[BGR, ...] = (
    (30, 30, 30), (120, 60, 20), (200, 200, 200), (40, 40, 160), (60, 120, 60),
    (150, 150, 150), (20, 80, 180), (140, 40, 120), (80, 60, 50), (180, 130, 60))
_SKIN_COLORS: tuple[BGR, ...] = (
    (150, 180, 220), (120, 150, 200), (80, 110, 160), (50, 70, 110), (140, 170, 205))
_HAIR_COLORS: tuple[BGR, ...] = ((20, 20, 25), (30, 50, 80), (60, 110, 160), (160, 170, 180))


@dataclasses.dataclass(frozen=True)
class Track:
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


class Item:
    """An object standing in the street, drawn far to near."""

    track: Track
    moving: bool = False

    def depth(self, t: float) -> float:
        return self.track.at(t)[1]

    def draw(self, canvas: Canvas, cam: Camera, light: Light, t: float) -> None:
        raise NotImplementedError


class Vehicle(Item):
    """Car, truck or bus seen from behind (driving away) or from the front (oncoming)."""

    def __init__(self, rng: np.random.Generator, kind: int, track: Track, oncoming: bool,
                 moving: bool) -> None:
        self.kind = kind
        self.track = track
        self.oncoming = oncoming
        self.moving = moving
        if kind == C.CAR:
            self.width, self.length = rng.uniform(1.65, 1.95), rng.uniform(3.8, 4.9)
            self.height = rng.uniform(1.35, 1.6)
            self.color = pick(rng, _CAR_COLORS, 15)
        elif kind == C.BUS:
            self.width, self.length, self.height = 2.5, rng.uniform(10, 13), rng.uniform(2.9, 3.3)
            self.color = pick(rng, _BUS_COLORS, 15)
        else:
            self.width, self.length = rng.uniform(2.2, 2.5), rng.uniform(6.5, 10)
            self.height = rng.uniform(2.8, 3.8)
            self.color = pick(rng, _TRUCK_COLORS, 15)
            self.cab_color = pick(rng, _CAR_COLORS, 15)
        self.glass = jitter(rng, (55, 45, 40), 15)

    def draw(self, canvas: Canvas, cam: Camera, light: Light, t: float) -> None:
        xc, z0 = self.track.at(t)
        x0, x1 = xc - self.width / 2, xc + self.width / 2
        z1 = z0 + self.length
        if z0 < Z_NEAR:
            return
        canvas.shade([cam.project(quad_y(0.0, x0 - 0.15, x1 + 0.15, z0 - 0.2, z1))], 0.45)
        tyre = light.paint((25, 25, 28), z0)
        # Wheels under the body: visible in the ground clearance and on the visible side.
        wheel_r = 0.33 if self.kind == C.CAR else 0.5
        axles = (z0 + 0.8, z1 - 0.9)
        canvas.polygons([cam.project(quad_z(axles[0], x0 + 0.05, x0 + 0.3, 0, wheel_r)),
                         cam.project(quad_z(axles[0], x1 - 0.3, x1 - 0.05, 0, wheel_r))],
                        self.kind, tyre)
        clearance = 0.22 if self.kind == C.CAR else 0.4
        kind = self.kind
        if kind == C.CAR:
            body_top = clearance + 0.55 * (self.height - clearance)
            draw_box(canvas, cam, light, (x0, x1, clearance, body_top, z0, z1), kind,
                     self.color)
            cabin = (x0 + 0.12, x1 - 0.12, body_top, self.height,
                     z0 + 0.22 * self.length, z1 - 0.3 * self.length)
            if self.oncoming:
                cabin = (cabin[0], cabin[1], body_top, self.height,
                         z0 + 0.3 * self.length, z1 - 0.22 * self.length)
            draw_box(canvas, cam, light, cabin, kind, self.glass)
            # Roof and pillars in body colour keep the cabin from reading as one dark blob.
            if self.height < cam.height:
                canvas.polygons([cam.project(quad_y(self.height, cabin[0], cabin[1],
                                                    cabin[4], cabin[5]))], kind,
                                light.paint(self.color, cabin[4], light.facing_up))
            pillar = 0.08
            for px in (cabin[0], cabin[1] - pillar):
                canvas.polygons([cam.project(quad_z(cabin[4], px, px + pillar, body_top,
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
                draw_box(canvas, cam, light, cargo, kind, self.color)
                draw_box(canvas, cam, light, cab, kind, self.cab_color)
                canvas.polygons([cam.project(quad_z(z0, x0 + 0.2, x1 - 0.2, 1.5, 2.4))], kind,
                                light.paint(self.glass, z0))
            else:
                draw_box(canvas, cam, light, cab, kind, self.cab_color)
                draw_box(canvas, cam, light, cargo, kind, self.color)
                # Rear doors: a darker seam down the middle.
                canvas.polygons([cam.project(quad_z(z0, xc - 0.03, xc + 0.03, cargo[2] + 0.1,
                                                    self.height - 0.1))], kind,
                                light.paint(self.color, z0, 0.6 * light.toward_camera))
            lamp_y = clearance + 0.35
        else:
            draw_box(canvas, cam, light, (x0, x1, clearance, self.height, z0, z1), kind,
                     self.color)
            # Window band along the side and a large rear or front window.
            side_x = x1 if x1 < 0 else x0 if x0 > 0 else None
            if side_x is not None:
                canvas.polygons([cam.project(quad_x(side_x, 1.3, self.height - 0.35, z0 + 0.4,
                                                    z1 - 0.4))], kind,
                                light.paint(self.glass, z0))
            canvas.polygons([cam.project(quad_z(z0, x0 + 0.15, x1 - 0.15, 1.4 if self.oncoming
                                                else 1.9, self.height - 0.25))], kind,
                            light.paint(self.glass, z0))
            lamp_y = clearance + 0.4
        # Tail lights (red) or headlights (pale yellow) and a number plate.
        lamp = (170, 230, 250) if self.oncoming else (30, 30, 200)
        canvas.polygons([cam.project(quad_z(z0, x0 + 0.08, x0 + 0.35, lamp_y, lamp_y + 0.15)),
                         cam.project(quad_z(z0, x1 - 0.35, x1 - 0.08, lamp_y, lamp_y + 0.15))],
                        kind, light.paint(lamp, z0, 1.0))
        canvas.polygons([cam.project(quad_z(z0, xc - 0.26, xc + 0.26, lamp_y - 0.2,
                                            lamp_y - 0.08))], kind,
                        light.paint((225, 225, 225), z0, light.toward_camera))


class Pedestrian(Item):
    """A person standing or walking, seen from the front/back or in profile."""

    def __init__(self, rng: np.random.Generator, track: Track, moving: bool) -> None:
        self.track = track
        self.moving = moving
        self.stature = rng.uniform(1.45, 1.95)
        self.profile = track.vx != 0 or (not moving and rng.random() < 0.3)
        self.facing = 1.0 if track.vx >= 0 else -1.0
        self.phase0 = rng.uniform(0, 2 * math.pi)
        self.shirt = pick(rng, _CLOTH_COLORS, 25)
        self.trousers = pick(rng, _CLOTH_COLORS, 20)
        self.skin = pick(rng, _SKIN_COLORS, 10)
        self.hair = pick(rng, _HAIR_COLORS, 10)
        self.dress = rng.random() < 0.2
        self.bag = rng.random() < 0.3
        self.build = rng.uniform(0.85, 1.2)

    def draw(self, canvas: Canvas, cam: Camera, light: Light, t: float) -> None:
        x, z = self.track.at(t)
        if z < Z_NEAR + 1:
            return
        u, v = cam.point(x, 0.0, z)
        height = cam.scale(z) * self.stature
        stride = math.sin(self.phase0 + 7.0 * t) if self.moving else 0.0
        draw_figure(canvas, light, z, (u, v), height, self, stride, C.PERSON)


def draw_figure(canvas: Canvas, light: Light, z: float, foot: tuple[float, float],
                height: float, look: Pedestrian, stride: float, cls: int,
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


class Bicycle(Item):
    """A bicycle in profile, parked or crossing with its rider."""

    def __init__(self, rng: np.random.Generator, track: Track, ridden: bool) -> None:
        self.track = track
        self.moving = ridden
        self.frame_color = pick(rng, _CLOTH_COLORS, 30)
        self.rider = Pedestrian(rng, track, moving=False) if ridden else None
        if track.vx:
            self.facing = 1.0 if track.vx > 0 else -1.0
        else:
            self.facing = 1.0 if rng.random() < 0.5 else -1.0
        if self.rider is not None:
            self.rider.facing = self.facing
        self.phase0 = rng.uniform(0, 2 * math.pi)

    def draw(self, canvas: Canvas, cam: Camera, light: Light, t: float) -> None:
        x, z = self.track.at(t)
        if z < Z_NEAR + 1:
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


class Tree(Item):
    """A trunk and a crown of overlapping leaf clusters (all Vegetation, as in Cityscapes)."""

    def __init__(self, rng: np.random.Generator, x: float, z: float) -> None:
        self.track = Track(x, z)
        self.trunk_h = rng.uniform(1.8, 3.5)
        self.crown_r = rng.uniform(1.3, 3.2)
        self.trunk_w = rng.uniform(0.2, 0.4)
        base = np.asarray(jitter(rng, (45, 110, 70), 25), np.float64)
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
        self.bark = jitter(rng, (40, 60, 80), 15)

    def draw(self, canvas: Canvas, cam: Camera, light: Light, t: float) -> None:
        x, z = self.track.x, self.track.z
        canvas.polygons([cam.project(quad_z(z, x - self.trunk_w / 2, x + self.trunk_w / 2,
                                            0.0, self.trunk_h + self.crown_r))],
                        C.VEGETATION, light.paint(self.bark, z))
        s = cam.scale(z)
        cu, cv = cam.point(x, self.trunk_h, z)
        colors = light.paint_many(self.blob_bgr, z, self.blob_lit)
        for dx, dy, r, color in zip(self.blob_dx.tolist(), self.blob_dy.tolist(),
                                    self.blob_r.tolist(), colors):
            canvas.circle((cu + dx * s, cv - dy * s), r * s, C.VEGETATION, color)


class LampPost(Item):
    """A street lamp: pole, arm over the road and lamp head (all Pole)."""

    def __init__(self, rng: np.random.Generator, x: float, z: float, toward: float) -> None:
        self.track = Track(x, z)
        self.height = rng.uniform(5.0, 9.0)
        self.width = rng.uniform(0.12, 0.22)
        self.arm = rng.uniform(0.8, 2.0) * toward
        self.color = jitter(rng, ((120, 120, 120), (60, 70, 50), (40, 40, 40))[
            int(rng.integers(3))], 15)

    def draw(self, canvas: Canvas, cam: Camera, light: Light, t: float) -> None:
        x, z = self.track.x, self.track.z
        w = self.width
        color = light.paint(self.color, z)
        canvas.polygons([cam.project(quad_z(z, x - w / 2, x + w / 2, 0.0, self.height))],
                        C.POLE, color)
        arm_end = x + self.arm
        canvas.polygons([cam.project(quad_z(z, min(x, arm_end), max(x, arm_end),
                                            self.height - 0.12, self.height))], C.POLE, color)
        canvas.polygons([cam.project(quad_z(z, arm_end - 0.3, arm_end + 0.3,
                                            self.height - 0.25, self.height))], C.POLE, color)


class Sign(Item):
    """A traffic sign on its pole."""

    def __init__(self, rng: np.random.Generator, x: float, z: float) -> None:
        self.track = Track(x, z)
        self.height = rng.uniform(2.0, 3.0)
        self.size = rng.uniform(0.35, 0.5)
        self.shape = int(rng.integers(4))
        self.style = int(rng.integers(3))

    def draw(self, canvas: Canvas, cam: Camera, light: Light, t: float) -> None:
        x, z = self.track.x, self.track.z
        canvas.polygons([cam.project(quad_z(z, x - 0.04, x + 0.04, 0.0, self.height))],
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


class TrafficLight(Item):
    """Signal head on a pole, at the curb or hanging over the road on an arm."""

    def __init__(self, rng: np.random.Generator, x: float, z: float, toward: float) -> None:
        self.track = Track(x, z)
        self.overhead = rng.random() < 0.4
        self.arm = rng.uniform(2.0, 4.5) * toward
        self.head_y = rng.uniform(5.0, 6.0) if self.overhead else rng.uniform(2.2, 3.0)
        self.lit = int(rng.integers(3))
        self.housing = jitter(rng, ((35, 35, 35), (20, 160, 200), (50, 60, 40))[
            int(rng.integers(3))], 10)

    def draw(self, canvas: Canvas, cam: Camera, light: Light, t: float) -> None:
        x, z = self.track.x, self.track.z
        pole = light.paint((90, 90, 90), z)
        top = self.head_y + 1.0
        canvas.polygons([cam.project(quad_z(z, x - 0.08, x + 0.08, 0.0, top))], C.POLE, pole)
        head_x = x
        if self.overhead:
            head_x = x + self.arm
            canvas.polygons([cam.project(quad_z(z, min(x, head_x), max(x, head_x), top - 0.12,
                                                top))], C.POLE, pole)
        canvas.polygons([cam.project(quad_z(z, head_x - 0.18, head_x + 0.18, self.head_y,
                                            self.head_y + 0.95))], C.TRAFFIC_LIGHT,
                        light.paint(self.housing, z))
        s = cam.scale(z)
        lamps = ((40, 40, 230), (30, 190, 240), (90, 220, 40))
        for index, color in enumerate(lamps):
            lit = index == self.lit
            cu, cv = cam.point(head_x, self.head_y + 0.8 - 0.3 * index, z)
            canvas.circle((cu, cv), 0.11 * s, C.TRAFFIC_LIGHT,
                          color if lit else light.paint(tuple(c // 4 for c in color), z))
