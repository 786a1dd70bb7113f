"""
The offline command line's rooms (``seg-ros``, :mod:`seg_ros.cli`): the core, without ROS.

:mod:`.model_options` (the model flags from :data:`seg_ros.core.options.MODEL_OPTIONS`, the
segmenter, errors naming the flags; shared with ``seg-ros bag``), :mod:`.inputs` (files,
folders, unique output names, the output folder), :mod:`.video` (frame selection, the partial
overlay video), :mod:`.progress` (bar or log lines, time left), :mod:`.segment` (``seg-ros
segment``), :mod:`.convert_options` and :mod:`.convert` (``seg-ros convert``: its flags,
parsed without torch, and the conversion).
"""
