"""
The street around the objects: sky, ground, buildings, boundaries, skyline, shadows; a scene.

:func:`build_scene` draws every random decision of one scene: camera, light, the street's
cross-section, the buildings and what stands in the street.
"""

import dataclasses

import cv2
import numpy as np

from seg_ros.data.scene_classes import C, CLASS_COLORS_BGR
from seg_ros.data.scene_drawing import (BGR, Camera, Canvas, jitter, Light, pick, quad_x,
                                        quad_y, quad_z, Z_NEAR)
from seg_ros.data.scene_objects import (Bicycle, Item, LampPost, Pedestrian, Sign, Track,
                                        TrafficLight, Tree, Vehicle)

# Moving objects stay at least this far ahead (metres): nearer, a car fills the frame.
MOVER_Z_MIN = 4.0
MOVER_Z_MAX = 110.0

_FACADE_COLORS: tuple[BGR, ...] = (
    (150, 170, 190), (70, 90, 150), (190, 200, 205), (120, 120, 125), (100, 130, 170),
    (60, 60, 110), (175, 190, 215), (140, 140, 150), (90, 100, 95), (200, 215, 225))


@dataclasses.dataclass
class Scene:
    camera: Camera
    light: Light
    background: list        # callables drawing sky, ground, shadows and buildings, in order
    items: list[Item]      # objects standing in the street


def _sky(canvas: Canvas, cam: Camera, rng: np.random.Generator) -> None:
    """Fill the frame with a vertical sky gradient and soft clouds (all Sky)."""
    height, width = canvas.labels.shape
    style = rng.random()
    if style < 0.55:
        top, horizon = jitter(rng, (190, 130, 70), 25), jitter(rng, (235, 215, 195), 15)
    elif style < 0.85:
        top, horizon = jitter(rng, (175, 170, 165), 25), jitter(rng, (215, 215, 210), 15)
    else:
        top, horizon = jitter(rng, (140, 110, 100), 20), jitter(rng, (140, 190, 235), 20)
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


def _ground(canvas: Canvas, cam: Camera, light: Light, street: _Street,
            rng: np.random.Generator) -> None:
    """Terrain, sidewalks with curbs, the road and its markings."""
    z_end = street.end
    height = canvas.labels.shape[0]
    # The nearest ground row visible; start the ground a little nearer still.
    z_bottom = cam.focal * cam.height / max(height - cam.cy, 1.0)
    z_near = min(max(Z_NEAR, 0.7 * z_bottom), 0.5 * z_end)

    def quad(x0: float, x1: float, y: float = 0.0, z0: float = z_near,
             z1: float = z_end) -> np.ndarray:
        return cam.project(quad_y(y, x0, x1, z0, z1))

    grass = jitter(rng, (60, 140, 120), 25)
    canvas.polygons([quad(-100.0, 100.0)], C.TERRAIN, light.paint(grass, 15.0, 0.9))
    # Asphalt: any grey level, only a slight tint.
    grey = rng.uniform(70.0, 140.0)
    asphalt = jitter(rng, (int(grey) + 4, int(grey), int(grey)), 8)
    paving = jitter(rng, ((150, 150, 155), (140, 160, 175), (110, 120, 150))[
        int(rng.integers(3))], 20)
    for inner, outer in ((street.road_left, street.walk_left),
                         (street.road_right, street.walk_right)):
        if inner == outer:
            continue
        canvas.polygons([quad(min(inner, outer), max(inner, outer), street.curb)], C.SIDEWALK,
                        light.paint(paving, 10.0, light.facing_up))
        canvas.polygons([cam.project(quad_x(inner, 0.0, street.curb, z_near, z_end))],
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
                        C.ROAD, light.paint(jitter(rng, asphalt, 20), z))
    paint = light.paint(jitter(rng, (225, 225, 225) if rng.random() < 0.8 else (40, 190, 230),
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


def _draw_building(canvas: Canvas, cam: Camera, light: Light, b: _Building) -> None:
    z0 = max(b.z0, Z_NEAR)
    if b.z1 <= z0:
        return
    face = light.facing_right if b.side < 0 else light.facing_left
    back_x = b.facade_x + b.side * b.depth
    if b.z0 > Z_NEAR:
        canvas.polygons([cam.project(quad_z(b.z0, min(b.facade_x, back_x),
                                            max(b.facade_x, back_x), 0.0, b.height))],
                        C.BUILDING, light.paint(b.color, b.z0, light.toward_camera))
    canvas.polygons([cam.project(quad_x(b.facade_x, 0.0, b.height, z0, b.z1))], C.BUILDING,
                    light.paint(b.color, b.z0, face))
    # A darker cornice under the roof line and a plinth.
    trim = light.paint(b.color, b.z0, face * 0.7)
    canvas.polygons([cam.project(quad_x(b.facade_x, b.height - 0.5, b.height, z0, b.z1)),
                     cam.project(quad_x(b.facade_x, 0.0, 0.4, z0, b.z1))], C.BUILDING, trim)
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
        canvas.polygons([cam.project(quad_x(b.facade_x, 0.5, 2.8, z0 + 0.8, b.z1 - 0.8))],
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
                    rng.uniform(8.0, 20.0), pick(rng, _FACADE_COLORS, 20),
                    jitter(rng, (90, 75, 60), 30), floor_h, rng.uniform(0.8, 1.6), window_h,
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


def _draw_boundary(canvas: Canvas, cam: Camera, light: Light, rng: np.random.Generator,
                   piece: tuple) -> None:
    """Draw a wall, a fence or a hedge along a building line."""
    kind, side, x, z0, z1, height = piece
    z0 = max(z0, Z_NEAR)
    if z1 <= z0:
        return
    face = light.facing_right if side < 0 else light.facing_left
    if kind == C.WALL:
        color = jitter(rng, ((150, 150, 150), (120, 150, 180), (70, 90, 140))[
            int(rng.integers(3))], 20)
        canvas.polygons([cam.project(quad_x(x, 0.0, height, z0, z1))], C.WALL,
                        light.paint(color, z0, face))
        canvas.polygons([cam.project(quad_x(x, height - 0.15, height, z0, z1))], C.WALL,
                        light.paint(color, z0, face * 0.8))
        if height < cam.height:
            canvas.polygons([cam.project(quad_y(height, x + side * 0.25, x, z0, z1))], C.WALL,
                            light.paint(color, z0, light.facing_up))
    elif kind == C.FENCE:
        color = jitter(rng, ((60, 90, 120), (70, 110, 60), (140, 140, 140))[
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
            polygons.append(cam.project(quad_x(x, 0.0, height, 60.0, z1)))
        canvas.polygons(polygons, C.FENCE, paint)
        canvas.polygons([cam.project(quad_x(x, height * 0.75, height * 0.85, z0, z1)),
                         cam.project(quad_x(x, height * 0.2, height * 0.3, z0, z1))], C.FENCE,
                        light.paint(color, z0, face * 0.8))
    else:
        hedge = jitter(rng, (40, 100, 50), 20)
        canvas.polygons([cam.project(quad_x(x, 0.0, height, z0, z1))], C.VEGETATION,
                        light.paint(hedge, z0, face))
        for z in np.arange(z0, min(z1, 50.0), 0.7):
            cu, cv = cam.point(x, height, z)
            canvas.circle((cu, cv), 0.45 * cam.scale(z), C.VEGETATION,
                          light.paint(jitter(rng, hedge, 20), z, face))


def _skyline(canvas: Canvas, cam: Camera, light: Light, street: _Street,
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
            canvas.polygons([cam.project(quad_z(z, x0, x1, 0.0, h))], C.BUILDING,
                            light.paint(pick(rng, _FACADE_COLORS, 25), z))
    else:
        green = jitter(rng, (50, 100, 60), 20)
        canvas.polygons([cam.project(quad_z(z, -3.0 * z, 3.0 * z, 0.0, 4.0))], C.VEGETATION,
                        light.paint(green, z))
        s = cam.scale(z)
        for x in np.arange(-1.0 * z, 1.0 * z, rng.uniform(3.0, 8.0)):
            cu, cv = cam.point(x, 4.0, z)
            canvas.circle((cu, cv), rng.uniform(3.0, 7.0) * s, C.VEGETATION,
                          light.paint(jitter(rng, green, 20), z))


def _shadows(canvas: Canvas, cam: Camera, street: _Street, buildings: list[_Building],
             sun_side: float, strength: float) -> None:
    """Shadows the buildings on the sunny side cast across the street."""
    polygons = []
    for b in buildings:
        if b.side != sun_side or b.z1 <= Z_NEAR:
            continue
        reach = min(b.height * 0.6, abs(street.line_right - street.line_left))
        x_a, x_b = b.facade_x, b.facade_x - sun_side * reach
        polygons.append(cam.project(quad_y(0.0, min(x_a, x_b), max(x_a, x_b),
                                           max(b.z0, Z_NEAR), b.z1)))
    canvas.shade(polygons, strength)


def build_scene(rng: np.random.Generator, width: int, height: int, zoom: float,
                moving_share: float = 0.6) -> Scene:
    """Draw every random decision of a scene from ``rng``."""
    focal = width * rng.uniform(0.75, 1.2)
    horizon = height * rng.uniform(0.36, 0.56)
    cx = width * rng.uniform(0.4, 0.6)
    # zoom: a window of a zoom-times larger frame, at a random place in it.
    off_x = rng.uniform(0.0, (zoom - 1.0) * width)
    off_y = rng.uniform(0.0, (zoom - 1.0) * height)
    camera = Camera(focal * zoom, cx * zoom - off_x, horizon * zoom - off_y,
                    rng.uniform(0.8, 2.1))
    sun = rng.uniform(0.75, 1.2)
    side_light = rng.uniform(0.55, 1.0)
    sun_side = -1.0 if rng.random() < 0.5 else 1.0
    light = Light(
        toward_camera=sun * rng.uniform(0.8, 1.0),
        facing_right=sun * (1.0 if sun_side < 0 else side_light),
        facing_left=sun * (side_light if sun_side < 0 else 1.0),
        facing_up=sun * rng.uniform(0.9, 1.1),
        haze_bgr=jitter(rng, (205, 200, 195), 20),
        haze_distance=rng.uniform(120.0, 500.0))
    street = _layout(rng)
    buildings, boundaries = _buildings(rng, street)
    sky_seed, ground_seed, skyline_seed, boundary_seed = rng.integers(0, 2 ** 31, 4)
    shadow = rng.uniform(0.5, 0.85) if rng.random() < 0.6 else 1.0

    def draw_background(canvas: Canvas, cam: Camera) -> None:
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
                    Tree(boundary_rng, x + side * 4.0, z).draw(canvas, cam, light, 0.0)
        for b in buildings:
            _draw_building(canvas, cam, light, b)
        for piece in sorted(boundaries, key=lambda p: -p[3]):
            _draw_boundary(canvas, cam, light, boundary_rng, piece)

    items: list[Item] = []
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
                items.append(LampPost(rng, curb_x, z, toward))
        if rng.random() < 0.55 and inner != outer:
            step = rng.uniform(7.0, 15.0)
            tree_x = curb_x - toward * rng.uniform(0.3, 1.0)
            for z in np.arange(rng.uniform(3.0, step), far, step):
                if rng.random() < 0.85:
                    items.append(Tree(rng, tree_x, z))
        for _ in range(int(rng.integers(0, 3))):
            items.append(Sign(rng, curb_x - toward * 0.2, rng.uniform(4.0, 45.0)))
        if rng.random() < 0.5:
            for _ in range(int(rng.integers(1, 3))):
                items.append(TrafficLight(rng, curb_x, rng.uniform(6.0, 40.0), toward))
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
            track = Track(x + rng.uniform(-0.3, 0.3), z, vz=speed if moving else 0.0,
                          low=MOVER_Z_MIN, high=MOVER_Z_MAX)
            if rng.random() < 0.6:
                items.append(Vehicle(rng, kind, track, oncoming, moving))
            z += rng.uniform(6.0, 25.0) + (12.0 if kind != C.CAR else 5.0)
    # Pedestrians on the sidewalks and on the road, cyclists crossing, parked bicycles.
    for inner, outer in walks:
        if inner == outer:
            continue
        lo, hi = min(inner, outer), max(inner, outer)
        for _ in range(int(rng.integers(0, 7))):
            moving = rng.random() < moving_share
            track = Track(rng.uniform(lo + 0.3, hi - 0.3), rng.uniform(3.0, 60.0),
                          vz=rng.choice((-1.0, 1.0)) * rng.uniform(0.8, 1.8) if moving else 0.0,
                          low=MOVER_Z_MIN, high=70.0)
            items.append(Pedestrian(rng, track, moving))
        if rng.random() < 0.25:
            track = Track(rng.uniform(lo + 0.5, hi - 0.5), rng.uniform(4.0, 30.0))
            items.append(Bicycle(rng, track, ridden=False))
    road_lo, road_hi = street.road_left - 2.0, street.road_right + 2.0
    for _ in range(int(rng.integers(0, 3))):
        speed = rng.choice((-1.0, 1.0)) * rng.uniform(0.9, 1.6)
        track = Track(rng.uniform(road_lo, road_hi), rng.uniform(5.0, 35.0), vx=speed,
                      low=road_lo, high=road_hi)
        items.append(Pedestrian(rng, track, moving=True))
    for _ in range(int(rng.integers(0, 3))):
        speed = rng.choice((-1.0, 1.0)) * rng.uniform(3.0, 6.0)
        track = Track(rng.uniform(road_lo, road_hi), rng.uniform(5.0, 40.0), vx=speed,
                      low=road_lo, high=road_hi)
        items.append(Bicycle(rng, track, ridden=True))
    return Scene(camera, light, [draw_background], items)
