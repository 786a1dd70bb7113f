"""
Random-weight ONNX exports of the real instance architectures, built once and cached.

- ``mask_rcnn_onnx``: torchvision's Mask R-CNN (ResNet-18 FPN backbone, random weights, a small
  fixed input), exported with the TorchScript exporter (``dynamo=False``: the only one that
  exports it), the way the README tells users to export theirs.
- ``yolo_seg_onnx``: a small PyTorch network with the ultralytics v8/v11 segment head's output
  format (``output0`` (1, 4 + classes + 32, anchors) with pixel boxes and sigmoid class scores,
  ``output1`` (1, 32, H/4, W/4) prototypes) and ultralytics' metadata (``task``, ``names``,
  ``imgsz``); ultralytics itself is AGPL and never needed.

Files go to ``~/.cache/seg_ros/test-exports/<name>-<key>.onnx``, the key hashing what determines
them (this file, torch and torchvision versions, sizes), so a second run costs nothing. Tests
skip with the reason where torch or torchvision cannot be imported.
"""

from __future__ import annotations

import hashlib
import os
import tempfile

import onnx

CACHE_DIR = os.path.join(os.path.expanduser('~'), '.cache', 'seg_ros', 'test-exports')
YOLO_CLASSES = ('person', 'car', 'dog')


def _cache_path(name: str, *key_parts: object) -> str:
    with open(__file__, 'rb') as source:
        digest = hashlib.sha256(source.read())
    for part in key_parts:
        digest.update(repr(part).encode())
    return os.path.join(CACHE_DIR, f'{name}-{digest.hexdigest()[:16]}.onnx')


def _save_atomically(model: onnx.ModelProto, path: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix='.onnx', dir=os.path.dirname(path))
    os.close(handle)
    onnx.save(model, temporary)
    os.replace(temporary, path)
    return path


def import_torchvision():
    """
    Import torchvision, giving it plain-PyTorch CPU kernels where its C++ ops do not load.

    The pinned CPU torchvision wheel's extension does not load against this torch, and
    torchvision then fails on import ("operator torchvision::nms does not exist"). Defining
    ``nms``, ``qnms`` and ``roi_align`` first lets it import; the ONNX exporter replaces the
    ops by ONNX's NonMaxSuppression and RoiAlign, so these kernels only run while tracing.
    """
    import torch
    # A fragment: another test module may already have declared some of these ops.
    library = torch.library.Library('torchvision', 'FRAGMENT')  # noqa: TOR901
    schemas = {'nms': 'nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor',
               'qnms': 'qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor',
               'roi_align': 'roi_align(Tensor input, Tensor rois, float spatial_scale, '
                            'SymInt pooled_height, SymInt pooled_width, int sampling_ratio, '
                            'bool aligned) -> Tensor'}
    for name, schema in schemas.items():
        if not _has_op(name):
            library.define(schema)
    for name, kernel in (('nms', _nms), ('roi_align', _roi_align)):
        if not torch._C._dispatch_has_kernel_for_dispatch_key(f'torchvision::{name}', 'CPU'):
            library.impl(name, kernel, 'CPU')
    import_torchvision.libraries = [*getattr(import_torchvision, 'libraries', []), library]
    import sys

    try:
        import torchvision
    except RuntimeError:  # an import that failed before left half a package behind
        for module in [name for name in sys.modules if name.startswith('torchvision')]:
            del sys.modules[module]
        import torchvision
    import torchvision.models.detection  # noqa: F401 (imports every op module)
    # Its ops check that the extension loaded (some modules imported the check by name);
    # the kernels above stand in for it.
    for name, module in list(sys.modules.items()):
        if name.startswith('torchvision') and hasattr(module, '_has_ops'):
            module._has_ops = _ops_loaded
    return torchvision


def _ops_loaded() -> bool:
    return True


def _has_op(name: str) -> bool:
    import torch
    try:
        getattr(torch.ops.torchvision, name)
        return True
    except (AttributeError, RuntimeError):
        return False


def _nms(boxes, scores, iou_threshold):
    """Greedy NMS in NumPy (the exporter never sees it: ONNX's NonMaxSuppression replaces it)."""
    import numpy as np
    import torch
    xyxy = boxes.detach().numpy().astype(np.float64)
    order = np.argsort(-scores.detach().numpy(), kind='stable')
    areas = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    keep = []
    while len(order):
        best, rest = order[0], order[1:]
        keep.append(best)
        top_left = np.maximum(xyxy[best, :2], xyxy[rest, :2])
        bottom_right = np.minimum(xyxy[best, 2:], xyxy[rest, 2:])
        overlap = np.clip(bottom_right - top_left, 0, None).prod(axis=1)
        iou = overlap / np.maximum(areas[best] + areas[rest] - overlap, 1e-12)
        order = rest[iou <= iou_threshold]
    return torch.tensor(np.array(keep, np.int64), dtype=torch.int64)


def _roi_align(features, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio,
               aligned):
    """Bilinear samples at the bin centres (one per bin): shapes as torchvision's roi_align."""
    import torch
    import torch.nn.functional as functional
    if len(rois) == 0:
        return features.new_zeros((0, features.shape[1], pooled_height, pooled_width))
    offset = 0.5 if aligned else 0.0
    batch = rois[:, 0].long()
    x0, y0, x1, y1 = (rois[:, k] * spatial_scale - offset for k in range(1, 5))
    steps_y = (torch.arange(pooled_height, dtype=features.dtype) + 0.5) / pooled_height
    steps_x = (torch.arange(pooled_width, dtype=features.dtype) + 0.5) / pooled_width
    ys = y0[:, None] + (y1 - y0)[:, None] * steps_y[None]
    xs = x0[:, None] + (x1 - x0)[:, None] * steps_x[None]
    height, width = features.shape[2:]
    grid = torch.stack(torch.broadcast_tensors(
        (xs[:, None, :] + 0.5) / width * 2 - 1, (ys[:, :, None] + 0.5) / height * 2 - 1),
        dim=-1)  # (K, ph, pw, 2)
    pooled = []
    for image in range(features.shape[0]):  # one sampling per image, not a copy per box
        chosen = batch == image
        samples = functional.grid_sample(
            features[image:image + 1], grid[chosen].reshape(1, -1, pooled_width, 2),
            align_corners=False)
        samples = samples.reshape(features.shape[1], -1, pooled_height, pooled_width)
        pooled.append((chosen, samples.transpose(0, 1)))
    output = features.new_zeros((len(rois), features.shape[1], pooled_height, pooled_width))
    for chosen, samples in pooled:
        output[chosen] = samples
    return output


def mask_rcnn_onnx(width: int = 320, height: int = 256) -> str:
    """Return a cached random-weight torchvision Mask R-CNN export, input (3, height, width)."""
    torchvision = import_torchvision()
    import torch
    path = _cache_path('mask_rcnn', torch.__version__, torchvision.__version__, width, height)
    if os.path.isfile(path):
        return path
    from torchvision.models.detection import MaskRCNN
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    torch.manual_seed(0)
    backbone = resnet_fpn_backbone(backbone_name='resnet18', weights=None, trainable_layers=0)
    # Random weights score every box about 1/91: keep them all, so masks really come out.
    model = MaskRCNN(backbone, num_classes=91, min_size=min(width, height),
                     max_size=max(width, height), box_score_thresh=0.0,
                     box_detections_per_img=20, rpn_pre_nms_top_n_test=100,
                     rpn_post_nms_top_n_test=50).eval()
    image = torch.rand(3, height, width)
    handle, temporary = tempfile.mkstemp(suffix='.onnx')
    os.close(handle)
    try:
        torch.onnx.export(model, ([image],), temporary, dynamo=False, opset_version=17,
                          input_names=['image'],
                          output_names=['boxes', 'labels', 'scores', 'masks'],
                          dynamic_axes={'boxes': [0], 'labels': [0], 'scores': [0],
                                        'masks': [0]})
        return _save_atomically(onnx.load(temporary), path)
    finally:
        os.remove(temporary)


def yolo_seg_onnx(width: int = 160, height: int = 128) -> str:
    """Return a cached small YOLO-seg-format export, input (1, 3, height, width)."""
    import torch
    path = _cache_path('yolo_seg', torch.__version__, width, height)
    if os.path.isfile(path):
        return path
    torch.manual_seed(0)
    model = _YoloSegLike(len(YOLO_CLASSES)).eval()
    handle, temporary = tempfile.mkstemp(suffix='.onnx')
    os.close(handle)
    try:
        torch.onnx.export(model, (torch.rand(1, 3, height, width),), temporary, dynamo=False,
                          opset_version=17, input_names=['images'],
                          output_names=['output0', 'output1'])
        exported = onnx.load(temporary)
    finally:
        os.remove(temporary)
    names = dict(enumerate(YOLO_CLASSES))
    for key, value in (('task', 'segment'), ('names', str(names)),
                       ('imgsz', str([height, width])), ('stride', '8')):
        entry = exported.metadata_props.add()
        entry.key, entry.value = key, value
    return _save_atomically(exported, path)


def _yolo_module():
    import torch

    class YoloSegLike(torch.nn.Module):
        """Backbone at strides 4 and 8; ultralytics' Segment head output format."""

        def __init__(self, num_classes: int) -> None:
            super().__init__()
            self.stem = torch.nn.Sequential(
                torch.nn.Conv2d(3, 16, 3, 2, 1), torch.nn.SiLU(),
                torch.nn.Conv2d(16, 32, 3, 2, 1), torch.nn.SiLU())
            self.down = torch.nn.Sequential(torch.nn.Conv2d(32, 64, 3, 2, 1), torch.nn.SiLU())
            self.boxes = torch.nn.Conv2d(64, 4, 1)
            self.classes = torch.nn.Conv2d(64, num_classes, 1)
            self.coefficients = torch.nn.Conv2d(64, 32, 1)
            self.prototypes = torch.nn.Conv2d(32, 32, 3, 1, 1)

        def forward(self, images):
            features4 = self.stem(images)
            features8 = self.down(features4)
            batch, _, rows, cols = features8.shape
            ys, xs = torch.meshgrid(torch.arange(rows, dtype=images.dtype),
                                    torch.arange(cols, dtype=images.dtype), indexing='ij')
            distances = torch.nn.functional.softplus(self.boxes(features8)) * 8.0
            cx = (xs + 0.5) * 8.0 + (distances[:, 2] - distances[:, 0]) / 2
            cy = (ys + 0.5) * 8.0 + (distances[:, 3] - distances[:, 1]) / 2
            w = distances[:, 0] + distances[:, 2]
            h = distances[:, 1] + distances[:, 3]
            box = torch.stack((cx, cy, w, h), dim=1)
            scores = torch.sigmoid(self.classes(features8) * 4.0)
            detections = torch.cat((box, scores, self.coefficients(features8)), dim=1)
            return detections.flatten(2), self.prototypes(features4)

    return YoloSegLike


def _YoloSegLike(num_classes: int):  # noqa: N802 (builds the class only when torch imports)
    return _yolo_module()(num_classes)
