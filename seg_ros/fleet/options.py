"""The options of ``seg-ros fleet`` besides the model's (imports neither Ray nor rosbags)."""

import argparse

from seg_ros.bag.options import add_bag_options, positive_int

#: Frames a chunk by default: about 90 MB of raw 720p input and outputs, a few seconds of work.
CHUNK_FRAMES = 10


def add_fleet_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the inputs, the output folder, Ray's options and the options of ``seg-ros bag``."""
    parser.add_argument('inputs', nargs='+', metavar='IN',
                        help='rosbag2 bags (folders, .mcap or .db3 files) or folders holding '
                             'bags (searched recursively)')
    parser.add_argument('-o', '--output-dir', required=True, metavar='OUTDIR',
                        help='folder of the outputs: OUTDIR/<bag name>/ a bag, OUTDIR/fleet.json '
                             'the summary')
    parser.add_argument('--overwrite', action='store_true',
                        help='segment again the bags that OUTDIR already holds (default: keep '
                             'them: a run again does only what is missing)')
    parser.add_argument('--address', default='', metavar='ADDRESS',
                        help="join this Ray cluster (e.g. 'auto', 'head-node:6379', "
                             "'ray://head-node:10001') instead of starting Ray on this machine")
    parser.add_argument('--num-cpus', type=positive_int, default=0, metavar='N',
                        help='CPUs of the Ray started on this machine (default: all this process '
                             'may use)')
    parser.add_argument('--threads', type=positive_int, default=1, metavar='T',
                        help='runtime threads of each worker (default: %(default)s); a worker '
                             'takes T CPUs of Ray')
    parser.add_argument('--workers', type=positive_int, default=0, metavar='W',
                        help="workers, each loading the model once (default: Ray's CPUs / "
                             '--threads)')
    parser.add_argument('--chunk-frames', type=positive_int, default=CHUNK_FRAMES, metavar='N',
                        help='frames a chunk: a bag is cut into chunks that run on several '
                             'workers (default: %(default)s)')
    add_bag_options(parser)
