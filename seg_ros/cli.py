"""
``seg-ros``: segment images, folders and videos from the shell, no ROS needed.

``seg-ros segment INPUT... [-o DIR]`` writes, for each image, ``<name>_overlay.png`` (with a legend
panel unless ``--no-legend``), ``<name>_mask.png``, ``<name>_classmap.png`` (one class index a
pixel) and, where the model has scores, ``<name>_confidence.png`` (``round(255 p)``, p the softmax
probability of the pixel's class); for each video, ``<name>_overlay.mp4`` (``--start``, ``--end``,
``--every``, ``--max-frames`` choose its frames). A folder stands for the images and videos in it.
With an instance model (YOLO-seg, Mask R-CNN) or ``--instance-classes``, each image also gets
``<name>_instances.json`` (id, class, score and box of each instance, frame pixels) and
``<name>_instances.png`` (16-bit instance ids), and the overlay shows the instances. It prints the
share of pixels of each class of each input. With ``--depth`` (:mod:`seg_ros.offline_depth`) each
image also gets ``<name>_points.ply``, its depth's points coloured by class. ``seg-ros bag``
segments the image topics of a rosbag2 bag into a bag (:mod:`seg_ros.bag`); ``seg-ros convert``
turns the Torch7 ENet into ONNX. After a colcon build: ``ros2 run seg_ros seg-ros segment ...``.

This module only parses the command line; :mod:`seg_ros.offline` does the work.
"""

import argparse
import sys

from seg_ros import offline_depth
from seg_ros.bag.options import add_bag_arguments, positive_int, seconds
from seg_ros.fleet.options import add_fleet_arguments
from seg_ros.offline.convert_options import add_convert_arguments, CONVERT_DESCRIPTION
from seg_ros.offline.model_options import add_model_arguments

EXIT_STATUSES = """exit status:
  0    every input segmented and written
  1    some inputs could not be read, segmented or written (named on stderr); the others were
  2    nothing done: a bad option, no input, an unusable output folder, a model or runtime
       that cannot be used (one line on stderr says which)
  130  interrupted (Ctrl-C): the outputs already listed are complete, no cut-off file is left
"""


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of every subcommand (no model, torch or rosbags is imported)."""
    parser = argparse.ArgumentParser(prog='seg-ros', description=__doc__.split('\n\n')[0],
                                     epilog=EXIT_STATUSES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    segment = commands.add_parser(
        'segment', help='segment images, folders and videos', epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description='Segment images, folders of images and videos into overlays, colour\n'
                    'masks and class maps. After a colcon build: ros2 run seg_ros seg-ros ...')
    add_segment_arguments(segment)
    bag = commands.add_parser('bag', help='segment the image topics of a rosbag2 bag into a bag',
                              epilog=EXIT_STATUSES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_bag_arguments(bag)
    add_model_arguments(bag)
    fleet = commands.add_parser('fleet', help='segment many bags on Ray, each into the bag '
                                'that seg-ros bag writes for it', epilog=EXIT_STATUSES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_fleet_arguments(fleet)
    add_model_arguments(fleet)
    convert = commands.add_parser('convert', help='convert the Torch7 ENet .net file to ONNX '
                                                  '(needs onnx, no torch)',
                                  description=CONVERT_DESCRIPTION)
    add_convert_arguments(convert)
    return parser


def add_segment_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the inputs, output, video, overlay and model options of ``seg-ros segment``."""
    parser.add_argument('inputs', nargs='+', metavar='INPUT',
                        help='image or video files, or folders of them (not their subfolders)')
    parser.add_argument('-o', '--output-dir', default='seg_ros_output', metavar='DIR',
                        help='folder for the results, made if needed (default: %(default)s)')
    add_video_arguments(parser.add_argument_group('videos (as seg-ros bag selects frames)'))
    parser.add_argument('--no-legend', dest='legend', action='store_false',
                        help='overlay without the legend panel')
    parser.add_argument('--quiet', action='store_true', help='no progress')
    add_model_arguments(parser)
    offline_depth.add_depth_arguments(parser.add_argument_group('depth'))


def add_video_arguments(group) -> None:
    """Add the frame selection and frame rate of videos."""
    group.add_argument('--start', type=seconds, default=0.0, metavar='S',
                       help="segment frames from S seconds after the video's start")
    group.add_argument('--end', type=seconds, default=None, metavar='S',
                       help="segment frames up to S seconds after the video's start")
    group.add_argument('--every', type=positive_int, default=1, metavar='N',
                       help='segment every Nth frame of those (default: every one)')
    group.add_argument('--max-frames', type=positive_int, default=None, metavar='N',
                       help='stop after N segmented frames of each video')
    group.add_argument('--fps', type=float, default=0.0,
                       help="output frame rate (default: the input's, divided by --every)")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    try:
        return _run(build_parser().parse_args(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:  # while the model loads, before any output is written
        print('seg-ros: interrupted; nothing written', file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.command == 'convert':
        from seg_ros.offline.convert import run_convert
        return run_convert(args)
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
    from seg_ros.offline.segment import run_segment
    return run_segment(args)


if __name__ == '__main__':
    sys.exit(main())
