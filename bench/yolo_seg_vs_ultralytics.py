"""
seg_ros's YOLO-seg instances against ultralytics' own predictor, export by export.

Reads what ``ultralytics_yolo_seg.py`` saved (run first, in a scratch venv that has ultralytics:
seg_ros never imports it): the frames (lossless PNG), the ONNX exports and ultralytics'
answers (``conf=0.5, iou=0.5, max_det=100, retina_masks=True``) with the network input and raw
outputs it had. For each export and frame, two comparisons:

* ``seg_ros``: ``Segmenter.run`` on the frame (its own letterbox and onnxruntime session,
  score 0.5, NMS IoU 0.5, at most 100): what a node publishes;
* ``decode``: ``decode_yolo_seg`` on ultralytics' own raw outputs: the decoding rule alone, no
  difference of runtime or input.

A seg_ros detection matches an ultralytics one of the same class with box IoU >= 0.9 (greedy,
best IoU first). Per export: ultralytics' detections, seg_ros's, matched (% of ultralytics'),
extra (seg_ros's unmatched), the share of matched masks with IoU >= 0.9, the median and the
lowest mask IoU, the mask pixels that differ in all; plus whether seg_ros's network input equals
ultralytics' (largest difference) and the largest difference of the raw outputs.

Usage::

    .venv/bin/python bench/yolo_seg_vs_ultralytics.py --reference /tmp/yolo-seg-ref
"""

import argparse
import glob
import json
import os
import sys

import cv2
import numpy as np

from seg_ros.core.decode.instance_decoders import (decode_yolo_seg, InstanceSettings,
                                                   yolo_seg_layout)
from seg_ros.core.decode.letterbox import Letterbox
from seg_ros.core.segmenter import Segmenter, SegmenterConfig

SCORE, IOU, MAX_DET = 0.5, 0.5, 100
MATCH_BOX_IOU = 0.9
GOOD_MASK_IOU = 0.9


def load_reference(path: str) -> dict:
    """Return ultralytics' answer for one frame: boxes, classes, scores, masks, input, outputs."""
    with np.load(path) as data:
        shape = tuple(data['mask_shape'])
        masks = np.unpackbits(data['masks'], axis=-1, count=shape[-1]).astype(bool)
        return {'xyxy': data['boxes'], 'class_id': data['cls'], 'score': data['conf'],
                'masks': masks.reshape(shape), 'input': data['input'],
                'output0': data['output0'], 'output1': data['output1']}


def box_iou(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Return the (N, M) IoUs of two sets of xyxy boxes."""
    top_left = np.maximum(first[:, None, :2], second[None, :, :2])
    bottom_right = np.minimum(first[:, None, 2:], second[None, :, 2:])
    overlap = np.prod((bottom_right - top_left).clip(0), axis=2)
    areas = [np.prod((boxes[:, 2:] - boxes[:, :2]).clip(0), axis=1) for boxes in (first, second)]
    union = areas[0][:, None] + areas[1][None, :] - overlap
    return np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)


def match(reference: dict, instances) -> dict:
    """Match detections (same class, box IoU >= 0.9, best first); return counts and mask IoUs."""
    ious = box_iou(reference['xyxy'].astype(np.float64), instances.xyxy.astype(np.float64))
    ious[reference['class_id'][:, None] != instances.class_id[None, :]] = 0
    pairs = []
    while ious.size and ious.max() >= MATCH_BOX_IOU:
        first, second = np.unravel_index(np.argmax(ious), ious.shape)
        pairs.append((first, second))
        ious[first, :] = 0
        ious[:, second] = 0
    mask_ious, differing = [], 0
    for first, second in pairs:
        expected, got = reference['masks'][first], instances.masks[second]
        union = np.logical_or(expected, got).sum()
        mask_ious.append(float(np.logical_and(expected, got).sum() / union) if union else 1.0)
        differing += int((expected != got).sum())
    return {'reference': len(reference['xyxy']), 'seg_ros': len(instances.xyxy),
            'matched': len(pairs), 'mask_ious': mask_ious, 'differing': differing}


def compare_export(onnx_path: str, answers_dir: str, frames_dir: str) -> dict:
    """Compare every frame of one export; return per-frame figures for both comparisons."""
    segmenter = Segmenter(SegmenterConfig(onnx_path, backend='onnxruntime',
                                          score_threshold=SCORE, nms_iou=IOU,
                                          max_instances=MAX_DET))
    width, height = segmenter.backend.description.input_width, \
        segmenter.backend.description.input_height
    settings = InstanceSettings(SCORE, IOU, MAX_DET)
    figures = {}
    for path in sorted(glob.glob(os.path.join(answers_dir, '*.npz'))):
        name = os.path.splitext(os.path.basename(path))[0]
        frame = cv2.imread(os.path.join(frames_dir, f'{name}.png'), cv2.IMREAD_COLOR)
        reference = load_reference(path)
        letterbox = Letterbox.fit(frame.shape[1], frame.shape[0], width, height)
        network_input = segmenter.backend.prepare(letterbox.apply(frame), 'bgr8')
        expected_input = reference['input'].transpose(2, 0, 1)[None].astype(np.float32) / 255
        outputs = segmenter.backend.forward(network_input)
        layout = yolo_seg_layout({key: value.shape for key, value in outputs.items()}, width,
                                 height)
        theirs = {layout.detections: reference['output0'], layout.prototypes: reference['output1']}
        figures[name] = {
            'seg_ros': match(reference, segmenter.run(frame, encoding='bgr8', overlay=False,
                                                      color_mask=False).instances),
            'decode': match(reference, decode_yolo_seg(theirs, layout, letterbox, settings)),
            'input_max_diff': float(np.abs(np.asarray(network_input) - expected_input).max()),
            'output_max_diff': max(float(np.abs(outputs[key] - theirs[key]).max())
                                   for key in theirs)}
    return figures


def summary(figures: dict, which: str) -> dict:
    """Return the totals of one comparison over frames."""
    rows = [frame[which] for frame in figures.values()]
    reference = sum(row['reference'] for row in rows)
    matched = sum(row['matched'] for row in rows)
    ious = np.array([iou for row in rows for iou in row['mask_ious']])
    return {'reference': reference, 'seg_ros': sum(row['seg_ros'] for row in rows),
            'matched': matched, 'matched %': 100.0 * matched / max(reference, 1),
            'extra': sum(row['seg_ros'] - row['matched'] for row in rows),
            'differing': sum(row['differing'] for row in rows),
            'masks >= 0.9 %': 100.0 * float((ious >= GOOD_MASK_IOU).mean()) if len(ious) else
            float('nan'),
            'median IoU': float(np.median(ious)) if len(ious) else float('nan'),
            'lowest IoU': float(ious.min()) if len(ious) else float('nan')}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--reference', required=True,
                        help="ultralytics_yolo_seg.py's --output folder")
    parser.add_argument('--json', default='', help='also write every figure here')
    parser.add_argument('--frames', action='store_true', help='a row per frame too')
    parser.add_argument('--exports', nargs='*', default=[],
                        help='only these exports (names without .onnx; default: all)')
    arguments = parser.parse_args()
    exports = sorted(path for path in glob.glob(os.path.join(arguments.reference, '*.onnx'))
                     if not arguments.exports
                     or os.path.splitext(os.path.basename(path))[0] in arguments.exports)
    if not exports:
        sys.exit(f'no exports in {arguments.reference}: run ultralytics_yolo_seg.py first')
    frames_dir = os.path.join(arguments.reference, 'frames')
    every = {}
    print('| export | comparison | ultralytics | seg_ros | matched | matched % | extra | '
          'masks IoU >= 0.9 | median IoU | lowest IoU | pixels differing | input diff | '
          'output diff |')
    print('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for onnx_path in exports:
        name = os.path.splitext(os.path.basename(onnx_path))[0]
        figures = compare_export(onnx_path, os.path.join(arguments.reference, name), frames_dir)
        every[name] = figures
        input_diff = max(frame['input_max_diff'] for frame in figures.values())
        output_diff = max(frame['output_max_diff'] for frame in figures.values())
        rows = [(name, which, summary(figures, which)) for which in ('seg_ros', 'decode')]
        if arguments.frames:
            rows += [(f'{name} {frame}', which, summary({frame: figures[frame]}, which))
                     for frame in figures for which in ('seg_ros', 'decode')]
        for label, which, total in rows:
            print(f"| {label} | {which} | {total['reference']} | {total['seg_ros']} | "
                  f"{total['matched']} | {total['matched %']:.1f} % | {total['extra']} | "
                  f"{total['masks >= 0.9 %']:.1f} % | {total['median IoU']:.3f} | "
                  f"{total['lowest IoU']:.3f} | {total['differing']} | {input_diff:.1e} | "
                  f'{output_diff:.1e} |',
                  flush=True)
    if arguments.json:
        with open(arguments.json, 'w') as handle:
            json.dump(every, handle, indent=1)


if __name__ == '__main__':
    main()
