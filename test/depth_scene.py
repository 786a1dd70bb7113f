"""
A synthetic RGB-D scene for the depth tests, and independent per-pixel references.

A camera 1 m above flat ground looks along ``base_link``'s x axis (its optical frame: x right,
y down, z forward); a box 3 m ahead stands on the ground. The scene is drawn analytically, pixel
by pixel, and the references (:func:`reference_points`, :func:`reference_grid`,
:func:`reference_ground_grid`) are plain Python loops over pixels: nothing here shares code with
``seg_ros.core.geometry``.
"""

import math

import numpy as np

WIDTH, HEIGHT = 64, 48
FX, FY, CX, CY = 40.0, 42.0, 32.0, 20.0
CAMERA_HEIGHT = 1.0
BOX_DISTANCE, BOX_HEIGHT = 3.0, 0.8
BOX_COLUMNS = (24, 40)          # [first, last) columns of the box's front face
SIDEWALK_COLUMNS = 12           # ground left of this column is sidewalk
ROAD, CAR, SIDEWALK, SKY = 0, 1, 2, 3
CLASS_NAMES = ['road', 'car', 'sidewalk', 'sky']
COLORS_RGB = np.array([[128, 64, 128], [0, 0, 142], [244, 35, 232], [70, 130, 180]], np.uint8)
DEPTH_RANGE = (0.3, 10.0)
# base_link -> camera_optical_frame: the camera at (0.2, 0, 1), optical z along base x.
CAMERA_TRANSLATION = (0.2, 0.0, CAMERA_HEIGHT)
CAMERA_QUATERNION = (-0.5, 0.5, -0.5, 0.5)   # x, y, z, w
# Optical axes in base_link: x_opt = -y_base, y_opt = -z_base, z_opt = x_base.
CAMERA_ROTATION = [[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]


def scene() -> tuple[np.ndarray, np.ndarray]:
    """
    Return the scene's depth in metres (float64, inf where nothing is seen) and its classes.

    :return: depth (H, W) and class ids (H, W) uint8.
    """
    depth = np.full((HEIGHT, WIDTH), math.inf)
    classes = np.full((HEIGHT, WIDTH), SKY, np.uint8)
    for v in range(HEIGHT):
        for u in range(WIDTH):
            ray_y = (v - CY) / FY
            if ray_y > 0:  # below the horizon: the ground, y = CAMERA_HEIGHT in the optical frame
                depth[v, u] = CAMERA_HEIGHT / ray_y
                classes[v, u] = SIDEWALK if u < SIDEWALK_COLUMNS else ROAD
            box_y = ray_y * BOX_DISTANCE
            if BOX_COLUMNS[0] <= u < BOX_COLUMNS[1] and \
                    CAMERA_HEIGHT - BOX_HEIGHT <= box_y <= CAMERA_HEIGHT and \
                    BOX_DISTANCE < depth[v, u]:
                depth[v, u] = BOX_DISTANCE
                classes[v, u] = CAR
    return depth, classes


def encoded_depth(encoding: str) -> np.ndarray:
    """
    Return the scene's depth as a camera driver sends it, with invalid pixels of each kind.

    16UC1: millimetres, 0 where unseen; 32FC1: metres, NaN where unseen. Both: a hole of 0 and
    one beyond ``DEPTH_RANGE`` (a 65 m / 65535 mm reading) in the road, one too close (0.1 m).
    """
    depth, _ = scene()
    if encoding == '16UC1':
        raw = np.where(np.isfinite(depth), np.round(depth * 1000), 0).astype(np.uint16)
        far = 65535
    else:
        raw = np.where(np.isfinite(depth), depth, np.nan).astype(np.float32)
        far = 65.0
    raw[40:44, 50:54] = 0
    raw[44, 2:8] = far
    raw[46, 30:34] = 100 if encoding == '16UC1' else 0.1
    if encoding == '32FC1':
        raw[42, 10] = np.inf
    return raw


def reference_points(raw: np.ndarray, classes: np.ndarray, stride: int,
                     colors_rgb: np.ndarray) -> list[tuple]:
    """
    Return the expected cloud: (x, y, z, rgb as 0x00RRGGBB int, label) per valid pixel.

    Pixels of the stride grid, row by row; z in metres from the raw value (millimetres for
    uint16); invalid: 0, NaN, inf, outside ``DEPTH_RANGE``.
    """
    expected = []
    for v in range(0, raw.shape[0], stride):
        for u in range(0, raw.shape[1], stride):
            value = raw[v, u]
            z = float(value) / 1000.0 if raw.dtype == np.uint16 else float(value)
            if not (math.isfinite(z) and z > 0 and DEPTH_RANGE[0] <= z <= DEPTH_RANGE[1]):
                continue
            label = int(classes[v, u])
            r, g, b = (int(c) for c in colors_rgb[label])
            expected.append(((u - CX) * z / FX, (v - CY) * z / FY, z, (r << 16) | (g << 8) | b,
                             label))
    return expected


def to_base(point: tuple) -> tuple[float, float, float]:
    """Return an optical-frame point in base_link, with the rotation matrix written above."""
    return tuple(sum(CAMERA_ROTATION[row][k] * point[k] for k in range(3)) +
                 CAMERA_TRANSLATION[row] for row in range(3))


def _grid(points_xy_label, resolution: float, size: tuple[float, float],
          free: set[int]) -> np.ndarray:
    width, height = round(size[0] / resolution), round(size[1] / resolution)
    cells = [[-1] * width for _ in range(height)]
    origin_y = -height * resolution / 2
    for x, y, label in points_xy_label:
        column, row = math.floor(x / resolution), math.floor((y - origin_y) / resolution)
        if 0 <= column < width and 0 <= row < height:
            if label not in free:
                cells[row][column] = 100
            elif cells[row][column] == -1:
                cells[row][column] = 0
    return np.array(cells, np.int8)


def reference_grid(points: list[tuple], resolution: float, size: tuple[float, float],
                   free: set[int]) -> np.ndarray:
    """Return the expected grid of :func:`reference_points`: origin (0, -size_y / 2)."""
    binned = []
    for x, y, z, _, label in points:
        bx, by, _ = to_base((x, y, z))
        binned.append((bx, by, label))
    return _grid(binned, resolution, size, free)


def reference_ground_grid(classes: np.ndarray, stride: int, resolution: float,
                          size: tuple[float, float], free: set[int]) -> np.ndarray:
    """Return the expected grid without depth: each pixel's ray meets the ground z = 0."""
    binned = []
    for v in range(0, classes.shape[0], stride):
        for u in range(0, classes.shape[1], stride):
            ray = ((u - CX) / FX, (v - CY) / FY, 1.0)
            direction = [sum(CAMERA_ROTATION[row][k] * ray[k] for k in range(3))
                         for row in range(3)]
            if direction[2] >= 0:
                continue
            reach = -CAMERA_TRANSLATION[2] / direction[2]
            binned.append((CAMERA_TRANSLATION[0] + reach * direction[0],
                           CAMERA_TRANSLATION[1] + reach * direction[1], int(classes[v, u])))
    return _grid(binned, resolution, size, free)


def scene_image_bgr(prototypes_rgb: np.ndarray) -> np.ndarray:
    """Return the scene's colour image: each pixel the RGB prototype of its class, as BGR."""
    _, classes = scene()
    return np.ascontiguousarray(np.asarray(prototypes_rgb, np.uint8)[classes][:, :, ::-1])


def read_ply(data: bytes) -> tuple[list[str], np.ndarray]:
    """Return a binary little-endian PLY's header lines and its vertices, read field by field."""
    header, _, body = data.partition(b'end_header\n')
    lines = header.decode('ascii').splitlines()
    types = {'float': '<f4', 'uchar': 'u1', 'ushort': '<u2'}
    fields = [(line.split()[2], types[line.split()[1]]) for line in lines
              if line.startswith('property ')]
    return lines, np.frombuffer(body, fields)
