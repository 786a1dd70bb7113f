"""
The model room: what a model file is and what it expects, before any runtime opens it.

:mod:`.description` (the frozen :class:`ModelDescription`: task, input size and layout, channel
order, normalisation, output layout, classes), :mod:`.labels` (class names and colours),
:mod:`.preprocess` (a frame to the network's input tensor, as the description says),
:mod:`.files` and :mod:`.onnx_header` (reading an ONNX file's inputs, outputs and metadata),
:mod:`.torch7_file` and :mod:`.torch7_onnx` (a Torch7 ``.net`` read and converted to ONNX).

May import: :mod:`seg_ros.core.errors`. Nothing of the other rooms.
"""
