"""
A YOLO-seg-format export at ultralytics' own scale, random weights that really detect and segment.

The network follows ultralytics' YOLOv8-seg layout in small: Conv-BatchNorm-SiLU blocks down to
strides 8, 16 and 32 (80x80 + 40x40 + 20x20 = 8400 anchors at 640x640), a ``Segment`` head per
level (box distances through a 16-bin DFL, sigmoid class scores, 32 mask coefficients) and a
``Proto`` branch (a transposed-convolution upsampling of the stride-8 features to 160x160
prototypes), exported as ``output0`` (1, 4 + classes + 32, 8400) and ``output1`` (1, 32, 160,
160) with ultralytics' metadata. Ultralytics itself is never used.

Random weights alone give flat outputs: the batch norms' statistics are measured on the real
photos (a forward pass in training mode), the prototypes are centred but one, a constant whose
coefficient varies widely (some masks are empty in their box, others full), short box distances
are favoured, and the class biases are set so that about 2 % of the anchors score above 0.5 on
them. The file is cached under ``~/.cache/seg_ros/test-exports`` by a hash of this file, the
torch version and the photos.
"""

from __future__ import annotations

import hashlib
import os
import tempfile

import cv2
import numpy as np

CACHE_DIR = os.path.join(os.path.expanduser('~'), '.cache', 'seg_ros', 'test-exports')
NUM_CLASSES = 80
INPUT_SIZE = 640
STRIDES = (8, 16, 32)
REG_MAX = 16
# Of every anchor of the calibration photos, the share that scores above 0.5.
DETECTING_SHARE = 0.02
# The constant prototype's coefficient: its spread scaled up, its mean this many spreads below 0.
EMPTY_MASK_SPREAD = 12.0
EMPTY_MASK_SHIFT = 1.5


def letterboxed(frame_bgr: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """Return ultralytics' LetterBox of a BGR frame as a (1, 3, size, size) RGB 0-1 float32."""
    height, width = frame_bgr.shape[:2]
    ratio = min(size / height, size / width)
    new_w, new_h = int(round(width * ratio)), int(round(height * ratio))
    pad_w, pad_h = (size - new_w) / 2, (size - new_h) / 2
    image = cv2.resize(frame_bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    top, bottom = int(round(pad_h - 0.1)), int(round(pad_h + 0.1))
    left, right = int(round(pad_w - 0.1)), int(round(pad_w + 0.1))
    image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT,
                               value=(114, 114, 114))
    rgb = image[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) / 255.0
    return np.ascontiguousarray(rgb)[np.newaxis]


def export(photos: list[np.ndarray]) -> str:
    """Return the cached export, building it (calibrated on ``photos``, BGR) when missing."""
    import torch
    with open(__file__, 'rb') as source:
        digest = hashlib.sha256(source.read())
    digest.update(torch.__version__.encode())
    for photo in photos:
        digest.update(hashlib.sha256(photo.tobytes()).digest())
    path = os.path.join(CACHE_DIR, f'yolo_seg_640-{digest.hexdigest()[:16]}.onnx')
    if os.path.isfile(path):
        return path
    torch.manual_seed(0)
    network = _build()
    _calibrate(network, torch.from_numpy(np.concatenate([letterboxed(p) for p in photos])))
    os.makedirs(CACHE_DIR, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix='.onnx', dir=CACHE_DIR)
    os.close(handle)
    with torch.no_grad():
        torch.onnx.export(network, (torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE),), temporary,
                          dynamo=False, opset_version=17, input_names=['images'],
                          output_names=['output0', 'output1'])
    import onnx
    model = onnx.load(temporary)
    names = {index: f'class{index}' for index in range(NUM_CLASSES)}
    for key, value in (('task', 'segment'), ('names', str(names)),
                       ('imgsz', str([INPUT_SIZE, INPUT_SIZE])), ('stride', '32')):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, temporary)
    os.replace(temporary, path)
    return path


def _build():
    import torch
    from torch import nn

    def conv(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> nn.Module:
        return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                             nn.BatchNorm2d(c_out), nn.SiLU())

    class YoloSeg(nn.Module):
        """Ultralytics' YOLOv8-seg in small: backbone, per-level Segment head, Proto."""

        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(conv(3, 16, 3, 2), conv(16, 32, 3, 2), conv(32, 32))
            self.p3 = nn.Sequential(conv(32, 64, 3, 2), conv(64, 64))
            self.p4 = nn.Sequential(conv(64, 96, 3, 2), conv(96, 96))
            self.p5 = nn.Sequential(conv(96, 128, 3, 2), conv(128, 128))
            channels = (64, 96, 128)
            self.box = nn.ModuleList(nn.Sequential(conv(c, 64), conv(64, 64),
                                                   nn.Conv2d(64, 4 * REG_MAX, 1))
                                     for c in channels)
            self.cls = nn.ModuleList(nn.Sequential(conv(c, 80), conv(80, 80),
                                                   nn.Conv2d(80, NUM_CLASSES, 1))
                                     for c in channels)
            self.coefficients = nn.ModuleList(nn.Sequential(conv(c, 32), conv(32, 32),
                                                            nn.Conv2d(32, 32, 1))
                                              for c in channels)
            self.proto = nn.Sequential(conv(64, 64), nn.ConvTranspose2d(64, 64, 2, 2),
                                       conv(64, 64), nn.Conv2d(64, 32, 1))
            self.register_buffer('bins', torch.arange(REG_MAX, dtype=torch.float32))

        def forward(self, images):
            p3 = self.p3(self.stem(images))
            p4 = self.p4(p3)
            p5 = self.p5(p4)
            boxes, scores, coefficients = [], [], []
            for level, (features, stride) in enumerate(zip((p3, p4, p5), STRIDES)):
                batch, _, rows, cols = features.shape
                bins = self.box[level](features).view(batch, 4, REG_MAX, rows * cols)
                distances = (bins.softmax(2) * self.bins.view(1, 1, -1, 1)).sum(2)  # DFL
                ys, xs = torch.meshgrid(torch.arange(rows, dtype=images.dtype) + 0.5,
                                        torch.arange(cols, dtype=images.dtype) + 0.5,
                                        indexing='ij')
                anchor = torch.stack((xs.flatten(), ys.flatten()))[None]
                top_left, bottom_right = anchor - distances[:, :2], anchor + distances[:, 2:]
                boxes.append(torch.cat(((top_left + bottom_right) / 2,
                                        bottom_right - top_left), 1) * stride)
                scores.append(self.cls[level](features).flatten(2).sigmoid())
                coefficients.append(self.coefficients[level](features).flatten(2))
            detections = torch.cat((torch.cat(boxes, 2), torch.cat(scores, 2),
                                    torch.cat(coefficients, 2)), 1)
            return detections, self.proto(p3)

    return YoloSeg().eval()


def _calibrate(network, images) -> None:
    """Measure batch-norm statistics on ``images``; centre the prototypes; set class biases."""
    import torch
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a cumulative average: the statistics of these images
            module.reset_running_stats()
    with torch.no_grad():
        network.train()
        network(images)
        network.eval()
        # Zero-mean prototypes: masks cover part of a box, not all or none of it.
        last = network.proto[-1]
        last.bias -= network(images)[1].mean(dim=(0, 2, 3))
        # One prototype a positive constant, its coefficient spread widely around a negative
        # mean: a share of the objects have no mask pixel in their box (which ultralytics
        # drops) and others a full one, as trained models do.
        last.weight[0] = 0.0
        last.bias[0] = float(network(images)[1][:, 1:].std())
        p3 = network.p3(network.stem(images))
        p4 = network.p4(p3)
        for head, features in zip(network.coefficients, (p3, p4, network.p5(p4))):
            head[-1].weight[0] *= EMPTY_MASK_SPREAD
            first = head(features)[:, 0]
            head[-1].bias[0] -= float(first.mean() + EMPTY_MASK_SHIFT * first.std())
        # Short box distances more likely than long ones (as trained heads have them): small
        # boxes at stride 8, some of which hold no mask pixel.
        for head in network.box:
            head[-1].bias -= 0.3 * network.bins.repeat(4)
        detections = network(images)[0]
        best = detections[:, 4:4 + NUM_CLASSES].max(dim=1).values.flatten()
        threshold_logit = torch.logit(torch.quantile(best, 1 - DETECTING_SHARE))
        for head in network.cls:
            head[-1].bias -= float(threshold_logit)
