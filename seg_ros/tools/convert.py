"""
``seg-ros convert``: a Torch7 segmentation network (the ENet Cityscapes ``.net``) to ONNX.

The conversion is the node's own (:mod:`seg_ros.core.model.torch7_onnx`: NumPy and the ``onnx``
package, no torch); this module adds what a file shipped on its own needs, the model
description in its metadata (``seg_ros.description``, as :mod:`seg_ros.tools.export` writes it),
and the command line::

    seg-ros convert NET -o OUT.onnx [--width 1024] [--height 512] [--scores-only] [--bgr]
                    [--scale 1/255] [--mean 0,0,0] [--check IMAGE ...] [--min-agreement 99.9]

API::

    convert_torch7(net_path, onnx_path, width=1024, height=512, *, fused=True, swap_rb=True,
                   scale=1/255, mean=(0, 0, 0)) -> dict
        # writes onnx_path and returns a summary: {'layers': {torch7 type: count},
        # 'values': int (weights and constants), 'ops': {onnx op: count}, 'num_classes': int,
        # 'format': str, 'path': str}
    main(argv=None) -> int
"""

import argparse
from collections import Counter
from collections.abc import Sequence
import os
import sys

import cv2
import numpy as np

from seg_ros.core.backends import open_backend
from seg_ros.core.model.torch7_onnx import exported_description, save_model, torch7_to_onnx
from seg_ros.offline.convert_options import build_convert_parser


def convert_torch7(net_path: str, onnx_path: str, width: int = 1024, height: int = 512, *,
                   fused: bool = True, swap_rb: bool = True, scale: float = 1 / 255,
                   mean: Sequence[float] = (0, 0, 0)) -> dict:
    """
    Convert a Torch7 segmentation network to an ONNX file that carries its description.

    :param net_path: Torch7 file, e.g. the ENet Cityscapes ``enet-model.net``.
    :param onnx_path: ONNX file to write (atomically).
    :param width: default input width recorded in the model (H and W stay dynamic).
    :param height: default input height recorded in the model.
    :param fused: write the fused form (uint8 BGR frame -> uint8 class map), else raw scores.
    :param swap_rb: the network takes RGB (the BGR frame's R and B are swapped).
    :param scale: pixel factor, applied after subtracting ``mean``.
    :param mean: per-channel mean in pixel units, network channel order.
    :return: the summary (see the module's docstring).
    :raises ValueError: the file is not a Torch7 network the converter supports.
    :raises OSError: a file cannot be read or written.
    """
    import onnx

    proto = torch7_to_onnx(net_path, fused=fused, swap_rb=swap_rb, scale=scale, mean=mean,
                           width=width, height=height)
    props = {prop.key: prop.value for prop in proto.metadata_props}
    num_classes = int(props['seg_ros.num_classes'])
    output_name = proto.graph.output[0].name
    props.update(exported_description(width, height, fused, swap_rb, scale, mean, num_classes,
                                      output_name))
    onnx.helper.set_model_props(proto, props)
    save_model(proto, onnx_path)
    layers = dict(item.rsplit(' x', 1) for item in props['seg_ros.torch7_layers'].split(', '))
    return {
        'layers': {name: int(count) for name, count in sorted(layers.items())},
        'values': sum(int(np.prod(tensor.dims)) for tensor in proto.graph.initializer),
        'ops': dict(sorted(Counter(node.op_type for node in proto.graph.node).items())),
        'num_classes': num_classes,
        'format': props['seg_ros.format'],
        'path': os.fspath(onnx_path),
    }


def check_agreement(net_path: str, onnx_path: str, width: int, height: int, scale: float,
                    mean: Sequence[float], swap_rb: bool, images: Sequence[str],
                    min_percent: float) -> int:
    """
    Print, for each image, the share of pixels whose class the two models agree on.

    The original runs in ``cv2.dnn`` (float scores, argmax); the converted one with seg_ros's
    fastest backend here, in float32.

    :return: 0 when every image was read and agrees at least ``min_percent``, else 1.
    """
    original = cv2.dnn.readNet(net_path)
    # The converted model carries its description (pre-processing, output) in its metadata.
    converted = open_backend(onnx_path, {'input_width': width, 'input_height': height},
                             backend='auto', target='cpu')
    size = (width, height)
    status = 0
    for path in images:
        frame = cv2.imread(path, cv2.IMREAD_COLOR)
        if frame is None:
            print(f'seg-ros convert: cannot read image {path!r}', file=sys.stderr)
            status = 1
            continue
        original.setInput(cv2.dnn.blobFromImage(frame, scale, size, tuple(mean),
                                                swapRB=swap_rb, crop=False))
        expected = original.forward()[0].argmax(axis=0)
        percent = 100.0 * float(np.mean(converted.infer(frame) == expected))
        verdict = 'ok' if percent >= min_percent else f'BELOW {min_percent:g} %'
        print(f'{path}: {percent:.4f} % of pixels agree with cv2.dnn on the original '
              f'({converted.name}) {verdict}')
        if percent < min_percent:
            status = 1
    return status


def convert_command(args: argparse.Namespace) -> int:
    """Run ``seg-ros convert`` with its parsed flags; print the summary; return the status."""
    try:
        summary = convert_torch7(args.net, args.output, args.width, args.height,
                                 fused=not args.scores_only, swap_rb=not args.bgr,
                                 scale=args.scale, mean=args.mean)
    except (OSError, ValueError) as error:
        print(f'seg-ros convert: {error}', file=sys.stderr)
        return 1
    print(f"wrote {summary['path']}: {summary['format']} form, {summary['num_classes']} "
          f"classes, {summary['values']} weight values")
    print('torch7 layers: ' + ', '.join(f'{k} x{v}' for k, v in summary['layers'].items()))
    print('onnx ops: ' + ', '.join(f'{k} x{v}' for k, v in summary['ops'].items()))
    if args.check:
        return check_agreement(args.net, summary['path'], args.width, args.height, args.scale,
                               args.mean, not args.bgr, args.check, args.min_agreement)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line of ``seg-ros convert`` (the flags: :mod:`seg_ros.offline.convert_options`)."""
    return convert_command(build_convert_parser().parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
