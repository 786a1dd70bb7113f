"""
The geometry room: depth images, camera intrinsics and the class map to 3-D points and a grid.

:mod:`.camera` (pinhole intrinsics, scaled to a depth image of another resolution),
:mod:`.depth` (16UC1 millimetres / 32FC1 metres to metres, invalid depth as NaN),
:mod:`.points` (projection ``x = (u - cx) z / fx`` on a stride grid, labels sampled from the
class map, class colours packed into a float32 ``rgb``, the PointCloud2 structured array; the
organized cloud pixel-aligned with the class map), :mod:`.objects` (each instance's median
centre and 5th-95th percentile extent),
:mod:`.grid` (rigid transforms, ground-plane ray intersection, binning into an occupancy grid).
Pure NumPy, vectorised; the ROS side is :mod:`seg_ros.ros.depth_outputs`.

May import: :mod:`seg_ros.core.errors` and NumPy only (no other room, no rclpy, no OpenCV).
"""
