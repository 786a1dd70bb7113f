"""
Ultralytics' own YOLO-seg answers, saved for ``yolo_seg_vs_ultralytics.py`` (a scratch venv only).

Ultralytics is AGPL-3.0: this script runs only in a virtual environment outside the project that
has it (``pip install ultralytics`` there, with ``YOLO_OFFLINE=1``); seg_ros and its tests never
import it, and nothing imports this file. It downloads no weights: each export is built from
ultralytics' own model yaml (``yolov8n-seg.yaml``, ``yolo11s-seg.yaml``, ...) with random
weights, made to detect and segment real photos (batch-norm statistics measured on the frames,
class logits spread moderately (no saturated, tied scores) and shifted so that 1 % of the
anchors of the median frame score above 0.5), exported with
ultralytics' exporter to ONNX (kept: delete it to build it again), and run through ultralytics'
predictor (``conf=0.5, iou=0.5, max_det=100, retina_masks=True``) on every frame.

Frames: the photos in ``--images`` (jpg, png), a portrait rotation, an odd crop, 1280x720 and
1920x1080 resizes, a 320x240 and a 751x120 strip of the first two; plus, where scikit-image is
installed, its bundled photos (astronaut, chelsea, coffee, motorcycle, rocket, camera). Written
to ``--output``: ``frames/<frame>.png`` (lossless: seg_ros reads the very pixels),
``<export>.onnx`` and ``<export>/<frame>.npz`` with ultralytics' detections (``boxes`` xyxy,
``cls``, ``conf``, ``masks`` bit-packed (N, H, W)), the network input it built (``input``,
uint8 HWC RGB letterbox) and the network's raw outputs (``output0``, ``output1``).

Usage (in the scratch venv, from the repository root)::

    YOLO_OFFLINE=1 python bench/ultralytics_yolo_seg.py --output /tmp/yolo-seg-ref
"""

import argparse
import glob
import json
import os
import shutil
import sys

import cv2
import numpy as np
import torch
from ultralytics import YOLO
from ultralytics.data.augment import LetterBox

# name: (model yaml, imgsz (height, width), random seed)
EXPORTS = {
    'yolov8n-seg-640': ('yolov8n-seg.yaml', (640, 640), 1),
    'yolov8s-seg-640': ('yolov8s-seg.yaml', (640, 640), 2),
    'yolov8n-seg-384x640': ('yolov8n-seg.yaml', (384, 640), 3),
    'yolo11n-seg-640': ('yolo11n-seg.yaml', (640, 640), 4),
    'yolo11s-seg-320': ('yolo11s-seg.yaml', (320, 320), 5),
    'yolo11n-seg-480x640': ('yolo11n-seg.yaml', (480, 640), 6),
    'yolo11m-seg-640': ('yolo11m-seg.yaml', (640, 640), 7),
}
# Of the anchors of the median frame, the share that scores above 0.5.
DETECTING_SHARE = 0.01
# The spread (standard deviation) of the anchors' best class logits over all frames.
LOGIT_SPREAD = 1.5
SCIKIT_IMAGE_PHOTOS = ('astronaut.png', 'chelsea.png', 'coffee.png', 'motorcycle_left.png',
                       'rocket.jpg', 'camera.png')


def frames(images_dir: str) -> dict[str, np.ndarray]:
    """Return the BGR frames: the photos, variants of the first two, scikit-image's photos."""
    found = {}
    for path in sorted(glob.glob(os.path.join(images_dir, '*.jpg'))
                       + glob.glob(os.path.join(images_dir, '*.png'))):
        frame = cv2.imread(path, cv2.IMREAD_COLOR)
        if frame is not None:
            found[os.path.splitext(os.path.basename(path))[0]] = frame
    photos = list(found.values())
    if photos:
        first, second = photos[0], photos[-1]
        found['rotated'] = cv2.rotate(first, cv2.ROTATE_90_CLOCKWISE)
        found['crop613x401'] = np.ascontiguousarray(second[37:37 + 401, 90:90 + 613])
        found['resized1280x720'] = cv2.resize(first, (1280, 720), interpolation=cv2.INTER_AREA)
        found['resized1920x1080'] = cv2.resize(second, (1920, 1080),
                                               interpolation=cv2.INTER_CUBIC)
        found['small320x240'] = cv2.resize(second, (320, 240), interpolation=cv2.INTER_AREA)
        found['strip751x120'] = np.ascontiguousarray(first[300:420])
    try:
        import skimage
    except ImportError:
        return found
    for name in SCIKIT_IMAGE_PHOTOS:
        path = os.path.join(os.path.dirname(skimage.__file__), 'data', name)
        image = cv2.imread(path, cv2.IMREAD_COLOR)  # grey photos as three equal channels
        if image is not None:
            found[os.path.splitext(name)[0]] = image
    return found


def calibrate(network: torch.nn.Module, batch: torch.Tensor) -> None:
    """
    Batch-norm statistics measured on ``batch``; class logits spread and shifted to detect.

    The class heads' last convolutions are scaled so that the best class logit of an anchor
    varies with a spread of :data:`LOGIT_SPREAD` over all frames (random weights otherwise give
    logits in the tens: scores of exactly 1.0 in float32, whose order is a tie), then shifted
    so that on the median frame :data:`DETECTING_SHARE` of the anchors score above 0.5 (random
    weights respond to some photos far more than to others: frames with none and frames with
    thousands of candidates remain).
    """
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # a cumulative average: the statistics of these frames
            module.reset_running_stats()
    head = network.model[-1]
    last_convs = [branch[-1] for branch in head.cv3]
    with torch.no_grad():
        network.train()
        for image in batch:
            network(image[None])
        network.eval()
        best = best_class_logits(network, last_convs, batch)
        scale = LOGIT_SPREAD / float(torch.cat(best).std())
        for conv in last_convs:
            conv.weight *= scale
            conv.bias *= scale
        best = best_class_logits(network, last_convs, batch)
        threshold = torch.stack([torch.quantile(logits, 1 - DETECTING_SHARE)
                                 for logits in best]).median()
        for conv in last_convs:
            conv.bias -= float(threshold)


def best_class_logits(network: torch.nn.Module, last_convs: list,
                      batch: torch.Tensor) -> list[torch.Tensor]:
    """Return, per frame, every anchor's best class logit (before the sigmoid)."""
    found = []
    hooks = [conv.register_forward_hook(
        lambda module, inputs, output: found.append(output.amax(1).flatten()))
        for conv in last_convs]
    per_frame = []
    for image in batch:
        found.clear()
        network(image[None])
        per_frame.append(torch.cat(found))
    for hook in hooks:
        hook.remove()
    return per_frame


def build_export(name: str, frame_list: list[np.ndarray], output_dir: str) -> str:
    """Build, calibrate and export one model; return the ONNX path."""
    yaml_name, imgsz, seed = EXPORTS[name]
    path = os.path.join(output_dir, f'{name}.onnx')
    if os.path.isfile(path):  # built before (delete it to build again)
        return path
    torch.manual_seed(seed)
    model = YOLO(yaml_name)
    letterbox = LetterBox(imgsz, auto=False)
    batch = torch.from_numpy(np.stack([letterbox(image=frame)[:, :, ::-1].transpose(2, 0, 1)
                                       for frame in frame_list]).copy()).float() / 255
    calibrate(model.model, batch)
    exported = model.export(format='onnx', imgsz=list(imgsz), opset=17, simplify=True,
                            verbose=False)
    shutil.move(exported, path)
    return path


def use_torchvision_or_ultralytics_nms() -> str:
    """
    Make sure ultralytics' NMS runs: torchvision's where its compiled operators load, else its own.

    Ultralytics' predictor imports torchvision when it warms up and then calls
    ``torchvision.ops.nms``. A torchvision whose compiled operators do not load (PyPI's CUDA build
    beside a CPU-only torch) fails on import; then a stand-in ``torchvision`` module is put in
    its place whose ``ops.nms`` is ultralytics' ``TorchNMS.nms`` (its own NMS "that matches
    torchvision behavior exactly", the one it uses where torchvision is absent), given the
    candidates in torchvision's order (equal scores: lower index first).
    """
    try:
        import torchvision
        torchvision.ops.nms(torch.zeros((1, 4)), torch.zeros(1), 0.5)
        return 'torchvision.ops.nms'
    except (ImportError, RuntimeError, OSError):
        pass
    import types
    from ultralytics.utils.nms import TorchNMS

    def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
        # torchvision visits equal scores in index order (a stable sort); TorchNMS's argsort
        # is not stable: it is given the ranks of that order as its scores.
        order = torch.sort(scores, stable=True, descending=True).indices
        ranks = torch.empty_like(scores)
        ranks[order] = torch.arange(len(scores), 0, -1, dtype=scores.dtype)
        return TorchNMS.nms(boxes, ranks, iou_threshold)

    for name in [name for name in sys.modules if name.split('.')[0] == 'torchvision']:
        del sys.modules[name]
    stand_in = types.ModuleType('torchvision')
    stand_in.ops = types.SimpleNamespace(nms=nms)
    sys.modules['torchvision'] = stand_in
    return 'ultralytics TorchNMS.nms, equal scores in index order as torchvision'


def predict(onnx_path: str, frame_list: dict[str, np.ndarray], output_dir: str) -> dict:
    """Run ultralytics' predictor on every frame; save its answers; return counts."""
    model = YOLO(onnx_path, task='segment')
    counts = {}
    os.makedirs(output_dir, exist_ok=True)
    for name, frame in frame_list.items():
        result = model.predict(frame, conf=0.5, iou=0.5, max_det=100, retina_masks=True,
                               verbose=False)[0]
        predictor = model.predictor
        image = predictor.preprocess([frame])
        raw = predictor.inference(image)
        output0, output1 = (np.asarray(value.cpu() if hasattr(value, 'cpu') else value)
                            for value in raw[:2])
        masks = (result.masks.data.cpu().numpy() > 0 if result.masks is not None
                 else np.zeros((0,) + frame.shape[:2], bool))
        network_input = np.rint(image[0].permute(1, 2, 0).cpu().numpy() * 255).astype(np.uint8)
        np.savez_compressed(
            os.path.join(output_dir, f'{name}.npz'),
            boxes=result.boxes.xyxy.cpu().numpy().astype(np.float32),
            cls=result.boxes.cls.cpu().numpy().astype(np.int64),
            conf=result.boxes.conf.cpu().numpy().astype(np.float32),
            masks=np.packbits(masks, axis=-1), mask_shape=np.array(masks.shape),
            input=network_input, output0=output0.astype(np.float32),
            output1=output1.astype(np.float32))
        counts[name] = len(result.boxes)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--output', required=True, help='folder for frames, exports, answers')
    parser.add_argument('--images', default=os.path.join('..', 'shared', 'images'))
    parser.add_argument('--exports', nargs='+', default=list(EXPORTS), choices=list(EXPORTS))
    arguments = parser.parse_args()
    os.makedirs(os.path.join(arguments.output, 'frames'), exist_ok=True)
    frame_list = frames(arguments.images)
    for name, frame in frame_list.items():
        cv2.imwrite(os.path.join(arguments.output, 'frames', f'{name}.png'), frame)
    summary = {'nms': use_torchvision_or_ultralytics_nms()}
    print('NMS:', summary['nms'], flush=True)
    for name in arguments.exports:
        path = build_export(name, list(frame_list.values()), arguments.output)
        summary[name] = predict(path, frame_list, os.path.join(arguments.output, name))
        print(name, json.dumps(summary[name]), flush=True)
    with open(os.path.join(arguments.output, 'summary.json'), 'w') as handle:
        json.dump(summary, handle, indent=1)


if __name__ == '__main__':
    main()
