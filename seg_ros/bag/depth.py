"""
Depth in ``seg-ros bag``: a camera's depth and camera_info topics, paired with its frames.

As the node pairs them (``seg_ros/ros/depth_outputs.py``): a frame takes the depth image whose
header stamp is equal, or nearest within ``--depth-max-skew``; the newest camera_info gives the
colour camera's intrinsics. A bag holds the depth image of a frame before or after the frame:
:meth:`BagDepth.pairing` says whether it is here, may still come (the frame then waits, see
``segment_bag.copy_and_segment``) or will not (a depth image later than the frame's stamp plus
the skew has been read, or the bag ended): that frame gets no 3-D outputs, counted with the
reason, and everything else as usual.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from seg_ros.core.geometry.camera import Intrinsics
from seg_ros.core.geometry.depth import DEPTH_ENCODINGS, depth_to_metres
from seg_ros.ros.image_conversion import image_to_array, ImageConversionError

# Depth images kept for pairing, newest last (a 30 Hz camera: about a second).
DEPTH_HISTORY = 32
FOUND, WAIT, NONE = 'found', 'wait', 'none'


def stamp_ns(header) -> int:
    """Return a header's stamp as integer nanoseconds."""
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


@dataclass
class BagDepth:
    """One camera's depth and camera_info topics, and what became of its frames' depth."""

    depth_topic: str
    info_topic: str
    max_skew_s: float
    depth_range: tuple[float, float]
    images: deque = field(default_factory=lambda: deque(maxlen=DEPTH_HISTORY))
    info: object = None
    problems: dict[str, int] = field(default_factory=dict)

    def add_depth(self, msg) -> None:
        """Keep a depth image (a rosbags ``sensor_msgs/Image``)."""
        self.images.append((stamp_ns(msg.header), msg))

    def add_info(self, msg) -> None:
        """Keep the newest camera_info."""
        self.info = msg

    def pairing(self, frame_ns: int, ended: bool = False) -> tuple[str, object]:
        """
        Return (FOUND, the depth image), (WAIT, None) or (NONE, None) for a frame's stamp.

        :param ended: the bag has no more messages: nothing is still to come.
        """
        skew_ns = int(round(self.max_skew_s * 1e9))
        best = min(self.images, default=None, key=lambda entry: abs(entry[0] - frame_ns))
        if best is not None and abs(best[0] - frame_ns) <= skew_ns:
            return FOUND, best[1]
        newest = self.images[-1][0] if self.images else None
        if ended or (newest is not None and newest > frame_ns + skew_ns):
            return NONE, None
        return WAIT, None

    def count(self, problem: str) -> None:
        """Count one frame that got no 3-D outputs, and why."""
        self.problems[problem] = self.problems.get(problem, 0) + 1

    def metres(self, depth_msg) -> tuple[np.ndarray, Intrinsics] | None:
        """
        Return the depth in metres and the colour camera's intrinsics, or None (counted).

        The intrinsics are the camera_info's as it gives them (frame_points and frame_objects
        scale them to the depth and the class map).
        """
        info = self.info
        if info is None or not info.width or not info.height:
            self.count(f'no camera_info on {self.info_topic}')
            return None
        try:
            camera = Intrinsics.from_k(list(info.k), int(info.width), int(info.height))
            if depth_msg.encoding not in DEPTH_ENCODINGS:
                raise ImageConversionError(f'encoding {depth_msg.encoding!r} is not a depth '
                                           f'encoding ({", ".join(DEPTH_ENCODINGS)})')
            depth = image_to_array(depth_msg)
            camera.scaled_to(depth.shape[1], depth.shape[0])  # the same camera, or raises
            return depth_to_metres(depth, self.depth_range, depth_msg.encoding), camera
        except ValueError as error:  # ImageConversionError is one
            self.count(f'depth image or camera_info rejected: {error}')
            return None
