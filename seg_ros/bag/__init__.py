"""
``seg-ros bag``: segment the image topics of a rosbag2 bag into a bag holding the outputs.

Pure Python through ``rosbags`` (no ROS installation needed): :mod:`seg_ros.bag.messages` builds
the node's output messages, :mod:`seg_ros.bag.reading` reads a bag (and what is left of a
truncated one), :mod:`seg_ros.bag.segment_bag` is the command.
"""
