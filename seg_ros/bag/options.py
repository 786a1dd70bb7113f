"""The options of ``seg-ros bag`` besides the model's (no ``rosbags`` import: ``--help`` works)."""

import argparse

from seg_ros.core.track.settings import TRACK_OPTIONS

#: What ``--outputs`` may name: the node's image outputs, confidence, instance outputs and, with
#: ``--depth-topic``, its labelled points and objects.
OUTPUT_NAMES = ('class_map', 'color_mask', 'overlay', 'confidence', 'instances', 'instance_map',
                'points', 'objects')
STORAGES = ('mcap', 'sqlite3')
TRANSPORTS = ('raw', 'compressed', 'both')


def positive_int(text: str) -> int:
    """Parse an integer >= 1 for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not an integer') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'{value} is below 1')
    return value


def seconds(text: str) -> float:
    """Parse a time >= 0 in seconds for argparse."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number of seconds') from None
    if not value >= 0.0:
        raise argparse.ArgumentTypeError(f'{value} is below 0')
    return value


def add_bag_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the input, output, topic and selection options of ``seg-ros bag``."""
    parser.add_argument('input', metavar='INPUT',
                        help='rosbag2 bag: its folder (MCAP or sqlite3 storage), or one .mcap / '
                             '.db3 file')
    parser.add_argument('output', metavar='OUTPUT',
                        help='output bag folder: every input message unchanged plus the outputs')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace OUTPUT if it exists (only once the new bag is complete)')
    add_bag_options(parser)


def add_bag_options(parser: argparse.ArgumentParser) -> None:
    """Add the topic, selection and output options of ``seg-ros bag`` (``seg-ros fleet``'s too)."""
    parser.add_argument('--image-topic', action='append', required=True, metavar='TOPIC',
                        help='sensor_msgs/Image or CompressedImage topic to segment; repeat for '
                             'more cameras')
    parser.add_argument('--prefix', action='append', default=[], metavar='NAMESPACE',
                        help='where the outputs of an image topic go, one per --image-topic in '
                             'order (default: /<camera namespace>/segmentation, e.g. '
                             '/camera/segmentation for /camera/image_raw)')
    parser.add_argument('--storage', default='mcap', choices=STORAGES,
                        help='storage of OUTPUT (default: %(default)s)')
    parser.add_argument('--every', type=positive_int, default=1, metavar='N',
                        help='segment every Nth frame of each image topic (default: every one)')
    parser.add_argument('--start', type=seconds, default=0.0, metavar='S',
                        help="segment frames from S seconds after the bag's start")
    parser.add_argument('--end', type=seconds, default=None, metavar='S',
                        help="segment frames up to S seconds after the bag's start")
    parser.add_argument('--outputs', nargs='+', default=list(OUTPUT_NAMES), choices=OUTPUT_NAMES,
                        metavar='NAME',
                        help=f'outputs to write (default: all the model gives: '
                             f'{", ".join(OUTPUT_NAMES)})')
    parser.add_argument('--transport', default='raw', choices=TRANSPORTS,
                        help='image outputs as sensor_msgs/Image, as <topic>/compressed '
                             '(class map PNG, colour mask and overlay JPEG, as the node), or '
                             'both (default: %(default)s)')
    parser.add_argument('--jpeg-quality', type=int, default=80, choices=range(1, 101),
                        metavar='1-100', help='JPEG quality of compressed outputs (80)')
    parser.add_argument('--class-masks', nargs='+', default=(), metavar='CLASS',
                        help='also a binary mask a class, on <prefix>/mask/<class>')
    parser.add_argument('--color-encoding', default='rgb8', choices=('rgb8', 'bgr8'),
                        help='encoding of the colour mask and overlay (default: %(default)s)')
    parser.add_argument('--quiet', action='store_true', help='no progress')
    add_track_arguments(parser.add_argument_group(
        'instance tracks (the node parameter of the same name; one tracker an image topic)'))
    add_depth_arguments(parser.add_argument_group(
        'depth: points and objects (the node parameter of the same name)'))


def add_depth_arguments(group) -> None:
    """Add the depth topics and the options of the node's ~/points and ~/objects."""
    group.add_argument('--depth-topic', action='append', default=[], metavar='TOPIC',
                       help='depth image registered to the colour camera (16UC1 mm, 32FC1 m), '
                            'one per --image-topic in order: writes points and objects '
                            '[depth_topic]')
    group.add_argument('--camera-info-topic', action='append', default=[], metavar='TOPIC',
                       help="the colour camera's CameraInfo, one per --depth-topic (default: "
                            'camera_info beside the image topic)')
    group.add_argument('--depth-range', type=float, nargs=2, default=(0.1, 20.0),
                       metavar=('MIN', 'MAX'), help='valid depth, metres (default 0.1 20) '
                                                    '[depth_range]')
    group.add_argument('--depth-max-skew', type=seconds, default=0.0, metavar='S',
                       help='largest stamp difference of a frame and its depth (default 0: '
                            'equal) [depth_max_skew]')
    group.add_argument('--cloud-stride', type=positive_int, default=2, metavar='N',
                       help='one point every N columns and rows (default 2) [cloud_stride]')
    group.add_argument('--cloud-organized', action='store_true',
                       help="points organized on the class map's pixels, NaN where no depth "
                            '[cloud_organized]')
    group.add_argument('--min-object-points', type=positive_int, default=10, metavar='N',
                       help='valid depth points an instance needs for an object (default 10) '
                            '[min_object_points]')


def add_track_arguments(group) -> None:
    """Add the tracking options, one flag a :data:`TRACK_OPTIONS` entry."""
    for option in TRACK_OPTIONS:
        help_text = f'{option.help_text} [{option.name}]'
        if isinstance(option.default, bool):
            group.add_argument(option.flag, dest=option.name, action='store_false',
                               help=f'instance ids 1..N afresh every frame, not track ids that '
                                    f'last across frames [{option.name} false]')
            continue
        kind = type(option.default)
        parse = bounded(kind, option.minimum, option.maximum)
        group.add_argument(option.flag, dest=option.name, type=parse,
                           default=option.default, metavar='N' if kind is int else 'X',
                           help=f'{help_text} (default {option.default})')


def bounded(kind: type, minimum: float, maximum: float):
    """Return an argparse type: ``kind`` within [minimum, maximum]."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'{text!r} is not a number') from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f'{value} is outside [{minimum}, {maximum}]')
        return value
    return parse
