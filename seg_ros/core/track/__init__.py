"""
The track room: identities that last across frames.

:mod:`.bytetrack` (:class:`ByteTracker`: ByteTrack's two-stage IoU association with Kalman
predictions and a buffer of lost tracks, the same ids as roboflow ``trackers``),
:mod:`.assignment` (the optimal rectangular assignment, as SciPy solves it), :mod:`.settings`
(the tracking options of the node and the command line, :class:`TrackSettings`). NumPy only.

May import: NumPy and this room; nothing else of seg_ros (it works on boxes and scores).
"""

from seg_ros.core.track.bytetrack import ByteTracker
from seg_ros.core.track.settings import TRACK_OPTIONS, TrackSettings

__all__ = ['ByteTracker', 'TRACK_OPTIONS', 'TrackSettings']
