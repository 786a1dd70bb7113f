"""
``seg-ros fleet`` on a real local Ray (2 CPUs): its outputs against ``seg-ros bag``'s.

Every output bag is read back with rosbags and compared message by message (topic, bag time,
bytes) and connection by connection with the bag ``seg-ros bag`` writes for the same input and
options. One run starts Ray itself; the others join the module's Ray (``ray.init(num_cpus=2)``,
no dashboard, no usage report) with ``--address``, so that the test can kill one of the run's
actors with ``ray.kill``.
"""

import json
import logging
import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from models import make_frame, make_scores_model
from seg_ros.paths import executable_path

pytest.importorskip('rosbags', reason='seg-ros fleet needs rosbags (pip install rosbags)')
ray = pytest.importorskip('ray', reason="seg-ros fleet needs Ray (pip install -e '.[fleet]')")
from rosbags.rosbag2 import Reader, Writer  # noqa: E402,I100

from bags import (CLASSES, COLORS, header, of_topic, PACKED,  # noqa: E402,I100
                  pixels_of, RAW, read_bag, street_frames, write_bag)
from seg_ros.bag import messages  # noqa: E402,I100
from seg_ros.cli import build_parser  # noqa: E402
from seg_ros.fleet import parts  # noqa: E402
from seg_ros.fleet.inputs import find_bags, FleetInputError  # noqa: E402
from seg_ros.fleet.run import BagJob, plan_of  # noqa: E402

SEG_ROS = executable_path('seg-ros')
TINY_OPTIONS = ('--width', '64', '--height', '48', '--backend', 'opencv')
# The embedded ENet at its own size: slow enough (a few frames a second a worker) for a run to
# be caught mid-way.
ENET_OPTIONS = ('--width', '512', '--height', '256')


def fleet_env() -> dict[str, str]:
    """
    Return the environment of a command: this process's as it is now, without usage report.

    The module's Ray sets its token authentication mode in this process's environment, which
    a command needs to join it; RAY_ADDRESS is left out.
    """
    env = {**os.environ, 'RAY_USAGE_STATS_ENABLED': '0'}
    env.pop('RAY_ADDRESS', None)
    return env


@pytest.fixture(scope='module')
def model(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp('fleet_model')
    path = make_scores_model(str(folder / 'tiny.onnx'), num_classes=4, scale=1 / 255)
    (folder / 'classes.txt').write_text('\n'.join(CLASSES) + '\n')
    (folder / 'colors.txt').write_text(COLORS)
    return path


@pytest.fixture(scope='module')
def ray_address() -> str:
    """Start a local Ray of 2 CPUs for the module; return its address."""
    usage = os.environ.get('RAY_USAGE_STATS_ENABLED')
    os.environ['RAY_USAGE_STATS_ENABLED'] = '0'
    ray.init(address='local', num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        if usage is None:
            os.environ.pop('RAY_USAGE_STATS_ENABLED', None)
        else:
            os.environ['RAY_USAGE_STATS_ENABLED'] = usage


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([SEG_ROS, *args], capture_output=True, text=True, timeout=timeout,
                          env=fleet_env())


def fleet_command(inputs: list[Path], outdir: Path, *options: str) -> list[str]:
    return [SEG_ROS, 'fleet', *map(str, inputs), '-o', str(outdir), *options]


def bag_contents(path: Path) -> tuple[list, list]:
    """Return a bag's connections (topic, type, format, QoS) and messages (topic, time, bytes)."""
    with Reader(path) as reader:
        connections = sorted((c.topic, c.msgtype, c.ext.serialization_format,
                              repr(c.ext.offered_qos_profiles)) for c in reader.connections)
        rows = [(connection.topic, timestamp, bytes(data))
                for connection, timestamp, data in reader.messages()]
    return connections, rows


def assert_same_as_seg_ros_bag(bag: Path, output: Path, reference: Path, *options: str) -> None:
    """
    Run ``seg-ros bag`` on ``bag``; its output must equal ``output`` message by message.

    Track ids included: a bag's chunks hand their tracks on to the next chunk.
    """
    result = run_cli('bag', str(bag), str(reference), '--quiet', *options)
    assert result.returncode in (0, 1), result.stderr
    assert_same_bag(output, reference)


def chunk_files(outdir: Path, name: str) -> list[Path]:
    return sorted(outdir.glob(f'.{name}.fleet/chunk-??????'))


def report(outdir: Path) -> dict:
    return {entry['name']: entry
            for entry in json.loads((outdir / 'fleet.json').read_text())['bags']}


def test_inputs_are_bags_folders_of_bags_and_names_must_differ(tmp_path):
    frames = [make_frame(32, 24)]
    write_bag(tmp_path / 'drives' / 'monday' / 'front', 'mcap', frames)
    write_bag(tmp_path / 'drives' / 'tuesday', 'sqlite3', frames)  # a bag at the folder's level
    write_bag(tmp_path / 'loose', 'mcap', frames)
    shutil.move(tmp_path / 'loose' / 'loose.mcap', tmp_path / 'drives' / 'cut.mcap')
    (tmp_path / 'drives' / 'tuesday' / 'metadata.yaml').unlink()  # its recording was cut off
    write_bag(tmp_path / 'drives' / 'out' / 'old', 'mcap', frames)  # inside OUTDIR: skipped
    (tmp_path / 'drives' / 'notes').mkdir()
    bags = find_bags([str(tmp_path / 'drives')], str(tmp_path / 'drives' / 'out'))
    assert [(bag.name, bag.path) for bag in bags] == [
        ('cut', tmp_path / 'drives' / 'cut.mcap'),
        ('front', tmp_path / 'drives' / 'monday' / 'front'),
        ('tuesday', tmp_path / 'drives' / 'tuesday')]
    assert bags[1].output == tmp_path / 'drives' / 'out' / 'front'
    assert bags[1].parts == tmp_path / 'drives' / 'out' / '.front.fleet'

    write_bag(tmp_path / 'other' / 'front', 'mcap', frames)
    with pytest.raises(FleetInputError, match='would both write'):
        find_bags([str(tmp_path / 'drives'), str(tmp_path / 'other' / 'front')], 'out')
    with pytest.raises(FleetInputError, match='no such bag or folder'):
        find_bags([str(tmp_path / 'missing')], 'out')
    with pytest.raises(FleetInputError, match='no bag in it'):
        find_bags([str(tmp_path / 'drives' / 'notes')], 'out')


def test_a_chunk_file_is_whole_or_not_there(tmp_path):
    folder = tmp_path / '.drive.fleet'
    plan = {'input': 'drive', 'options': {'every': 1}}
    assert parts.prepare(folder, plan) == {}
    record = parts.Record('/a/class_map', messages.IMAGE, False, 5, 0, 3)
    frames = [parts.FrameOutputs('/a/image', 0, 5, '', (record,)),
              parts.FrameOutputs('/a/image', 1, 6, 'cannot be decoded', ())]
    parts.write_chunk(parts.chunk_path(folder, 0), frames, [np.array([7, 8, 9], np.uint8)])
    parts.write_chunk(parts.chunk_path(folder, 1), frames[:1], [b'\x01', b'\x02\x03'])
    read, data = parts.read_chunk(parts.chunk_path(folder, 0))
    assert read == frames and bytes(data) == b'\x07\x08\x09'
    # Cut short (a disk that filled), and a temporary file of a killed run.
    path = parts.chunk_path(folder, 1)
    path.write_bytes(path.read_bytes()[:-1])
    (folder / 'chunk-000002.tmp').write_bytes(b'half')
    assert parts.prepare(folder, plan) == {0: 2}
    assert sorted(p.name for p in folder.iterdir()) == ['chunk-000000', 'plan.json']
    # Other options: the chunks are of no use.
    assert parts.prepare(folder, {**plan, 'options': {'every': 2}}) == {}
    assert sorted(p.name for p in folder.iterdir()) == ['plan.json']


def test_records_that_lz4_halves_are_packed_and_come_back_byte_for_byte(tmp_path):
    rng = np.random.default_rng(3)
    blocks = rng.integers(0, 19, (45, 80), np.uint8)
    class_map = np.repeat(np.repeat(blocks, 16, axis=0), 16, axis=1).tobytes()  # 1280x720
    photo = rng.integers(0, 256, 3 * 720 * 64, np.uint8).tobytes()
    small = bytes(range(200))
    stored = [parts.pack(data) for data in (class_map, photo, small)]
    assert stored[0][1] == len(class_map) and 2 * len(stored[0][0]) <= len(class_map)
    assert stored[1] == (photo, 0) and stored[2] == (small, 0)
    records, offset = [], 0
    for data, raw_size in stored:
        records.append(parts.Record('/a/t', messages.IMAGE, False, 5, offset, len(data), raw_size))
        offset += len(data)
    path = parts.chunk_path(tmp_path, 0)
    parts.write_chunk(path, [parts.FrameOutputs('/a/image', 0, 5, '', tuple(records))],
                      [data for data, _ in stored])
    (frame,), data = parts.read_chunk(path)
    assert [bytes(record.payload(data)) for record in frame.records] == [class_map, photo, small]


def test_the_plan_of_chunks_holds_the_input_the_options_and_the_model_file(model, tmp_path):
    write_bag(tmp_path / 'drive', 'mcap', [make_frame(32, 24)])
    bag, = find_bags([str(tmp_path / 'drive')], str(tmp_path / 'out'))

    def plan(*options: str) -> dict:
        return plan_of(BagJob(bag), build_parser().parse_args(
            ['fleet', str(bag.path), '-o', 'out', '--image-topic', RAW, '--model', model,
             *options]))

    first = plan()
    assert first == plan('--workers', '3', '--threads', '2', '--quiet', '--overwrite')
    assert first != plan('--every', '2') and first != plan('--chunk-frames', '3')
    stat = os.stat(model)
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # retrained in place
    assert plan() != first


def test_outputs_equal_seg_ros_bag_message_by_message(model, tmp_path):
    frames = [make_frame(96, 64, seed=index) for index in range(7)]
    short = messages.image(frames[0], 'bgr8', header(0, 'left'))
    short.data = short.data[:-10]  # the left camera's first frame cannot be used
    garbage = messages.compressed_image('bgr8; jpeg compressed bgr8',
                                        np.arange(200, dtype=np.uint8), header(4, 'right'))
    write_bag(tmp_path / 'drives' / 'a', 'mcap', frames,
              raw_data={0: messages.serialize(short, messages.IMAGE)},
              packed_data={4: messages.serialize(garbage, messages.COMPRESSED_IMAGE)})
    write_bag(tmp_path / 'drives' / 'day2' / 'b', 'sqlite3', frames[:5])
    options = ('--image-topic', RAW, '--image-topic', PACKED, '--model', model, *TINY_OPTIONS,
               '--class-masks', 'road', 'Sky', '--instance-classes', 'car', 'person',
               '--min-instance-area', '20', '--transport', 'both')
    outdir = tmp_path / 'out'
    # Ray started by the command itself; chunks of 3 frames: each bag on both workers.
    result = subprocess.run(fleet_command([tmp_path / 'drives'], outdir, '--num-cpus', '2',
                                          '--chunk-frames', '3', *options),
                            capture_output=True, text=True, timeout=300, env=fleet_env())
    assert 'Traceback' not in result.stderr
    assert result.returncode == 1, result.stdout + result.stderr  # the two broken frames
    assert 'starting 2 workers x 1 thread on Ray on this machine (2 CPUs)' in result.stdout
    assert f'a: 14 frames -> {outdir / "a"}' in result.stdout
    assert '2 frames skipped' in result.stdout
    assert 'fleet: 24/24 frames' in result.stdout and 'frames/s' in result.stdout
    assert '| a | done | 14 | 14 |' in result.stdout
    assert '| all 2 bags | 0 failed | 24 | 24 |' in result.stdout
    summary = report(outdir)
    assert summary['a']['chunks'] == 5 and summary['b']['chunks'] == 4
    assert len(summary['a']['failed_frames']) == 2
    assert summary['a']['failed_frames'][0].startswith(f'{RAW} frame 0 (bag time ')
    assert summary['b']['cameras'][RAW] == {'prefix': '/left/segmentation', 'segmented': 5}
    assert sorted(path.name for path in outdir.iterdir()) == ['a', 'b', 'fleet.json']
    for name, bag in (('a', tmp_path / 'drives' / 'a'), ('b', tmp_path / 'drives' / 'day2' / 'b')):
        assert_same_as_seg_ros_bag(bag, outdir / name, tmp_path / f'reference_{name}', *options)
    _, rows = bag_contents(outdir / 'a')
    topics = {row[0] for row in rows}
    assert {'/left/segmentation/instances', '/right/segmentation/mask/sky',
            '/left/segmentation/class_map/compressed'} <= topics


def test_tracks_go_on_from_chunk_to_chunk_as_seg_ros_bag_gives_them(model, tmp_path):
    """
    Chunks of one frame a camera on 2 workers: every object keeps its track id to the end.

    The first car leaves at frame 5: a tracker started afresh in a later chunk would number
    the second car and the person from 1 again.
    """
    write_bag(tmp_path / 'drives' / 'street', 'mcap', street_frames(12, first_car_leaves=5))
    write_bag(tmp_path / 'drives' / 'other', 'sqlite3', street_frames(6))
    options = ('--image-topic', RAW, '--image-topic', PACKED, '--model', model, *TINY_OPTIONS,
               '--instance-classes', 'car', 'person', '--min-instance-area', '20')
    outdir = tmp_path / 'out'
    result = subprocess.run(fleet_command([tmp_path / 'drives'], outdir, '--num-cpus', '2',
                                          '--chunk-frames', '2', *options),
                            capture_output=True, text=True, timeout=300, env=fleet_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert report(outdir)['street']['chunks'] == 12  # 12 frames of two cameras, 2 a chunk
    for name in ('street', 'other'):
        assert_same_as_seg_ros_bag(tmp_path / 'drives' / name, outdir / name,
                                   tmp_path / f'reference_{name}', *options)
    _, rows = read_bag(outdir / 'street')
    for prefix in ('/left/segmentation', '/right/segmentation'):
        maps = [pixels_of(msg) for _, msg in of_topic(rows, f'{prefix}/instance_map')]
        assert len(maps) == 12
        # (row, column) inside the second car (it drives right 2 pixels a frame), the person.
        second_car = {int(m[35, 27 + 2 * i]) for i, m in enumerate(maps)}
        person = {int(m[23, 54]) for m in maps[2:]}
        first_car = int(maps[0][10, 9])
        assert len(second_car) == len(person) == 1, (prefix, second_car, person)
        assert sorted({first_car} | second_car | person) == [1, 2, 3], prefix


@pytest.fixture(scope='module')
def enet_drive(tmp_path_factory) -> tuple[Path, Path]:
    """Return a bag of 16 frames and the bag ``seg-ros bag`` makes of it with ``ENET_OPTIONS``."""
    folder = tmp_path_factory.mktemp('enet_drive')
    write_bag(folder / 'drive', 'mcap', [make_frame(160, 120, seed=index) for index in range(16)])
    result = run_cli('bag', str(folder / 'drive'), str(folder / 'reference'), '--quiet',
                     '--image-topic', RAW, *ENET_OPTIONS)
    assert result.returncode == 0, result.stderr
    return folder / 'drive', folder / 'reference'


def assert_same_bag(output: Path, reference: Path) -> None:
    """Assert that two bags hold the same connections and messages, in the same order."""
    expected_connections, expected = bag_contents(reference)
    connections, rows = bag_contents(output)
    assert connections == expected_connections
    assert len(rows) == len(expected)
    for index, (row, expected_row) in enumerate(zip(rows, expected)):
        assert row == expected_row, f'{output}: message {index} ({row[0]}) differs'


def wait_for(condition, process: subprocess.Popen, timeout: float = 240) -> bool:
    """Wait until ``condition()`` holds; False where the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.05)
    raise AssertionError('seg-ros fleet made no progress')


def test_a_killed_actor_is_restarted_and_the_outputs_are_complete(ray_address, enet_drive,
                                                                  tmp_path):
    drive, reference = enet_drive
    shutil.copytree(drive, tmp_path / 'drives' / 'long')
    outdir = tmp_path / 'out'
    process = subprocess.Popen(
        fleet_command([tmp_path / 'drives'], outdir, '--address', ray_address,
                      '--chunk-frames', '2', '--image-topic', RAW, *ENET_OPTIONS),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=fleet_env())
    try:
        caught = wait_for(lambda: chunk_files(outdir, 'long'), process)
        killed = ''
        if caught and not (outdir / 'long').exists():
            names = [entry['name'] for entry in ray.util.list_named_actors(all_namespaces=True)
                     if entry['name'].startswith('seg_ros_fleet_')]
            assert len(names) == 2, names
            ray.kill(ray.get_actor(names[0], namespace='seg_ros_fleet'), no_restart=False)
            killed = names[0]
        stdout, stderr = process.communicate(timeout=300)
    finally:
        process.kill()
    if not killed:
        assert process.returncode == 0, stdout + stderr
        pytest.skip('the run finished before an actor could be killed')
    assert 'Traceback' not in stderr
    assert process.returncode == 0, stdout + stderr
    assert not (outdir / '.long.fleet').exists(), 'chunks left after the bag was written'
    summary = report(outdir)['long']
    assert summary['status'] == 'done' and summary['segmented_now'] == 16
    assert_same_bag(outdir / 'long', reference)


def test_an_interrupted_run_again_does_only_what_is_missing(ray_address, enet_drive, tmp_path):
    drive, reference = enet_drive
    write_bag(tmp_path / 'drives' / 'a_short', 'mcap', [make_frame(160, 120)])
    shutil.copytree(drive, tmp_path / 'drives' / 'b_long')
    outdir = tmp_path / 'out'
    command = fleet_command([tmp_path / 'drives'], outdir, '--address', ray_address,
                            '--chunk-frames', '2', '--image-topic', RAW, *ENET_OPTIONS)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=fleet_env())
    try:
        caught = wait_for(lambda: (outdir / 'a_short').exists() and chunk_files(outdir, 'b_long'),
                          process)
        if caught:
            process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    if not caught or process.returncode == 0:
        assert process.returncode == 0, stdout + stderr
        pytest.skip('the run finished before it could be interrupted')
    assert process.returncode == 130, stdout + stderr
    assert 'interrupted' in stderr and 'Traceback' not in stderr
    # Nothing incomplete under a final name: the long bag has only its finished chunks.
    assert sorted(path.name for path in outdir.iterdir()) == [
        '.b_long.fleet', 'a_short', 'fleet.json']
    kept = len(chunk_files(outdir, 'b_long'))
    assert 1 <= kept < 8
    assert report(outdir)['b_long']['status'] == 'interrupted'
    short_written = (outdir / 'a_short' / 'a_short.mcap').stat().st_mtime_ns

    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env=fleet_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert '2 bags: 1 to segment, 1 already in' in result.stdout
    summary = report(outdir)
    assert summary['a_short']['status'] == 'kept' and summary['a_short']['segmented_now'] == 0
    assert (outdir / 'a_short' / 'a_short.mcap').stat().st_mtime_ns == short_written
    assert summary['b_long']['status'] == 'done'
    assert summary['b_long']['kept_frames'] == 2 * kept
    assert summary['b_long']['segmented_now'] == 16 - 2 * kept
    assert sorted(path.name for path in outdir.iterdir()) == ['a_short', 'b_long', 'fleet.json']
    assert_same_bag(outdir / 'b_long', reference)


def chatter_bag(path: Path) -> None:
    """Write a bag of one std_msgs/String topic: no image topic at all."""
    store = messages.typestore()
    with Writer(path, version=9) as writer:
        chatter = writer.add_connection('/chatter', messages.STRING, typestore=store)
        writer.write(chatter, 1, messages.serialize(messages.string('hello'), messages.STRING))


def test_a_corrupt_bag_and_a_missing_topic_fail_while_the_others_complete(
        model, ray_address, tmp_path):
    drives = tmp_path / 'drives'
    write_bag(drives / 'good', 'mcap', [make_frame(64, 48, seed=index) for index in range(3)])
    write_bag(drives / 'second', 'sqlite3', [make_frame(64, 48)])
    (drives / 'corrupt.mcap').write_bytes(b'\x89MCAP0\r\n' + bytes(range(256)) * 4)
    (drives / 'notes.db3').write_bytes(b'not a database at all')
    chatter_bag(drives / 'chatter_only')
    options = ('--image-topic', RAW, '--model', model, *TINY_OPTIONS, '--prefix', '/seg')
    outdir = tmp_path / 'out'
    result = subprocess.run(fleet_command([drives], outdir, '--address', ray_address, *options),
                            capture_output=True, text=True, timeout=300, env=fleet_env())
    assert 'Traceback' not in result.stderr
    assert result.returncode == 1, result.stdout + result.stderr
    summary = report(outdir)
    assert {name: entry['status'] for name, entry in summary.items()} == {
        'chatter_only': 'failed', 'corrupt': 'failed', 'good': 'done', 'notes': 'failed',
        'second': 'done'}
    assert f'no topic {RAW}' in summary['chatter_only']['error']
    assert 'corrupt.mcap' in summary['corrupt']['error']
    assert 'notes.db3' in summary['notes']['error']
    for name in ('chatter_only', 'corrupt', 'notes'):
        assert f'| {name} | failed |' in result.stdout
        assert f'seg-ros fleet: {name}: ' in result.stderr
    assert '| all 5 bags | 3 failed | 4 | 4 |' in result.stdout
    assert sorted(path.name for path in outdir.iterdir()) == ['fleet.json', 'good', 'second']
    assert_same_as_seg_ros_bag(drives / 'good', outdir / 'good', tmp_path / 'reference',
                               *options)


def test_bad_options_and_inputs_are_one_line_before_ray_starts(model, tmp_path):
    write_bag(tmp_path / 'in', 'mcap', [make_frame(64, 48)])
    base = ('fleet', str(tmp_path / 'in'), '-o', str(tmp_path / 'out'), '--image-topic', RAW)
    for options, message in (
            (('--model', str(tmp_path / 'nosuch.onnx')), 'nosuch.onnx: no such file'),
            (('--model', model, '--start', '2', '--end', '1'), '--end 1.0 is not after'),
            (('--model', model, '--workers', '3', '--num-cpus', '2'),
             '3 workers of 1 threads need 3 CPUs'),
            (('--model', model, '--depth-topic', '/depth'), '--depth-topic: a worker gets')):
        result = run_cli(*base, *options)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count('\n') == 1 and message in result.stderr, result.stderr
        assert 'starting' not in result.stdout  # Ray was not started
    result = run_cli('fleet', str(tmp_path / 'missing'), '-o', str(tmp_path / 'out'),
                     '--image-topic', RAW)
    assert result.returncode == 2 and 'missing: no such bag or folder' in result.stderr


def test_without_ray_one_line_says_how_to_install_it(tmp_path):
    write_bag(tmp_path / 'in', 'mcap', [make_frame(64, 48)])
    script = (
        'import sys\n'
        'class NoRay:\n'
        '    def find_spec(self, name, path=None, target=None):\n'
        '        if name.split(".")[0] == "ray":\n'
        '            raise ImportError(f"no Ray here: {name}")\n'
        'sys.meta_path.insert(0, NoRay())\n'
        'from seg_ros.cli import main\n'
        'sys.exit(main(sys.argv[1:]))\n')
    result = subprocess.run(
        [sys.executable, '-c', script, 'fleet', str(tmp_path / 'in'), '-o', str(tmp_path / 'out'),
         '--image-topic', RAW], capture_output=True, text=True, timeout=120, env=fleet_env())
    assert result.returncode == 2
    assert result.stderr.count('\n') == 1, result.stderr
    assert "pip install 'ray" in result.stderr and 'seg-ros fleet needs Ray' in result.stderr
    assert not (tmp_path / 'out').exists()
