"""
``seg-ros convert``'s flags, parsed without onnx (the conversion: :mod:`.convert`).

``seg-ros convert --help`` works everywhere; onnx is needed only to run the conversion.
"""

from __future__ import annotations

import argparse

#: Where the converter's packages come from (the package's ``tools`` extra).
INSTALL_HINT = ('apt install python3-onnx (no rosdep key) or pip install onnx (on a robot: in '
                'the robot venv of docs/robot.md); the node and seg-ros segment need it only to '
                'run a .net on ONNX Runtime or OpenVINO (docs/models.md)')


def parse_scale(text: str) -> float:
    """Parse a scale given as a number or a fraction such as ``1/255``."""
    numerator, _, denominator = text.partition('/')
    try:
        return float(numerator) / float(denominator or 1)
    except (ValueError, ZeroDivisionError) as error:
        raise argparse.ArgumentTypeError(f'bad scale {text!r}') from error


def parse_mean(text: str) -> tuple[float, float, float]:
    """Parse a mean given as three comma-separated numbers."""
    try:
        values = tuple(float(v) for v in text.split(','))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f'bad mean {text!r}') from error
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f'mean needs 3 values, got {text!r}')
    return values


def add_convert_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``seg-ros convert``."""
    parser.add_argument('net', help='Torch7 .net/.t7 file')
    parser.add_argument('-o', '--output', required=True, help='ONNX file to write')
    parser.add_argument('--width', type=int, default=1024, help='default input width')
    parser.add_argument('--height', type=int, default=512, help='default input height')
    parser.add_argument('--scores-only', action='store_true',
                        help='write float NCHW -> scores instead of uint8 BGR -> class map')
    parser.add_argument('--bgr', action='store_true',
                        help='the network takes BGR (default: RGB, channels swapped)')
    parser.add_argument('--scale', type=parse_scale, default=1 / 255,
                        help='pixel scale, after the mean (default 1/255)')
    parser.add_argument('--mean', type=parse_mean, default=(0.0, 0.0, 0.0),
                        help='per-channel mean, network order, pixel units (default 0,0,0)')
    parser.add_argument('--check', nargs='+', metavar='IMAGE', default=[],
                        help='then segment these images with the original (cv2.dnn) and the '
                             'converted model and print the share of pixels that agree')
    parser.add_argument('--min-agreement', type=float, default=99.9, metavar='PERCENT',
                        help='with --check: exit with status 1 below this (default 99.9)')


def build_convert_parser(prog: str = 'seg-ros convert') -> argparse.ArgumentParser:
    """Return the parser of ``seg-ros convert`` on its own."""
    parser = argparse.ArgumentParser(prog=prog, description=CONVERT_DESCRIPTION)
    add_convert_arguments(parser)
    return parser


CONVERT_DESCRIPTION = ('Convert a Torch7 segmentation network (e.g. ENet enet-model.net) to '
                       f'ONNX (no torch needed). Needs onnx: {INSTALL_HINT}.')
