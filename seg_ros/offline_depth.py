"""
The offline tool's depth option: a depth file beside an image to ``<stem>_points.ply``.

``seg-ros segment IMAGE --depth DEPTH (--intrinsics fx,fy,cx,cy | --camera-info YAML)``. The depth
file is registered to the image (as an RGB-D camera's aligned depth): a 16-bit PNG or TIFF in
millimetres, or a 32-bit float TIFF or ``.npy`` in metres (a uint16 ``.npy`` is millimetres).
The intrinsics are the colour image's; a depth file of another resolution scales them.
"""

import argparse

import cv2
import numpy as np

from seg_ros.core.geometry.camera import Intrinsics
from seg_ros.core.geometry.depth import check_depth_range, depth_encoding_of, depth_to_metres
from seg_ros.core.geometry.ply import ply_bytes
from seg_ros.core.geometry.points import labelled_points
from seg_ros.core.install_hints import install_hint

DEPTH_SUFFIXES = ('.png', '.tif', '.tiff', '.npy')


class DepthInputError(Exception):
    """A depth file, its intrinsics or the PLY output cannot be used; the message says why."""


def add_depth_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--depth``, ``--intrinsics``, ``--camera-info``, ``--depth-range`` and more."""
    parser.add_argument('--depth', nargs='+', default=(), metavar='DEPTH',
                        help='depth files registered to the images, one an image in order: '
                             '16-bit PNG/TIFF (mm) or float32 TIFF/.npy (m); writes '
                             '<name>_points.ply coloured by class')
    camera = parser.add_mutually_exclusive_group()
    camera.add_argument('--intrinsics', default='', metavar='FX,FY,CX,CY',
                        help="the colour image's focal lengths and principal point, pixels")
    camera.add_argument('--camera-info', default='', metavar='YAML',
                        help='camera_calibration YAML (camera_matrix, image_width, ...) or a '
                             'CameraInfo message as YAML (k, width, height)')
    parser.add_argument('--depth-range', type=float, nargs=2, default=(0.1, 20.0),
                        metavar=('MIN', 'MAX'), help='valid depth, metres (default 0.1 20)')
    parser.add_argument('--cloud-stride', type=int, default=1,
                        help='one point every N columns and rows (default 1)')


def check_depth_arguments(args: argparse.Namespace, suffixes: tuple[str, ...]) -> str | None:
    """Return why the depth options cannot be used with these inputs, or None."""
    if not args.depth:
        return None
    if len(args.depth) != len(depth_files(args, suffixes)) or \
            len(args.depth) != len(args.inputs):
        return (f'--depth gives {len(args.depth)} file(s) for {len(args.inputs)} input(s): '
                'give one depth file per image (videos take none)')
    if not (args.intrinsics or args.camera_info):
        return '--depth needs the camera: --intrinsics fx,fy,cx,cy or --camera-info YAML'
    if args.cloud_stride < 1:
        return f'--cloud-stride {args.cloud_stride} must be at least 1'
    try:
        check_depth_range(args.depth_range)
    except ValueError as error:
        return f'--{error}'.replace('--depth_range=', '--depth-range ')
    return None


def read_depth(path: str) -> np.ndarray:
    """
    Read a depth file as (H, W) uint16 millimetres or float32 metres.

    :raises DepthInputError: unreadable, or not a one-channel 16-bit or float32 image.
    """
    if not path.lower().endswith(DEPTH_SUFFIXES):
        raise DepthInputError(f'{path}: depth files are {", ".join(DEPTH_SUFFIXES)}')
    if path.lower().endswith('.npy'):
        try:
            depth = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise DepthInputError(f'{path}: not a readable .npy file ({error})') from None
    else:
        depth = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if depth is None:
            raise DepthInputError(f'{path}: not a readable image')
    if depth.dtype == np.float64:
        depth = depth.astype(np.float32)
    try:
        depth_encoding_of(depth)
    except ValueError as error:
        raise DepthInputError(f'{path}: {error} (an 8-bit PNG is not depth)') from None
    return depth


def camera_intrinsics(args: argparse.Namespace, width: int, height: int) -> Intrinsics:
    """
    Return the colour image's intrinsics from ``--intrinsics`` or ``--camera-info``.

    :raises DepthInputError: malformed values, or a camera_info of another aspect ratio.
    """
    try:
        if args.intrinsics:
            return Intrinsics.parse(args.intrinsics, width, height)
        try:
            import yaml
        except ImportError:
            raise DepthInputError(f'--camera-info needs {install_hint("yaml")}') from None
        try:
            with open(args.camera_info, encoding='utf-8') as file:
                info = yaml.safe_load(file)
        except (OSError, yaml.YAMLError) as error:
            raise DepthInputError(f'{args.camera_info}: not a readable YAML file '
                                  f'({error})') from None
        return Intrinsics.from_camera_info(info).scaled_to(width, height)
    except ValueError as error:
        raise DepthInputError(f'{args.intrinsics or args.camera_info}: {error}') from None


def write_points(result, labels, depth_path: str, stem: str,
                 args: argparse.Namespace) -> str:
    """
    Write ``<stem>_points.ply``: the depth file's valid pixels, labelled with the class map.

    :param result: the image's :class:`~seg_ros.core.segmenter.SegmentationResult`.
    :param labels: the segmenter's :class:`~seg_ros.core.model.labels.Labels`.
    :return: the path written.
    :raises DepthInputError: a depth file, intrinsics or output that cannot be used.
    """
    class_map = result.class_map_full
    height, width = class_map.shape
    depth = read_depth(depth_path)
    try:
        intrinsics = camera_intrinsics(args, width, height).scaled_to(depth.shape[1],
                                                                      depth.shape[0])
    except ValueError as error:
        raise DepthInputError(f'{depth_path}: {error}') from None
    points = labelled_points(depth_to_metres(depth, tuple(args.depth_range)), intrinsics,
                             class_map, args.cloud_stride, result.instance_map)
    path = stem + '_points.ply'
    try:
        with open(path, 'wb') as file:
            file.write(ply_bytes(points, labels.colors_rgb))
    except OSError as error:
        raise DepthInputError(f'{path}: cannot be written ({error.strerror})') from None
    return path


def depth_files(args: argparse.Namespace, suffixes: tuple[str, ...]) -> dict[str, str]:
    """Return each image input's depth file: ``--depth`` in the order of the image inputs."""
    images = [path for path in args.inputs if path.lower().endswith(suffixes)]
    return dict(zip(images, args.depth))
