"""
``seg-ros fleet``: many bags segmented on Ray, each into the bag ``seg-ros bag`` writes for it.

:mod:`seg_ros.fleet.options` the command's options (no Ray import: ``--help`` works without it),
:mod:`seg_ros.fleet.inputs` which bags the inputs hold, :mod:`seg_ros.fleet.parts` the chunk files
a run keeps, :mod:`seg_ros.fleet.worker` the Ray actor that loads the model once,
:mod:`seg_ros.fleet.merge` the output bag from its input and its chunks,
:mod:`seg_ros.fleet.run` the command.
"""
