"""
``seg-ros``: segment images and videos from the shell, no ROS needed.

``seg-ros segment INPUT... [-o DIR]`` writes, for each image, ``<name>_overlay.png`` (with a legend
panel unless ``--no-legend``), ``<name>_mask.png`` and ``<name>_classmap.png`` (one class index a
pixel); for each video, ``<name>_overlay.mp4`` at the input's frame rate (or ``--fps``). With an
instance model (YOLO-seg, Mask R-CNN) or ``--instance-classes``, each image also gets
``<name>_instances.json`` (id, class, score and box of each instance, frame pixels) and
``<name>_instances.png`` (16-bit instance ids), and the overlay shows the instances. It prints
the share of pixels of each class. With ``--depth`` (:mod:`seg_ros.offline_depth`) each image also
gets ``<name>_points.ply``, its depth's points coloured by class. ``seg-ros bag`` segments the
image topics of a rosbag2 bag into a bag (:mod:`seg_ros.bag`); ``seg-ros convert`` turns the
Torch7 ENet into ONNX.
"""

import argparse
import json
import os
import sys
import time

import cv2
import numpy as np

from seg_ros import offline_depth
from seg_ros.bag.options import add_bag_arguments
from seg_ros.core.backends import BACKENDS
from seg_ros.core.decode.instances import class_name
from seg_ros.core.errors import FrameError, ModelError
from seg_ros.core.model.description import (CHANNEL_ORDERS, INPUT_LAYOUTS, OUTPUT_LAYOUTS, PRESETS,
                                            TASKS, UPSAMPLING)
from seg_ros.core.render.legend import with_legend
from seg_ros.core.segmenter import Segmenter, SegmenterConfig
from seg_ros.fleet.options import add_fleet_arguments
from seg_ros.paths import default_label_paths, embedded_model_path

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm')


class InputError(Exception):
    """One input cannot be processed; the others still are."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='seg-ros', description=__doc__.split('\n\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    segment = commands.add_parser('segment', help='segment images and videos')
    segment.add_argument('inputs', nargs='+', metavar='INPUT', help='image or video files')
    segment.add_argument('-o', '--output-dir', default='seg_ros_output',
                         help='folder for the results (default: %(default)s)')
    add_model_arguments(segment)
    offline_depth.add_depth_arguments(segment)
    segment.add_argument('--fps', type=float, default=0.0,
                         help='output video frame rate (default: that of the input)')
    segment.add_argument('--no-legend', dest='legend', action='store_false',
                         help='overlay without the legend panel')
    segment.add_argument('--quiet', action='store_true', help='no progress bar')
    bag = commands.add_parser('bag', help='segment the image topics of a rosbag2 bag into a bag')
    add_bag_arguments(bag)
    add_model_arguments(bag)
    fleet = commands.add_parser('fleet', help='segment many bags on Ray, each into the bag '
                                'that seg-ros bag writes for it')
    add_fleet_arguments(fleet)
    add_model_arguments(fleet)
    commands.add_parser('convert', add_help=False,
                        help='convert the Torch7 ENet .net file to ONNX (needs torch)')
    return parser


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the model, rendering and instance options of ``segment`` and ``bag``."""
    parser.add_argument('--model', default='', help='network file (default: the embedded ENet)')
    parser.add_argument('--config', default='',
                        help='second file of a two-file model: Caffe .prototxt, TensorFlow '
                             '.pbtxt, Darknet .cfg')
    parser.add_argument('--classes', default='', help='class names, one a line')
    parser.add_argument('--colors', default='', help="class colours, one 'R,G,B' a line")
    parser.add_argument('--width', type=int, default=0,
                        help="network input width (default: the model description's, else the "
                             'size the model declares, else 1024x512)')
    parser.add_argument('--height', type=int, default=0, help='network input height')
    add_description_arguments(parser)
    parser.add_argument('--alpha', type=float, default=0.5, help='mask weight in the overlay')
    parser.add_argument('--backend', default='auto', choices=BACKENDS)
    parser.add_argument('--target', default='auto', choices=('auto', 'cuda', 'cpu'))
    parser.add_argument('--precision', default='f32', choices=('f32', 'fast'),
                        help='fast: OpenVINO may use bf16/f16 (faster, slightly different '
                             'masks); default: %(default)s')
    add_instance_arguments(parser)


def add_description_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the model description options, the node's parameters of the same names."""
    parser.add_argument('--preset', default='', choices=tuple(PRESETS),
                        help='imagenet: x/255, RGB, ImageNet mean/std (torchvision, timm, '
                             'HuggingFace); unit: x/255, RGB (ENet). Default: the model '
                             "description's (sidecar, metadata)")
    parser.add_argument('--rescale-factor', type=float, default=0.0,
                        help='pixel (0-255) multiplier: input = (pixel * rescale_factor - mean) '
                             '/ std (default 1/255)')
    parser.add_argument('--mean', type=float, nargs='+', default=(), metavar='M',
                        help='mean after rescaling, R G B (or one value)')
    parser.add_argument('--std', type=float, nargs='+', default=(), metavar='S',
                        help='std after the mean, R G B (or one value)')
    parser.add_argument('--channel-order', default='', choices=CHANNEL_ORDERS)
    parser.add_argument('--input-layout', default='', choices=INPUT_LAYOUTS)
    parser.add_argument('--output-name', default='',
                        help='output holding the scores or class ids (default: the first)')
    parser.add_argument('--output-layout', default='', choices=OUTPUT_LAYOUTS)
    parser.add_argument('--upsample', default='', choices=UPSAMPLING,
                        help='low-resolution scores: bilinear before the argmax (default) or '
                             'nearest after it')


def add_instance_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the instance options, the node's parameters of the same names."""
    parser.add_argument('--task', default='', choices=TASKS,
                        help="what the model is (default: the model description's; ultralytics "
                             'YOLO-seg exports say so themselves, a Mask R-CNN export needs '
                             '--task maskrcnn or a sidecar)')
    parser.add_argument('--instance-classes', nargs='+', default=(), metavar='CLASS',
                        help='semantic models: classes whose connected components become '
                             'instances (e.g. Car Person); instance models: the classes kept '
                             '(default: all)')
    parser.add_argument('--score-threshold', type=float, default=0.5,
                        help='instance models: keep detections scoring above (default 0.5)')
    parser.add_argument('--nms-iou', type=float, default=0.5,
                        help='YOLO-seg: suppress overlaps of one class above this IoU (0.5)')
    parser.add_argument('--max-instances', type=int, default=100,
                        help='at most this many instances a frame, best first (100)')
    parser.add_argument('--min-instance-area', type=int, default=100,
                        help='instance_classes: smallest component kept, in pixels (100)')


def make_segmenter(args: argparse.Namespace) -> Segmenter:
    if not 0.0 <= args.alpha <= 1.0:
        raise ModelError('alpha', args.alpha, f'--alpha {args.alpha} is outside [0, 1]')
    model = args.model or embedded_model_path()
    default_classes, default_colors = default_label_paths(model)
    return Segmenter(SegmenterConfig(
        model_path=model, input_width=args.width, input_height=args.height,
        preset=args.preset, rescale_factor=args.rescale_factor, image_mean=tuple(args.mean),
        image_std=tuple(args.std), channel_order=args.channel_order,
        input_layout=args.input_layout, output_name=args.output_name,
        output_layout=args.output_layout, upsample=args.upsample,
        backend=args.backend, target=args.target,
        classes_path=args.classes or default_classes, colors_path=args.colors or default_colors,
        config_path=args.config, precision=args.precision, task=args.task,
        instance_classes=tuple(args.instance_classes), score_threshold=args.score_threshold,
        nms_iou=args.nms_iou, max_instances=args.max_instances,
        min_instance_area=args.min_instance_area))


class ClassShares:
    """Pixel counts per class, summed over everything segmented."""

    def __init__(self, num_classes: int) -> None:
        self.counts = np.zeros(num_classes, np.int64)

    def add(self, class_map: np.ndarray) -> None:
        counts = np.bincount(class_map.ravel(), minlength=len(self.counts))
        counts[:len(self.counts)] += self.counts  # an instance model's ids may go beyond
        self.counts = counts

    def lines(self, names: tuple[str, ...]) -> list[str]:
        total = max(int(self.counts.sum()), 1)
        order = np.argsort(-self.counts, kind='stable')
        return [f'  {class_name(names, int(i)):<16} {100.0 * self.counts[i] / total:6.2f} %'
                for i in order if self.counts[i]]


def segment_frame(segmenter: Segmenter, frame: np.ndarray, alpha: float):
    return segmenter.run(frame, encoding='bgr8', alpha=alpha, full_resolution=True)


def segment_image(segmenter, path: str, out_dir: str, args, shares: ClassShares) -> list[str]:
    frame = cv2.imread(path, cv2.IMREAD_COLOR)
    if frame is None:
        raise InputError(f'{path}: not a readable image')
    try:
        result = segment_frame(segmenter, frame, args.alpha)
    except FrameError as error:
        raise InputError(f'{path}: {error}') from error
    shares.add(result.class_map_full)
    stem = os.path.join(out_dir, os.path.splitext(os.path.basename(path))[0])
    overlay = result.overlay
    if args.legend:
        overlay = with_legend(overlay, segmenter.labels, result.class_map_full)
    written = [stem + '_overlay.png', stem + '_mask.png', stem + '_classmap.png']
    images = [overlay, result.color_mask, result.class_map_full]
    if result.instances is not None:
        written.append(stem + '_instances.png')  # 16-bit: 0 = none, else the instance id
        images.append(result.instance_map)
    for file_name, image in zip(written, images):
        if not cv2.imwrite(file_name, image):
            raise InputError(f'{file_name}: cannot be written')
    if result.instances is not None:
        written.append(stem + '_instances.json')
        try:
            with open(written[-1], 'w', encoding='utf-8') as json_file:
                json.dump(result.instances.to_json(segmenter.labels.names), json_file, indent=1)
        except OSError as error:
            raise InputError(f'{written[-1]}: cannot be written ({error.strerror})') from error
    depth_path = offline_depth.depth_files(args, IMAGE_SUFFIXES).get(path)
    if depth_path:
        written.append(offline_depth.write_points(result, segmenter.labels, depth_path, stem,
                                                  args))
    return written


def progress(done: int, total: int, started: float, quiet: bool) -> None:
    if quiet:
        return
    elapsed = time.monotonic() - started
    rate = done / elapsed if elapsed > 0 else 0.0
    if total > 0:
        filled = int(30 * done / total)
        bar = '#' * filled + '-' * (30 - filled)
        text = f'\r  [{bar}] {done}/{total} frames, {rate:.1f} fps'
    else:
        text = f'\r  {done} frames, {rate:.1f} fps'
    print(text, end='', file=sys.stderr, flush=True)


def segment_video(segmenter, path: str, out_dir: str, args, shares: ClassShares) -> list[str]:
    capture = cv2.VideoCapture(path)
    ok, frame = capture.read() if capture.isOpened() else (False, None)
    if not ok:
        capture.release()
        raise InputError(f'{path}: not a readable image or video')
    fps = args.fps or capture.get(cv2.CAP_PROP_FPS) or 30.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    stem = os.path.join(out_dir, os.path.splitext(os.path.basename(path))[0])
    out_path = stem + '_overlay.mp4'
    writer = None
    done, started, skipped, reason = 0, time.monotonic(), 0, ''
    try:
        while ok:
            try:
                result = segment_frame(segmenter, frame, args.alpha)
            except FrameError as error:  # this frame's output is unusable; the next may not be
                skipped, reason = skipped + 1, str(error)
                ok, frame = capture.read()
                continue
            shares.add(result.class_map_full)
            overlay = result.overlay
            if args.legend:
                overlay = with_legend(overlay, segmenter.labels, result.class_map_full)
            if writer is None:
                height, width = overlay.shape[:2]
                writer = cv2.VideoWriter(out_path, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                                         (width, height))
                if not writer.isOpened():
                    raise InputError(f'{out_path}: cannot be written')
            writer.write(overlay)
            done += 1
            progress(done, total, started, args.quiet)
            ok, frame = capture.read()
    finally:
        capture.release()
        if writer is not None:
            writer.release()
        if not args.quiet:
            print(file=sys.stderr)
    if skipped:
        print(f'seg-ros: {path}: {skipped} frames skipped, the last because {reason}',
              file=sys.stderr)
    if writer is None:
        raise InputError(f'{path}: no frame could be segmented ({reason})')
    return [out_path]


def print_model(segmenter: Segmenter) -> None:
    """Print what runs: the model, its backend, notes and warnings."""
    print(f'model: {segmenter.config.model_path} ({segmenter.backend.describe()})')
    for note in segmenter.notes:
        print(f'  {note}')
    if segmenter.model_file != segmenter.config.model_path:
        print(f'running its conversion {segmenter.model_file}')
    for warning in segmenter.warnings:
        print(f'seg-ros: warning: {warning}', file=sys.stderr)
    if segmenter.verification:
        print(f'output check: {segmenter.verification}')
    if segmenter.fast_agreement is not None:
        print(f'precision fast ({segmenter.backend.precision}): '
              f'{100 * segmenter.fast_agreement:.2f} % of the warm-up frame agrees with f32')


def run_segment(args: argparse.Namespace) -> int:
    reason = offline_depth.check_depth_arguments(args, IMAGE_SUFFIXES)
    if reason:
        print(f'seg-ros: {reason}', file=sys.stderr)
        return 2
    try:
        segmenter = make_segmenter(args)
    except ValueError as error:
        print(f'seg-ros: {error}', file=sys.stderr)
        return 2
    print_model(segmenter)
    os.makedirs(args.output_dir, exist_ok=True)
    shares = ClassShares(len(segmenter.labels.names))
    failures = 0
    for path in args.inputs:
        try:
            if not os.path.isfile(path):
                raise InputError(f'{path}: no such file')
            is_image = path.lower().endswith(IMAGE_SUFFIXES)
            segment = segment_image if is_image else segment_video
            for written in segment(segmenter, path, args.output_dir, args, shares):
                print(f'wrote {written}')
        except (InputError, offline_depth.DepthInputError) as error:
            failures += 1
            print(f'seg-ros: {error}', file=sys.stderr)
    if shares.counts.any():
        print('class shares (% of pixels):')
        print('\n'.join(shares.lines(segmenter.labels.names)))
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == 'convert':
        from seg_ros.tools.torch7 import main as convert_main
        return convert_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == 'fleet':
        try:
            from seg_ros.fleet.run import run_fleet
        except ImportError as error:  # rosbags is an optional dependency
            print(f'seg-ros fleet needs the rosbags package ({error}): pip install rosbags',
                  file=sys.stderr)
            return 2
        return run_fleet(args)
    if args.command == 'bag':
        try:
            from seg_ros.bag.segment_bag import run_bag
        except ImportError as error:  # rosbags is an optional dependency
            print(f'seg-ros bag needs the rosbags package ({error}): pip install rosbags',
                  file=sys.stderr)
            return 2
        return run_bag(args)
    return run_segment(args)


if __name__ == '__main__':
    sys.exit(main())
