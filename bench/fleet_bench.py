"""
``seg-ros fleet`` on Ray against ``seg-ros bag`` run on each bag one after the other.

Writes ``--bags`` bags of ``--frames`` 1280x720 frames (``bag_bench.py``'s frames: the street
photos of ``--images`` shifted, else synthetic scenes; raw ``sensor_msgs/Image`` by default,
``--input compressed`` for JPEG), then, in one run on the same CPUs, times end to end (each a
fresh process, model loading and Ray's start-up included):

- ``sequential``: ``seg-ros bag`` on each bag, one after the other (each loads the model, its
  runtime on every core);
- ``fleet``: ``seg-ros fleet --num-cpus N`` on all of them (N workers of one thread each).

It prints both wall times, their ratio (goal: the fleet no slower), the fleet's frames/s a
worker (``fleet.json``: a chunk's frames over the worker's time on it) and the cost of a frame in
worker-seconds and the driver's CPU a frame, from which docs/offline.md works out what a
cluster does. ``--check`` compares
every output of the fleet with ``seg-ros bag``'s, message by message.

Usage: ``.venv/bin/python bench/fleet_bench.py [--bags 4] [--frames 60] [--num-cpus 2]
[--input raw|compressed] [--transport raw|compressed] [--chunk-frames 10] [--rounds 1]
[--check] [--model M] [--width W --height H] [--backend B]`` (default: the embedded model at
512x256).
"""

import argparse
import json
import os
from pathlib import Path
import subprocess
import tempfile
import time

from bag_bench import make_frames, SHARED, write_inputs
import numpy as np
from rosbags.rosbag2 import Reader

from seg_ros.core.backends.base import cpu_threads
from seg_ros.paths import executable_path

SEG_ROS = executable_path('seg-ros')
TOPICS = {'raw': '/camera/image_raw', 'compressed': '/camera/image_raw/compressed'}


def timed(command: list[str], env: dict) -> float:
    """Run a command; return its wall time in seconds."""
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f'{" ".join(command)} failed:\n{result.stdout}\n{result.stderr}')
    return elapsed


def write_bags(folder: Path, count: int, frames: list[np.ndarray], kind: str) -> list[Path]:
    """Write ``count`` bags of the frames (each bag's frames shifted its own way)."""
    bags = []
    for number in range(count):
        shifted = [np.roll(frame, 24 * number, axis=0) for frame in frames]
        paths = write_inputs(folder, shifted, f'drive{number}')
        path = paths['raw bag' if kind == 'raw' else 'compressed bag']
        bags.append(path.rename(folder / 'bags' / f'drive{number}'))
        for other in paths.values():
            if other.is_dir():
                for item in other.iterdir():
                    item.unlink()
                other.rmdir()
            elif other.exists():
                other.unlink()
    return bags


def messages_of(path: Path) -> list[tuple[str, int, bytes]]:
    """Return every message of a bag: (topic, bag time, bytes)."""
    with Reader(path) as reader:
        return [(connection.topic, timestamp, bytes(data))
                for connection, timestamp, data in reader.messages()]


def main() -> None:
    """Write the bags, time both ways on the same CPUs, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--bags', type=int, default=4)
    parser.add_argument('--frames', type=int, default=60)
    parser.add_argument('--num-cpus', type=int, default=2)
    parser.add_argument('--input', default='raw', choices=tuple(TOPICS))
    parser.add_argument('--transport', default='raw', choices=('raw', 'compressed'))
    parser.add_argument('--chunk-frames', type=int, default=10)
    parser.add_argument('--rounds', type=int, default=1,
                        help='times each way, alternating which goes first')
    parser.add_argument('--check', action='store_true',
                        help="compare the fleet's outputs with seg-ros bag's, message by message")
    parser.add_argument('--images', default=os.path.join(SHARED, 'images'))
    parser.add_argument('--model', default='')
    parser.add_argument('--width', type=int, default=512)
    parser.add_argument('--height', type=int, default=256)
    parser.add_argument('--backend', default='auto')
    parser.add_argument('--no-tracking', action='store_true',
                        help='both ways without track ids (the fleet then spreads a bag over '
                             'every worker instead of running its chunks one after another)')
    arguments = parser.parse_args()
    options = ['--image-topic', TOPICS[arguments.input], '--transport', arguments.transport,
               '--width', str(arguments.width), '--height', str(arguments.height),
               '--backend', arguments.backend, '--quiet']
    if arguments.model:
        options += ['--model', arguments.model]
    if arguments.no_tracking:
        options.append('--no-tracking')
    # The sequential runs get the same CPUs as the fleet's Ray (on a bigger machine too).
    cpus = sorted(os.sched_getaffinity(0))[:arguments.num_cpus]
    env = {**os.environ, 'RAY_USAGE_STATS_ENABLED': '0'}
    frames = make_frames(arguments.frames, arguments.images)
    with tempfile.TemporaryDirectory(prefix='seg_ros_fleet_bench_') as temporary:
        folder = Path(temporary)
        (folder / 'bags').mkdir()
        bags = write_bags(folder, arguments.bags, frames, arguments.input)
        total = arguments.bags * arguments.frames
        print(f'{arguments.bags} bags of {arguments.frames} frames of 1280x720 '
              f'({arguments.input}, outputs {arguments.transport}), model '
              f'{arguments.model or "embedded"} at {arguments.width}x{arguments.height}, backend '
              f'{arguments.backend}, CPUs {cpus} of {cpu_threads()}, load average '
              f'{os.getloadavg()[0]:.1f}\n', flush=True)
        walls: dict[str, list[float]] = {'sequential': [], 'fleet': []}
        report = {}
        for round_number in range(arguments.rounds):
            order = ['sequential', 'fleet'][::1 if round_number % 2 == 0 else -1]
            for way in order:
                output = folder / f'{way}{round_number}'
                output.mkdir()
                if way == 'sequential':
                    started = time.perf_counter()
                    for bag in bags:
                        timed(['taskset', '-c', ','.join(map(str, cpus)), SEG_ROS, 'bag',
                               str(bag), str(output / bag.name), *options], env)
                    walls[way].append(time.perf_counter() - started)
                else:
                    walls[way].append(timed(
                        ['taskset', '-c', ','.join(map(str, cpus)), SEG_ROS, 'fleet',
                         str(folder / 'bags'), '-o', str(output), '--num-cpus',
                         str(arguments.num_cpus), '--chunk-frames',
                         str(arguments.chunk_frames), *options], env))
                    report = json.loads((output / 'fleet.json').read_text())
                print(f'  round {round_number + 1}: {way} {walls[way][-1]:.1f} s', flush=True)
        sequential, fleet = np.median(walls['sequential']), np.median(walls['fleet'])
        worker_s = sum(bag['worker_s'] for bag in report['bags'])
        print('\n| run | wall s | frames/s |\n|---|---|---|')
        print(f'| `seg-ros bag`, the {arguments.bags} bags one after the other | '
              f'{sequential:.1f} | {total / sequential:.2f} |')
        print(f'| `seg-ros fleet --num-cpus {arguments.num_cpus}` ({report["workers"]} workers '
              f'x {report["threads"]} thread) | {fleet:.1f} | {total / fleet:.2f} |')
        print(f'\nfleet / sequential wall time: {fleet / sequential:.2f} (goal <= 1.00); '
              f'sequential / fleet: {sequential / fleet:.2f}x')
        print(f'fleet: {total / worker_s:.2f} frames/s a worker of {report["threads"]} '
              f'thread(s) on its chunks, {1000 * worker_s / total:.0f} ms of a worker a frame; '
              f'start-up and merging: {fleet - worker_s / report["workers"]:.1f} s of the '
              "wall time beyond the workers' share")
        if 'driver_cpu_s' in report:
            print(f'driver: {1000 * report["driver_cpu_s"] / total:.0f} ms of CPU a frame '
                  '(reading the bags, chunk files, writing the output bags, Ray calls)')
        if arguments.check:
            last = arguments.rounds - 1
            for bag in bags:
                same = messages_of(folder / f'fleet{last}' / bag.name) == messages_of(
                    folder / f'sequential{last}' / bag.name)
                verdict = 'equals' if same else 'DIFFERS FROM'
                print(f"{bag.name}: the fleet's output {verdict} seg-ros bag's, message by "
                      'message')


if __name__ == '__main__':
    main()
