"""Tiny deterministic ONNX segmentation models for the tests, with NumPy references.

Every model is a 1x1 convolution from the three colour channels to ``num_classes`` scores with
integer weights and biases (a "nearest prototype colour" classifier). With ``scale=1`` and integer
means the scores are integers below 2**24, exact in float32 whatever the summation order, so
every backend must give exactly the reference class map, ties (equal scores) included: the first
maximum wins, as with ``np.argmax``.

Two kinds of model:

- "scores": float32 NCHW input as made by ``cv2.dnn.blobFromImage``, output (1, C, H, W) float32
  scores (or (1, C, H / stride, W / stride) with ``stride`` > 1).
- "fused": uint8 (1, H, W, 3) BGR input, output (1, H, W) class ids (uint8 or int64), with
  ``seg_ros.*`` metadata like the project's converter writes.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

# The models are built with onnx, an optional tool (not a rosdep key): every test module that
# uses them is skipped, with this reason, where it is missing (a robot's colcon test).
onnx = pytest.importorskip('onnx', reason='the tests build their tiny models with onnx '
                           '(pip install onnx)')
helper, TensorProto = onnx.helper, onnx.TensorProto
import onnx.numpy_helper  # noqa: E402,I100 (after the importorskip above)

OPSET = 13


def class_weights(num_classes: int, *, tie: bool = False,
                  scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """
    Return the fixed integer weights (C, 3) and biases (C,) of the test models.

    Class c is "the colour nearest to prototype mu_c": score_c = 2 mu_c . p - |mu_c|^2, linear in
    the pixel p, so a 1x1 convolution computes it and every class shows up on a varied frame.

    :param num_classes: number of classes C, 2 to 27.
    :param tie: make the last class a copy of class 0: it always ties with it and must never win.
    :param scale: the pre-processing scale the model expects; the biases are multiplied by it so
        the classes stay "nearest colour" on scaled input.
    :return: float32 weights and biases.
    """
    if not 2 <= num_classes <= 27:
        raise ValueError(f'num_classes must be 2 to 27, got {num_classes}')
    levels = np.array([40, 128, 215])
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing='ij'), axis=-1).reshape(-1, 3)
    # Stepping through the grid by 10 (coprime with 27) spreads the first few prototypes apart.
    prototypes = grid[(np.arange(num_classes) * 10) % 27]
    if tie:
        prototypes[-1] = prototypes[0]
    weights = (2 * prototypes).astype(np.float32)
    bias = (-(prototypes ** 2).sum(axis=1) * scale).astype(np.float32)
    return weights, bias


def _spatial_dims(width: int | None, height: int | None) -> tuple[int | str, int | str]:
    return (height if height else 'height', width if width else 'width')


def _add_metadata(model: onnx.ModelProto, metadata: dict[str, str]) -> None:
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key = key
        entry.value = str(value)


def _save(model: onnx.ModelProto, path: str | os.PathLike) -> str:
    onnx.checker.check_model(model)
    onnx.save(model, os.fspath(path))
    return os.fspath(path)


def make_scores_model(path: str | os.PathLike, num_classes: int = 4, *, width: int | None = None,
                      height: int | None = None, stride: int = 1, tie: bool = False,
                      scale: float = 1.0, metadata: dict[str, str] | None = None) -> str:
    """
    Write a "scores" model: float32 (1, 3, H, W) blob -> (1, C, H / stride, W / stride) scores.

    :param path: where to write the .onnx file.
    :param num_classes: number of output channels C.
    :param width: static input width, or None for a symbolic one.
    :param height: static input height, or None for a symbolic one.
    :param stride: convolution stride; the output is that much smaller than the input.
    :param tie: see :func:`class_weights`.
    :param scale: see :func:`class_weights`.
    :param metadata: extra ``metadata_props`` entries.
    :return: the path written.
    """
    weights, bias = class_weights(num_classes, tie=tie, scale=scale)
    dim_h, dim_w = _spatial_dims(width, height)
    out_h = dim_h if isinstance(dim_h, str) else -(-dim_h // stride)
    out_w = dim_w if isinstance(dim_w, str) else -(-dim_w // stride)
    if stride != 1:
        out_h = out_h if isinstance(out_h, int) else 'out_height'
        out_w = out_w if isinstance(out_w, int) else 'out_width'
    graph = helper.make_graph(
        [helper.make_node('Conv', ['input', 'weight', 'bias'], ['scores'], kernel_shape=[1, 1],
                          strides=[stride, stride])],
        'seg_ros_test_scores',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 3, dim_h, dim_w])],
        [helper.make_tensor_value_info('scores', TensorProto.FLOAT,
                                       [1, num_classes, out_h, out_w])],
        [helper.make_tensor('weight', TensorProto.FLOAT, [num_classes, 3, 1, 1],
                            weights.ravel().tolist()),
         helper.make_tensor('bias', TensorProto.FLOAT, [num_classes], bias.tolist())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)],
                              producer_name='seg_ros-tests')
    model.ir_version = 8
    _add_metadata(model, metadata or {})
    return _save(model, path)


# The labelled tiny model the node tests run (make_labelled_model): its classes, colours, size.
TINY_CLASS_NAMES = ['road', 'car', 'person', 'sky']
TINY_COLORS_RGB = np.array([[128, 64, 128], [0, 0, 142], [220, 20, 60], [70, 130, 180]], np.uint8)
TINY_WIDTH, TINY_HEIGHT = 64, 48


def make_labelled_model(folder, class_names: list[str], colors_rgb: np.ndarray) -> str:
    """
    Write ``tiny.onnx`` with its ``classes.txt`` and ``colors.txt`` into ``folder``.

    The model is a scores model (one class per name, pixels scaled by 1/255); ``colors.txt``
    holds one ``R,G,B`` line a class.

    :return: the folder, as a string.
    """
    folder = os.fspath(folder)
    make_scores_model(os.path.join(folder, 'tiny.onnx'), num_classes=len(class_names),
                      scale=1 / 255)
    with open(os.path.join(folder, 'classes.txt'), 'w') as stream:
        stream.write('\n'.join(class_names) + '\n')
    with open(os.path.join(folder, 'colors.txt'), 'w') as stream:
        lines = [','.join(str(value) for value in color) for color in colors_rgb]
        stream.write('\n'.join(lines) + '\n')
    return folder


def tiny_class_map(model_dir: str, frame_bgr: np.ndarray, width: int = TINY_WIDTH,
                   height: int = TINY_HEIGHT) -> np.ndarray:
    """
    Run a folder's ``tiny.onnx`` with plain cv2.dnn, as the classic tutorial does.

    :param width: the network input width the node is given.
    :param height: its input height.
    :return: the class map at the frame's size (nearest neighbour).
    """
    net = cv2.dnn.readNet(os.path.join(model_dir, 'tiny.onnx'))
    net.setInput(cv2.dnn.blobFromImage(frame_bgr, 1 / 255, (width, height), (0, 0, 0),
                                       swapRB=True, crop=False))
    class_map = np.argmax(net.forward()[0], axis=0).astype(np.uint8)
    frame_height, frame_width = frame_bgr.shape[:2]
    return cv2.resize(class_map, (frame_width, frame_height),
                      interpolation=cv2.INTER_NEAREST_EXACT)


def make_fused_model(path: str | os.PathLike, num_classes: int = 4, *, width: int | None = None,
                     height: int | None = None, output_dtype: type = np.uint8, tie: bool = False,
                     metadata: dict[str, str] | None = None, opencv_unsupported: bool = False
                     ) -> str:
    """
    Write a "fused" model: uint8 (1, H, W, 3) BGR image -> (1, H, W) class ids.

    Inside: Cast to float, transpose to NCHW, the same 1x1 convolution as the scores model on the
    BGR channels (no scaling), ArgMax over the classes, Cast to ``output_dtype``.

    :param path: where to write the .onnx file.
    :param num_classes: number of classes C.
    :param width: static input width, or None for a symbolic one.
    :param height: static input height, or None for a symbolic one.
    :param output_dtype: np.uint8 or np.int64.
    :param tie: see :func:`class_weights`.
    :param metadata: ``metadata_props``; None writes ``seg_ros.num_classes`` (and the input size
        when static), ``{}`` writes none.
    :param opencv_unsupported: start with ``BitwiseAnd(image, image)`` (opset 18): the same
        result, but an operator OpenCV DNN 4.x cannot import while ONNX Runtime and OpenVINO can.
    :return: the path written.
    """
    weights, bias = class_weights(num_classes, tie=tie)
    dim_h, dim_w = _spatial_dims(width, height)
    out_type = {np.dtype(np.uint8): TensorProto.UINT8,
                np.dtype(np.int64): TensorProto.INT64}[np.dtype(output_dtype)]
    nodes = [
        helper.make_node('Cast', ['image_bits' if opencv_unsupported else 'image'],
                         ['image_float'], to=TensorProto.FLOAT),
        helper.make_node('Transpose', ['image_float'], ['blob'], perm=[0, 3, 1, 2]),
        helper.make_node('Conv', ['blob', 'weight', 'bias'], ['scores'], kernel_shape=[1, 1]),
        helper.make_node('ArgMax', ['scores'], ['ids'], axis=1, keepdims=0),
    ]
    if opencv_unsupported:
        nodes.insert(0, helper.make_node('BitwiseAnd', ['image', 'image'], ['image_bits']))
    if out_type == TensorProto.INT64:
        nodes.append(helper.make_node('Identity', ['ids'], ['class_map']))
    else:
        nodes.append(helper.make_node('Cast', ['ids'], ['class_map'], to=out_type))
    graph = helper.make_graph(
        nodes, 'seg_ros_test_fused',
        [helper.make_tensor_value_info('image', TensorProto.UINT8, [1, dim_h, dim_w, 3])],
        [helper.make_tensor_value_info('class_map', out_type, [1, dim_h, dim_w])],
        [helper.make_tensor('weight', TensorProto.FLOAT, [num_classes, 3, 1, 1],
                            weights.ravel().tolist()),
         helper.make_tensor('bias', TensorProto.FLOAT, [num_classes], bias.tolist())])
    opset = 18 if opencv_unsupported else OPSET
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)],
                              producer_name='seg_ros-tests')
    model.ir_version = 8
    if metadata is None:
        metadata = {'seg_ros.num_classes': str(num_classes)}
        if width and height:
            metadata.update({'seg_ros.input_width': str(width),
                             'seg_ros.input_height': str(height)})
    _add_metadata(model, metadata)
    return _save(model, path)


def reference_scores(frame_bgr: np.ndarray, num_classes: int = 4, *, width: int, height: int,
                     scale: float = 1.0, mean: tuple[float, float, float] = (0.0, 0.0, 0.0),
                     swap_rb: bool = True, stride: int = 1, tie: bool = False,
                     fused: bool = False) -> np.ndarray:
    """
    Compute the test model's scores (C, h, w) in float64, independently of the backends.

    The image is resized with ``cv2.resize`` (INTER_LINEAR) like ``blobFromImage``; then the mean
    (given in network channel order) is subtracted and the result scaled. A fused model sees the
    resized BGR image unscaled.

    :return: float64 scores at the model output resolution.
    """
    resized = frame_bgr
    if resized.shape[:2] != (height, width):
        resized = cv2.resize(frame_bgr, (width, height), interpolation=cv2.INTER_LINEAR)
    channels = resized.astype(np.float64)
    if not fused:
        if swap_rb:
            channels = channels[:, :, ::-1]
        channels = (channels - np.asarray(mean, dtype=np.float64)) * scale
    channels = channels[::stride, ::stride]
    weights, bias = class_weights(num_classes, tie=tie, scale=1.0 if fused else scale)
    return (np.einsum('hwk,ck->chw', channels, weights.astype(np.float64))
            + bias.astype(np.float64)[:, None, None])


def expected_class_map(frame_bgr: np.ndarray, num_classes: int = 4, *, width: int, height: int,
                       scale: float = 1.0, mean: tuple[float, float, float] = (0.0, 0.0, 0.0),
                       swap_rb: bool = True, stride: int = 1, tie: bool = False,
                       fused: bool = False) -> np.ndarray:
    """
    Return the class map (height, width) uint8 a backend must produce for the test model.

    Arguments as :func:`reference_scores`; a strided model's map is repeated back to the input size
    (what nearest-neighbour upsampling by an integer factor gives).
    """
    scores = reference_scores(frame_bgr, num_classes, width=width, height=height, scale=scale,
                              mean=mean, swap_rb=swap_rb, stride=stride, tie=tie, fused=fused)
    class_map = np.argmax(scores, axis=0).astype(np.uint8)
    if stride != 1:
        class_map = np.repeat(np.repeat(class_map, stride, axis=0), stride, axis=1)
        class_map = np.ascontiguousarray(class_map[:height, :width])
    return class_map


def bilinear_resize(planes: np.ndarray, width: int, height: int) -> np.ndarray:
    """
    Resize (C, h, w) planes bilinearly with half-pixel centres, in float64 NumPy.

    The reference for ``torch.nn.functional.interpolate(mode='bilinear', align_corners=False)``
    (what torchvision and HuggingFace upsample scores with): source coordinate
    ``(x + 0.5) * w / width - 0.5`` clamped to the image, linear weights between neighbours.
    """
    def axis_weights(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        source = np.clip((np.arange(size_out) + 0.5) * size_in / size_out - 0.5, 0, size_in - 1)
        low = np.floor(source).astype(int)
        high = np.minimum(low + 1, size_in - 1)
        return low, high, source - low

    planes = planes.astype(np.float64)
    y0, y1, wy = axis_weights(planes.shape[1], height)
    x0, x1, wx = axis_weights(planes.shape[2], width)
    rows = planes[:, y0] * (1 - wy)[None, :, None] + planes[:, y1] * wy[None, :, None]
    return rows[:, :, x0] * (1 - wx) + rows[:, :, x1] * wx


def ambiguous_pixels(scores: np.ndarray, tolerance: float) -> np.ndarray:
    """
    Mark pixels whose two best scores are closer than ``tolerance`` (float rounding may swap them).

    :param scores: (C, h, w) reference scores.
    :param tolerance: the score gap under which either class is an acceptable answer.
    :return: (h, w) bool mask.
    """
    top_two = np.sort(scores, axis=0)[-2:]
    return (top_two[1] - top_two[0]) < tolerance


def make_frame(width: int, height: int, seed: int = 0) -> np.ndarray:
    """
    Return a deterministic BGR test frame: smooth random colour patches plus noise.

    :return: (height, width, 3) uint8.
    """
    rng = np.random.default_rng(seed)
    patches = rng.integers(0, 256, size=(6, 10, 3), dtype=np.uint8)
    smooth = cv2.resize(patches, (width, height), interpolation=cv2.INTER_LINEAR)
    noisy = smooth + rng.normal(0, 20, size=smooth.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


# --- a Caffe model (two files) ---------------------------------------------------------------
# Field numbers of caffe.proto (BVLC Caffe) for the few messages a Caffe model needs.
_CAFFE_NET_LAYER = 100                                 # NetParameter.layer
_CAFFE_LAYER_NAME, _CAFFE_LAYER_TYPE, _CAFFE_LAYER_BLOBS = 1, 2, 7
_CAFFE_BLOB_DATA, _CAFFE_BLOB_SHAPE = 5, 7             # BlobProto: packed float data, BlobShape
_CAFFE_SHAPE_DIM = 1                                   # BlobShape.dim: packed int64


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _length_delimited(number: int, payload: bytes) -> bytes:
    """Encode one protobuf field of wire type 2 (bytes, sub-message, packed repeated)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _caffe_blob(values: np.ndarray) -> bytes:
    shape = b''.join(_varint(int(dim)) for dim in values.shape)
    return (_length_delimited(_CAFFE_BLOB_SHAPE, _length_delimited(_CAFFE_SHAPE_DIM, shape))
            + _length_delimited(_CAFFE_BLOB_DATA, values.astype('<f4').tobytes()))


def make_caffe_model(prototxt_path: str | os.PathLike, caffemodel_path: str | os.PathLike,
                     num_classes: int = 4, *, width: int = 64, height: int = 32,
                     tie: bool = False, scale: float = 1.0) -> tuple[str, str]:
    """
    Write the "scores" model as a Caffe pair: text ``.prototxt`` and binary ``.caffemodel``.

    The same 1x1 convolution with the weights of :func:`class_weights`, so
    :func:`expected_class_map` is its reference. The ``.caffemodel`` is a ``caffe.NetParameter``
    protobuf holding the layer's two blobs, written by a minimal encoder (no Caffe needed).

    :param prototxt_path: where to write the network description.
    :param caffemodel_path: where to write the weights.
    :param num_classes: number of output channels C.
    :param width: input width declared in the prototxt (OpenCV reshapes to the blob it gets).
    :param height: input height declared in the prototxt.
    :param tie: see :func:`class_weights`.
    :param scale: see :func:`class_weights`.
    :return: (prototxt path, caffemodel path).
    """
    weights, bias = class_weights(num_classes, tie=tie, scale=scale)
    with open(prototxt_path, 'w') as prototxt:
        prototxt.write(
            'name: "seg_ros_test_caffe"\n'
            'input: "data"\n'
            f'input_shape {{ dim: 1 dim: 3 dim: {height} dim: {width} }}\n'
            'layer {\n'
            '  name: "scores"\n'
            '  type: "Convolution"\n'
            '  bottom: "data"\n'
            '  top: "scores"\n'
            f'  convolution_param {{ num_output: {num_classes} kernel_size: 1 bias_term: true }}\n'
            '}\n')
    layer = (_length_delimited(_CAFFE_LAYER_NAME, b'scores')
             + _length_delimited(_CAFFE_LAYER_TYPE, b'Convolution')
             + _length_delimited(_CAFFE_LAYER_BLOBS,
                                 _caffe_blob(weights.reshape(num_classes, 3, 1, 1)))
             + _length_delimited(_CAFFE_LAYER_BLOBS, _caffe_blob(bias)))
    with open(caffemodel_path, 'wb') as caffemodel:
        caffemodel.write(_length_delimited(_CAFFE_NET_LAYER, layer))
    return os.fspath(prototxt_path), os.fspath(caffemodel_path)


# --- models with what real exports have: two outputs, NHWC, detection-shaped outputs ---------

def _conv_model(path: str | os.PathLike, nodes: list, inputs: list, outputs: list,
                initializers: list, metadata: dict[str, str] | None = None) -> str:
    graph = helper.make_graph(nodes, 'seg_ros_test', inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)],
                              producer_name='seg_ros-tests')
    model.ir_version = 8
    _add_metadata(model, metadata or {})
    return _save(model, path)


def _weights(name: str, num_classes: int, *, reverse: bool = False) -> list:
    weights, bias = class_weights(num_classes)
    if reverse:  # another head: the classes in the opposite order
        weights, bias = weights[::-1].copy(), bias[::-1].copy()
    return [helper.make_tensor(f'{name}_w', TensorProto.FLOAT, [num_classes, 3, 1, 1],
                               weights.ravel().tolist()),
            helper.make_tensor(f'{name}_b', TensorProto.FLOAT, [num_classes], bias.tolist())]


def make_two_output_model(path: str | os.PathLike, num_classes: int = 4) -> str:
    """
    Write a torchvision-like model: outputs ``out`` (the scores) and ``aux`` (another head).

    ``aux`` has the classes in reverse order, so using it gives another class map.
    """
    nodes = [helper.make_node('Conv', ['input', 'out_w', 'out_b'], ['out'], kernel_shape=[1, 1]),
             helper.make_node('Conv', ['input', 'aux_w', 'aux_b'], ['aux'], kernel_shape=[1, 1])]
    scores = [1, num_classes, 'height', 'width']
    return _conv_model(
        path, nodes, [helper.make_tensor_value_info('input', TensorProto.FLOAT,
                                                    [1, 3, 'height', 'width'])],
        [helper.make_tensor_value_info('out', TensorProto.FLOAT, scores),
         helper.make_tensor_value_info('aux', TensorProto.FLOAT, scores)],
        _weights('out', num_classes) + _weights('aux', num_classes, reverse=True))


def make_nhwc_model(path: str | os.PathLike, num_classes: int = 4, *, width: int,
                    height: int) -> str:
    """Write a Keras-like model: float (1, H, W, 3) input -> (1, H, W, C) scores."""
    nodes = [helper.make_node('Transpose', ['input'], ['nchw'], perm=[0, 3, 1, 2]),
             helper.make_node('Conv', ['nchw', 'head_w', 'head_b'], ['scores_nchw'],
                              kernel_shape=[1, 1]),
             helper.make_node('Transpose', ['scores_nchw'], ['scores'], perm=[0, 2, 3, 1])]
    return _conv_model(
        path, nodes, [helper.make_tensor_value_info('input', TensorProto.FLOAT,
                                                    [1, height, width, 3])],
        [helper.make_tensor_value_info('scores', TensorProto.FLOAT,
                                       [1, height, width, num_classes])],
        _weights('head', num_classes))


def make_detection_shaped_model(path: str | os.PathLike, *, width: int, height: int,
                                channels: int = 116) -> str:
    """Write a model whose output is YOLO-like (1, channels, N): not a scores map."""
    nodes = [helper.make_node('Conv', ['input', 'head_w', 'head_b'], ['grid'],
                              kernel_shape=[1, 1]),
             helper.make_node('Reshape', ['grid', 'shape'], ['output0'])]
    weights = np.ones((channels, 3, 1, 1), np.float32)
    initializers = [
        helper.make_tensor('head_w', TensorProto.FLOAT, list(weights.shape),
                           weights.ravel().tolist()),
        helper.make_tensor('head_b', TensorProto.FLOAT, [channels], [0.0] * channels),
        helper.make_tensor('shape', TensorProto.INT64, [3], [1, channels, -1])]
    return _conv_model(
        path, nodes, [helper.make_tensor_value_info('input', TensorProto.FLOAT,
                                                    [1, 3, height, width])],
        [helper.make_tensor_value_info('output0', TensorProto.FLOAT,
                                       [1, channels, height * width])],
        initializers)


def save_with_external_data(source: str | os.PathLike, path: str | os.PathLike) -> str:
    """Re-save an ONNX model with its weights in ``<name>.data`` beside it."""
    model = onnx.load(os.fspath(source))
    for index, tensor in enumerate(model.graph.initializer):  # only raw data goes outside
        model.graph.initializer[index].CopyFrom(
            onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(tensor), tensor.name))
    onnx.save(model, os.fspath(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location=os.path.basename(os.fspath(path)) + '.data', size_threshold=0)
    return os.fspath(path)


def reference_normalised_scores(frame_bgr: np.ndarray, num_classes: int, *, width: int,
                                height: int, rescale: float, mean: tuple[float, ...],
                                std: tuple[float, ...], scale: float = 1.0) -> np.ndarray:
    """
    Return the test model's (C, h, w) scores for ``(x * rescale - mean) / std`` on RGB input.

    ``mean`` and ``std`` in R, G, B order; ``scale`` is the model's (:func:`class_weights`);
    float64, independent of seg_ros.
    """
    resized = cv2.resize(frame_bgr, (width, height), interpolation=cv2.INTER_LINEAR)
    rgb = resized[:, :, ::-1].astype(np.float64)
    channels = (rgb * rescale - np.asarray(mean)) / np.asarray(std)
    weights, bias = class_weights(num_classes, scale=scale)
    return (np.einsum('hwk,ck->chw', channels, weights.astype(np.float64))
            + bias.astype(np.float64)[:, None, None])


def make_opencv_crashing_model(path: str | os.PathLike, *, width: int = 64,
                               height: int = 32) -> str:
    """
    Write a model that kills a process loading it with OpenCV DNN 4.x (SIGFPE).

    A Conv with ``group=0``: OpenCV divides the channel count by it; ONNX Runtime refuses it
    with an error; OpenVINO runs it as one group. Not checked by ``onnx.checker``.
    """
    weights = helper.make_tensor('w', TensorProto.FLOAT, [4, 3, 1, 1], [1.0] * 12)
    graph = helper.make_graph(
        [helper.make_node('Conv', ['input', 'w'], ['scores'], kernel_shape=[1, 1], group=0)],
        'seg_ros_test_opencv_crash',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, [1, 3, height, width])],
        [helper.make_tensor_value_info('scores', TensorProto.FLOAT, [1, 4, height, width])],
        [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)],
                              producer_name='seg_ros-tests')
    model.ir_version = 8
    onnx.save(model, os.fspath(path))
    return os.fspath(path)
