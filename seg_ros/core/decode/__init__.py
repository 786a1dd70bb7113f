"""
The decode room: network outputs to results.

:mod:`.semantic` (scores or a fused class map to a class map at model or frame size),
:mod:`.instances` (the :class:`Instances` parallel arrays, the instance map, JSON),
:mod:`.instance_decoders` (YOLO-seg, Mask R-CNN, connected components of a class map).

May import: :mod:`seg_ros.core.errors`, :mod:`seg_ros.core.model`. Not backends, render, loading.
"""
