"""
The render room: results to pictures.

:mod:`.color` (colour lookup table, colour mask, overlay blend), :mod:`.instances` (instance
outlines and labels on an overlay), :mod:`.legend` (a legend of the classes present).

May import: :mod:`seg_ros.core.errors`, :mod:`seg_ros.core.model`, :mod:`seg_ros.core.decode`.
"""
