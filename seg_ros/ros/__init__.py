"""Thin ROS 2 adapters around :mod:`seg_ros.core`."""
