"""
The tracking options, defined once: the node's parameters and the command line's flags.

:data:`TRACK_OPTIONS` (name, flag, default, range, meaning; ByteTrack's own named as roboflow
``trackers`` names them) and :class:`TrackSettings`, their values, which make a
:class:`~seg_ros.core.track.bytetrack.ByteTracker`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from seg_ros.core.track.bytetrack import ByteTracker


@dataclass(frozen=True)
class TrackOption:
    """One tracking option: node parameter ``name``, command-line ``flag``, range, meaning."""

    name: str
    flag: str
    default: Any
    minimum: float
    maximum: float
    help_text: str


#: The tracking options (a node parameter each; ``flag`` the command line's).
TRACK_OPTIONS: tuple[TrackOption, ...] = (
    TrackOption('tracking', '--no-tracking', True, 0, 1,
                'Instance ids are track ids that last across frames (ByteTrack); false: 1..N '
                'afresh every frame.'),
    TrackOption('track_buffer', '--track-buffer', 30, 0, 100_000,
                'Frames a track that is no longer seen is kept, to take its object back with '
                'its id.'),
    TrackOption('track_activation_threshold', '--track-activation-threshold', 0.5, 0.0, 1.0,
                'Lowest score of a detection that starts a track (connected components score '
                '1).'),
    TrackOption('high_conf_det_threshold', '--high-conf-det-threshold', 0.5, 0.0, 1.0,
                "ByteTrack's split: detections scoring at least this are matched first, the "
                'others only to the tracks left (they start none).'),
    TrackOption('minimum_iou_threshold', '--minimum-iou-threshold', 0.1, 0.0, 1.0,
                "Lowest IoU of a detection's box with a track's predicted box to match them."),
    TrackOption('minimum_consecutive_frames', '--minimum-consecutive-frames', 1, 1, 1000,
                'Consecutive frames an object must be seen before it gets an id; 1: on its '
                'first frame. Before, it is in the instances with an empty id and not in the '
                'instance map.'),
    TrackOption('track_reset_gap', '--track-reset-gap', 2.0, 0.01, 3600.0,
                'Seconds between two frame stamps beyond which the tracks start afresh (a '
                'camera that stopped); stamps going back do so too (a bag played again).'),
)
TRACK_OPTION_NAMES = tuple(option.name for option in TRACK_OPTIONS)


@dataclass(frozen=True)
class TrackSettings:
    """The values of :data:`TRACK_OPTIONS` (see each option's help)."""

    tracking: bool = True
    track_buffer: int = 30
    track_activation_threshold: float = 0.5
    high_conf_det_threshold: float = 0.5
    minimum_iou_threshold: float = 0.1
    minimum_consecutive_frames: int = 1
    track_reset_gap: float = 2.0

    @classmethod
    def from_values(cls, values: dict) -> TrackSettings:
        """Return the settings among ``values`` (node parameters or parsed arguments)."""
        return cls(**{spec.name: values[spec.name] for spec in fields(cls)})

    def tracker(self, first_id: int = 1) -> ByteTracker:
        """Return a new tracker with these settings (``track_buffer`` counts frames)."""
        return ByteTracker(lost_track_buffer=self.track_buffer, frame_rate=30.0,
                           track_activation_threshold=self.track_activation_threshold,
                           minimum_consecutive_frames=self.minimum_consecutive_frames,
                           minimum_iou_threshold=self.minimum_iou_threshold,
                           high_conf_det_threshold=self.high_conf_det_threshold,
                           reset_gap=self.track_reset_gap, first_frame_ids=True,
                           first_id=first_id)
