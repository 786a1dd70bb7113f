"""
Real segmentation architectures, small and with random weights, exported to ONNX for the tests.

The families robotics teams bring: torchvision FCN-ResNet50, DeepLabV3-MobileNetV3 and
LR-ASPP-MobileNetV3 (``weights=None, weights_backbone=None``: nothing is downloaded) and a
HuggingFace SegFormer-B0-like network built from a ``SegformerConfig`` with few layers. Each is
exported the two usual ways: torch 2.13's default (dynamo) exporter, opset 18 with the weights in
``<name>.onnx.data``, and the older ``dynamo=False`` exporter, one file; both with dynamic H and
W. One Keras-style NHWC export (float (1, H, W, 3) in, (1, H, W, C) scores out) as well.

Exports are cached under ``$SEG_ROS_TEST_CACHE`` (default ``~/.cache/seg_ros/test-models``) in
a folder named by a hash of the building and exporting code and the torch / torchvision /
transformers versions, so the suite exports them once per machine.

The reference (:func:`reference_class_map`) is onnxruntime on the ONNX file with the
pre-processing done here in NumPy, the output taken by name, low-resolution scores upsampled by
:func:`models.bilinear_resize`, then ``np.argmax``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import warnings

import cv2
import numpy as np

from models import bilinear_resize

NUM_CLASSES = 6
EXPORT_SIZE = (96, 64)  # width, height traced; the exports have dynamic H and W
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# family -> (builder name, output names in order)
FAMILIES = {
    'fcn_resnet50': ('fcn_resnet50', ('out', 'aux')),
    'deeplabv3_mobilenet_v3': ('deeplabv3_mobilenet_v3_large', ('out', 'aux')),
    'lraspp_mobilenet_v3': ('lraspp_mobilenet_v3_large', ('out',)),
    'segformer_b0': ('segformer', ('logits',)),
}
EXPORTERS = ('dynamo', 'torchscript')


def cache_dir() -> str:
    """Return the folder of this machine's exports, keyed by what determines them."""
    import torch
    import transformers
    # What makes an export: the code that builds and exports, its constants, the versions.
    digest = hashlib.sha256(''.join(inspect.getsource(function) for function in (
        build, _spread_batch_norms, _final_convs, _calibrate, export, imagenet_input,
        street_frame)).encode())
    digest.update(repr((FAMILIES, NUM_CLASSES, EXPORT_SIZE)).encode())
    digest.update(f'{torch.__version__} {_import_torchvision().__version__} '
                  f'{transformers.__version__}'.encode())
    root = os.environ.get('SEG_ROS_TEST_CACHE') or os.path.join(
        os.path.expanduser('~'), '.cache', 'seg_ros', 'test-models')
    return os.path.join(root, digest.hexdigest()[:16])


def _import_torchvision():
    """
    Import torchvision without its C++ operators.

    The installed torchvision wheel's operators do not load against the CPU torch, and its
    import then fails on the fake registration of ``torchvision::nms`` / ``qnms``: declaring
    the two operators first lets it import. The segmentation models use neither.
    """
    import torch
    try:
        import torchvision
        return torchvision
    except RuntimeError:
        pass
    library = torch.library.Library('torchvision', 'DEF')  # noqa: TOR901
    for name in ('nms', 'qnms'):
        library.define(f'{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
    _import_torchvision.library = library  # keep the definitions alive
    import sys
    for module in [name for name in sys.modules if name.startswith('torchvision')]:
        del sys.modules[module]
    import torchvision
    return torchvision


def build(family: str, nhwc: bool = False):
    """Return the family's network (eval mode, seeded random weights) as a tuple-output module."""
    import torch
    from torch import nn
    torch.manual_seed(sum(map(ord, family)))
    builder, outputs = FAMILIES[family]
    if builder == 'segformer':
        from transformers import SegformerConfig, SegformerForSemanticSegmentation
        config = SegformerConfig(num_labels=NUM_CLASSES, depths=[1, 1, 1, 1],
                                 hidden_sizes=[16, 32, 64, 128], decoder_hidden_size=64,
                                 num_attention_heads=[1, 1, 2, 4])
        network = SegformerForSemanticSegmentation(config)
    else:
        segmentation = _import_torchvision().models.segmentation
        extra = {'aux_loss': True} if 'aux' in outputs else {}
        network = getattr(segmentation, builder)(weights=None, weights_backbone=None,
                                                 num_classes=NUM_CLASSES, **extra)
    _spread_batch_norms(network)

    class Exported(nn.Module):
        def __init__(self, nhwc: bool) -> None:
            super().__init__()
            self.network = network
            self.nhwc = nhwc

        def forward(self, image):
            if self.nhwc:
                image = image.permute(0, 3, 1, 2)
            result = self.network(image)
            if builder == 'segformer':
                values = (result.logits,)
            else:
                values = tuple(result[name] for name in outputs)
            if self.nhwc:
                values = tuple(value.permute(0, 2, 3, 1) for value in values)
            return values

    _calibrate(Exported(nhwc=False).eval(), _final_convs(network, builder))
    return Exported(nhwc).eval(), outputs


def _final_convs(network, builder: str) -> list:
    """Return, per output, the last convolutions whose sum (plus upsampling) is the output."""
    if builder == 'segformer':
        return [[network.decode_head.classifier]]
    if builder == 'lraspp_mobilenet_v3_large':
        return [[network.classifier.low_classifier, network.classifier.high_classifier]]
    convs = [[network.classifier[-1]]]
    if network.aux_classifier is not None:
        convs.append([network.aux_classifier[-1]])
    return convs


def _calibrate(exported, convs: list) -> None:
    """
    Make every class's score have the same mean and a unit spread over a frame.

    A random network's scores vary far less across the image than between classes, so its
    class map is one class everywhere: a weak test. The output is linear in its last
    convolutions and bilinear upsampling keeps constants, so shifting the first one's biases
    moves the class means exactly, and scaling them all scales the output.
    """
    import torch
    width, height = EXPORT_SIZE
    frame = torch.from_numpy(imagenet_input(street_frame(width * 2, height * 2, seed=99),
                                            width, height))
    with torch.no_grad():
        for index, layers in enumerate(convs):
            value = exported(frame)[index]
            layers[0].bias -= value.mean(dim=(0, 2, 3)) - value.mean()
            spread = float(exported(frame)[index].std())
            for layer in layers:
                layer.weight /= spread
                if layer.bias is not None:
                    layer.bias /= spread


def _spread_batch_norms(network) -> None:
    """Give batch norms random statistics so that random networks output varied class maps."""
    import torch
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)


def export(family: str, exporter: str, nhwc: bool = False) -> str:
    """
    Return the family's ONNX file, exporting it unless it is cached.

    :param family: a key of :data:`FAMILIES`.
    :param exporter: ``'dynamo'`` (torch's default: opset 18, external data) or
        ``'torchscript'`` (``dynamo=False``, one file).
    :param nhwc: export the Keras-style NHWC form (torchscript exporter).
    """
    import torch
    path = _path(family, exporter, nhwc)
    done = path + '.done'
    if os.path.exists(done):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    network, outputs = build(family, nhwc)
    width, height = EXPORT_SIZE
    example = torch.zeros((1, height, width, 3) if nhwc else (1, 3, height, width))
    axes = (1, 2) if nhwc else (2, 3)
    dynamic_axes = {'input': {axes[0]: 'height', axes[1]: 'width'}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        if exporter == 'dynamo':
            torch.onnx.export(network, (example,), path, input_names=['input'],
                              output_names=list(outputs), dynamic_axes=dynamic_axes,
                              dynamo=True, external_data=True)
        else:
            torch.onnx.export(network, (example,), path, input_names=['input'],
                              output_names=list(outputs), dynamic_axes=dynamic_axes,
                              dynamo=False, opset_version=17)
    with open(done, 'w') as marker:
        json.dump({'family': family, 'exporter': exporter, 'nhwc': nhwc}, marker)
    return path


def export_all(workers: int = 2) -> dict[tuple[str, str, bool], str]:
    """
    Export every family with both exporters and the NHWC form, ``workers`` at a time.

    The exporters trace in one Python thread, so two processes halve the first run's wall time
    on two cores; cached exports are only looked up.

    :return: (family, exporter, nhwc) -> ONNX path.
    """
    import concurrent.futures
    import multiprocessing
    jobs = [(family, exporter, False) for family in FAMILIES for exporter in EXPORTERS]
    jobs.append(('lraspp_mobilenet_v3', 'torchscript', True))
    missing = [job for job in jobs if not os.path.exists(_path(*job) + '.done')]
    if len(missing) > 1 and workers > 1:
        context = multiprocessing.get_context('spawn')
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            list(pool.map(_export_job, missing))
    return {job: export(*job) for job in jobs}


def _export_job(job: tuple[str, str, bool]) -> str:
    return export(*job)


def _path(family: str, exporter: str, nhwc: bool) -> str:
    name = f'{family}_{exporter}{"_nhwc" if nhwc else ""}'
    return os.path.join(cache_dir(), name, f'{name}.onnx')


def imagenet_input(frame_bgr: np.ndarray, width: int, height: int,
                   nhwc: bool = False) -> np.ndarray:
    """Return the float32 network input: resize, RGB, (x / 255 - mean) / std, NCHW or NHWC."""
    resized = cv2.resize(frame_bgr, (width, height), interpolation=cv2.INTER_LINEAR)
    rgb = resized[:, :, ::-1].astype(np.float64)
    normalised = ((rgb / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD))
    normalised = normalised.astype(np.float32)
    if nhwc:
        return normalised[np.newaxis]
    return np.ascontiguousarray(normalised.transpose(2, 0, 1))[np.newaxis]


def reference_scores(path: str, frame_bgr: np.ndarray, width: int, height: int,
                     nhwc: bool = False, output: str = '') -> np.ndarray:
    """Return onnxruntime's (C, height, width) float64 scores, upsampled bilinearly if smaller."""
    import onnxruntime
    session = onnxruntime.InferenceSession(path, providers=['CPUExecutionProvider'])
    name = output or session.get_outputs()[0].name
    scores = session.run([name], {'input': imagenet_input(frame_bgr, width, height, nhwc)})[0]
    planes = scores[0].transpose(2, 0, 1) if nhwc else scores[0]
    if planes.shape[1:] != (height, width):
        planes = bilinear_resize(planes, width, height)
    return planes.astype(np.float64)


def street_frame(width: int = 160, height: int = 120, seed: int = 0) -> np.ndarray:
    """Return a deterministic BGR frame with smooth regions and edges (a random network's food)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    frame = cv2.resize(blocks, (width, height), interpolation=cv2.INTER_NEAREST)
    smooth = cv2.GaussianBlur(frame, (0, 0), 3)
    noise = rng.normal(0, 12, size=smooth.shape)
    return np.clip(smooth + noise, 0, 255).astype(np.uint8)
