"""The options of ``seg-ros bag`` besides the model's (no ``rosbags`` import: ``--help`` works)."""

import argparse

#: What ``--outputs`` may name: the node's image outputs and its instance outputs.
OUTPUT_NAMES = ('class_map', 'color_mask', 'overlay', 'instances', 'instance_map')
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
