"""ENet's Cityscapes classes as the synthetic scenes draw them: indices, names, colours."""

import enum

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
