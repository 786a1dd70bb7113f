"""
Segmentation core: one BGR frame to a class map, instances and pictures, with no ROS dependency.

The rooms, bottom up; each imports only the rooms above it in this list (never one below):

1. :mod:`.errors`, :mod:`.stats`, :mod:`.latest_frame`, :mod:`.warm_up`: small shared
   foundations (the warm-up frame is a drawn street scene of the core's own).
2. :mod:`.model`: descriptions, labels, pre-processing, reading and converting model files;
   :mod:`.options` beside it: the choices and the model options (node parameter, description
   key, CLI flag), each defined once.
3. :mod:`.decode`: network outputs to class maps and instances.
4. :mod:`.backends`: one module per runtime (OpenCV DNN, ONNX Runtime, OpenVINO).
5. :mod:`.render`: colour mask, overlay, instance drawing, legend.
   :mod:`.geometry` (beside it, importing only :mod:`.errors`): depth, intrinsics, labelled 3-D
   points, the organized cloud, objects in 3-D, the occupancy grid.
   :mod:`.track` (beside it, importing nothing of seg_ros): ByteTrack identities across frames.
6. :mod:`.loading`: opening a model (describe, convert and cache, open on a backend, verify).
7. :mod:`.segmenter`: the :class:`Segmenter` that ties them together for one frame.

The synthetic street scenes live outside the core, in :mod:`seg_ros.data`; the core imports
nothing from there, nor from the ROS, bag, offline or tools rooms (``test/test_imports.py``).
"""
