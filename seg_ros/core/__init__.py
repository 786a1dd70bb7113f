"""Segmentation core: model loading, inference and rendering, with no ROS dependency."""
