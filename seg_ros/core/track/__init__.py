"""
The track room: identities that last across frames.

:mod:`.bytetrack` (:class:`ByteTracker`: ByteTrack's two-stage IoU association with Kalman
predictions and a buffer of lost tracks, the same ids as roboflow ``trackers``),
:mod:`.assignment` (the optimal rectangular assignment, as SciPy solves it). NumPy only.

May import: NumPy and this room; nothing else of seg_ros (it works on boxes and scores).
"""

from seg_ros.core.track.bytetrack import ByteTracker

__all__ = ['ByteTracker']
