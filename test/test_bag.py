"""
``seg-ros bag`` on bags the tests write with rosbags: both storages, raw and compressed cameras.

Every output is read back with rosbags and compared with ``seg-ros segment`` on the same frame;
every input message must come out byte for byte. ``ros2 bag info`` reads the output where the
ROS 2 command line with rosbag2 is installed.
"""

import json
import os
from pathlib import Path
import pty
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from models import make_frame, make_scores_model
from seg_ros.paths import executable_path

rosbags = pytest.importorskip('rosbags', reason='seg-ros bag needs rosbags (pip install rosbags)')
from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: E402,I100

from bags import (CHATTER, CLASSES, COLORS, header, jpeg, MODEL_OPTIONS,  # noqa: E402,I100
                  of_topic, PACKED, pixels_of, RAW, read_bag, START_NS, STEP_NS, street_frames,
                  write_bag)
from seg_ros.bag import messages  # noqa: E402

SEG_ROS = executable_path('seg-ros')
IMAGES = Path(__file__).resolve().parent.parent.parent / 'shared' / 'images'


@pytest.fixture(scope='module')
def model(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp('bag_model')
    path = make_scores_model(str(folder / 'tiny.onnx'), num_classes=4, scale=1 / 255)
    (folder / 'classes.txt').write_text('\n'.join(CLASSES) + '\n')
    (folder / 'colors.txt').write_text(COLORS)
    return path


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([SEG_ROS, *args], capture_output=True, text=True, timeout=timeout)


def segment_reference(model: str, folder: Path, files: list[Path], *extra: str) -> None:
    result = run_cli('segment', *map(str, files), '-o', str(folder), '--model', model,
                     '--no-legend', *MODEL_OPTIONS, *extra)
    assert result.returncode == 0, result.stderr


def frame_files(folder: Path, frames: list[np.ndarray]) -> tuple[list[Path], list[Path]]:
    """Write each frame as the left camera's PNG and the right camera's JPEG bytes."""
    folder.mkdir()
    raw, packed = [], []
    for index, frame in enumerate(frames):
        raw.append(folder / f'left{index}.png')
        cv2.imwrite(str(raw[-1]), frame)
        packed.append(folder / f'right{index}.jpg')
        packed[-1].write_bytes(jpeg(frame).tobytes())
    return raw, packed


def check_outputs(rows, prefix: str, reference: Path, stems: list[str], frame_id: str,
                  indices: list[int]) -> None:
    """Compare every image output of a camera with ``seg-ros segment``'s files."""
    for name in ('class_map', 'color_mask', 'overlay', 'confidence'):
        outputs = of_topic(rows, f'{prefix}/{name}')
        assert [timestamp for timestamp, _ in outputs] == [
            START_NS + index * STEP_NS + (1000 if frame_id == 'right' else 0)
            for index in indices]
        suffix = {'class_map': 'classmap', 'color_mask': 'mask', 'overlay': 'overlay',
                  'confidence': 'confidence'}[name]
        for (timestamp, msg), index in zip(outputs, indices):
            assert msg.header.frame_id == frame_id
            assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1000 + index, 123 + index)
            expected = cv2.imread(str(reference / f'{stems[index]}_{suffix}.png'),
                                  cv2.IMREAD_UNCHANGED)
            assert msg.encoding == ('mono8' if name in ('class_map', 'confidence') else 'rgb8')
            np.testing.assert_array_equal(pixels_of(msg), expected, err_msg=f'{prefix}/{name}')


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_every_output_matches_seg_ros_segment(model, tmp_path, storage):
    frames = [make_frame(96, 64, seed=index) for index in range(4)]
    if (IMAGES / 'leuvenA.jpg').is_file():  # a real street photo as one of the frames
        frames[1] = cv2.resize(cv2.imread(str(IMAGES / 'leuvenA.jpg')), (160, 120))
    write_bag(tmp_path / 'in', storage, frames)
    result = run_cli('bag', str(tmp_path / 'in'), str(tmp_path / 'out'), '--image-topic', RAW,
                     '--image-topic', PACKED, '--model', model, *MODEL_OPTIONS, '--storage',
                     storage, '--class-masks', 'road', 'Sky')
    assert result.returncode == 0, result.stderr
    assert '4 frames segmented into /left/segmentation/' in result.stdout
    assert 'frames/s' in result.stderr, 'no progress line in a log'

    _, input_rows = read_bag(tmp_path / 'in')
    topics, rows = read_bag(tmp_path / 'out')
    assert set((tmp_path / 'out').iterdir()) == {
        tmp_path / 'out' / 'metadata.yaml',
        tmp_path / 'out' / ('out.mcap' if storage == 'mcap' else 'out.db3')}
    assert not list(tmp_path.glob('.out*')), 'the temporary bag was left behind'
    for prefix in ('/left/segmentation', '/right/segmentation'):
        assert topics[f'{prefix}/class_map'] == messages.IMAGE
        assert topics[f'{prefix}/label_info'] == messages.LABEL_INFO
        assert f'{prefix}/instances' not in topics  # this model makes no instances
    # Every input message unchanged, at its bag time.
    assert [row for row in rows if '/segmentation/' not in row[0]] == input_rows

    reference = tmp_path / 'reference'
    raw_files, packed_files = frame_files(tmp_path / 'frames', frames)
    segment_reference(model, reference, raw_files + packed_files)
    check_outputs(rows, '/left/segmentation', reference, [f.stem for f in raw_files], 'left',
                  [0, 1, 2, 3])
    check_outputs(rows, '/right/segmentation', reference, [f.stem for f in packed_files],
                  'right', [0, 1, 2, 3])

    for prefix in ('/left/segmentation', '/right/segmentation'):
        (_, info), = of_topic(rows, f'{prefix}/label_info')
        assert [(item.class_id, item.class_name) for item in info.class_map] == list(
            enumerate(CLASSES))
        (_, labels), = of_topic(rows, f'{prefix}/labels')
        assert [item['name'] for item in json.loads(labels.data)] == CLASSES
        class_maps = [msg for _, msg in of_topic(rows, f'{prefix}/class_map')]
        for class_id, name in ((0, 'road'), (3, 'sky')):
            masks = [msg for _, msg in of_topic(rows, f'{prefix}/mask/{name}')]
            assert len(masks) == 4
            for mask, class_map in zip(masks, class_maps):
                np.testing.assert_array_equal(
                    pixels_of(mask), np.where(pixels_of(class_map) == class_id, 255, 0))


def test_compressed_outputs_every_nth_frame_and_a_time_window(model, tmp_path):
    frames = [make_frame(80, 60, seed=index) for index in range(8)]
    write_bag(tmp_path / 'in', 'mcap', frames)
    # Frames 0.15 s to 0.65 s after the start: 2..6; every second one of those: 2, 4, 6.
    result = run_cli('bag', str(tmp_path / 'in'), str(tmp_path / 'out'), '--image-topic', RAW,
                     '--model', model, *MODEL_OPTIONS, '--transport', 'compressed',
                     '--every', '2', '--start', '0.15', '--end', '0.65', '--prefix', '/seg')
    assert result.returncode == 0, result.stderr
    topics, rows = read_bag(tmp_path / 'out')
    assert '/seg/class_map' not in topics and '/left/segmentation/class_map' not in topics
    reference = tmp_path / 'reference'
    raw_files, _ = frame_files(tmp_path / 'frames', frames)
    segment_reference(model, reference, raw_files)
    class_maps = of_topic(rows, '/seg/class_map/compressed')
    assert [timestamp for timestamp, _ in class_maps] == [START_NS + i * STEP_NS
                                                          for i in (2, 4, 6)]
    for (_, msg), index in zip(class_maps, (2, 4, 6)):
        assert msg.format == 'mono8; png compressed '
        np.testing.assert_array_equal(  # PNG is lossless
            cv2.imdecode(msg.data, cv2.IMREAD_UNCHANGED),
            cv2.imread(str(reference / f'left{index}_classmap.png'), cv2.IMREAD_UNCHANGED))
    for _, msg in of_topic(rows, '/seg/overlay/compressed'):
        assert msg.format == 'rgb8; jpeg compressed bgr8'
        assert cv2.imdecode(msg.data, cv2.IMREAD_COLOR).shape == (60, 80, 3)


def test_instances_match_seg_ros_segment(model, tmp_path):
    frames = [make_frame(96, 64, seed=index) for index in range(3)]
    write_bag(tmp_path / 'in', 'mcap', frames)
    options = ('--instance-classes', 'car', 'person', '--min-instance-area', '20')
    # Unrelated random frames: ids 1..N each, as seg-ros segment numbers an image's instances
    # (test_tracks_follow_objects_across_frames: the track ids).
    result = run_cli('bag', str(tmp_path / 'in'), str(tmp_path / 'out'), '--image-topic', RAW,
                     '--model', model, *MODEL_OPTIONS, *options, '--no-tracking')
    assert result.returncode == 0, result.stderr
    _, rows = read_bag(tmp_path / 'out')
    reference = tmp_path / 'reference'
    raw_files, _ = frame_files(tmp_path / 'frames', frames)
    segment_reference(model, reference, raw_files, *options)
    maps = of_topic(rows, '/left/segmentation/instance_map')
    arrays = of_topic(rows, '/left/segmentation/instances')
    assert len(maps) == len(arrays) == 3
    found = 0
    for index, ((_, instance_map), (_, detections)) in enumerate(zip(maps, arrays)):
        assert instance_map.encoding == 'mono16'
        np.testing.assert_array_equal(pixels_of(instance_map), cv2.imread(
            str(reference / f'left{index}_instances.png'), cv2.IMREAD_UNCHANGED))
        expected = json.loads((reference / f'left{index}_instances.json').read_text())
        expected = expected['instances']
        assert detections.header.frame_id == 'left'
        assert [d.id for d in detections.detections] == [str(item['id']) for item in expected]
        for detection, item in zip(detections.detections, expected):
            hypothesis = detection.results[0].hypothesis
            assert int(hypothesis.class_id) == item['class_id']
            assert hypothesis.score == pytest.approx(item['score'], abs=1e-4)
            x0, y0, x1, y1 = item['box']
            assert detection.bbox.center.position.x == pytest.approx((x0 + x1) / 2, abs=0.01)
            assert detection.bbox.size_y == pytest.approx(y1 - y0, abs=0.01)
        found += len(expected)
    assert found, 'the test frames should hold car or person instances'


def test_tracks_follow_objects_across_frames(model, tmp_path):
    """Track ids, one tracker a camera: each object keeps its id, a new one gets a new id."""
    frames = street_frames(4)
    write_bag(tmp_path / 'in', 'mcap', frames)
    options = ('--instance-classes', 'car', 'person', '--min-instance-area', '20')
    result = run_cli('bag', str(tmp_path / 'in'), str(tmp_path / 'out'), '--image-topic', RAW,
                     '--image-topic', PACKED, '--model', model, *MODEL_OPTIONS, *options)
    assert result.returncode == 0, result.stderr
    _, rows = read_bag(tmp_path / 'out')
    reference = tmp_path / 'reference'
    raw_files, _ = frame_files(tmp_path / 'frames', frames)
    segment_reference(model, reference, raw_files, *options)
    for prefix in ('/left/segmentation', '/right/segmentation'):
        maps = [pixels_of(msg) for _, msg in of_topic(rows, f'{prefix}/instance_map')]
        arrays = [msg for _, msg in of_topic(rows, f'{prefix}/instances')]
        assert len(maps) == len(arrays) == 4
        at = [(10, 9), (35, 27), (23, 54)]        # (row, column) inside each object
        ids = [[int(instance_map[r, c + 3 * i if k == 0 else c + 2 * i if k == 1 else c])
                for k, (r, c) in enumerate(at[:2 + (i >= 2)])]
               for i, instance_map in enumerate(maps)]
        # Each camera its own tracker: ids from 1 on each; the new object gets the next one.
        assert ids[0] == ids[1] and sorted(ids[0]) == [1, 2], (prefix, ids)
        assert ids[2] == ids[3] == ids[0] + [3], (prefix, ids)
        for index, (instance_map, array) in enumerate(zip(maps, arrays)):
            assert sorted(d.id for d in array.detections) == [
                str(i) for i in sorted(set(np.unique(instance_map).tolist()) - {0})]
            if prefix.startswith('/left'):  # the same pixels as seg-ros segment's instances
                expected = cv2.imread(str(reference / f'left{index}_instances.png'),
                                      cv2.IMREAD_UNCHANGED)
                np.testing.assert_array_equal(instance_map > 0, expected > 0)


def test_bad_topics_existing_output_and_not_a_bag(model, tmp_path):
    write_bag(tmp_path / 'in', 'mcap', [make_frame(64, 48)])
    base = ('bag', str(tmp_path / 'in'), str(tmp_path / 'out'), '--model', model,
            *MODEL_OPTIONS)
    result = run_cli(*base, '--image-topic', '/camera/image_raw')
    assert result.returncode == 2
    assert 'no topic /camera/image_raw' in result.stderr
    assert f'its image topics: {RAW}, {PACKED}' in result.stderr
    assert 'Traceback' not in result.stderr
    result = run_cli(*base, '--image-topic', CHATTER)
    assert result.returncode == 2 and 'std_msgs/msg/String, not' in result.stderr
    assert f'{RAW}, {PACKED}' in result.stderr
    result = run_cli(*base, '--image-topic', RAW, '--image-topic', PACKED, '--prefix', '/a')
    assert result.returncode == 2 and '1 --prefix for 2 --image-topic' in result.stderr

    (tmp_path / 'out').mkdir()
    (tmp_path / 'out' / 'keep.txt').write_text('mine')
    result = run_cli(*base, '--image-topic', RAW)
    assert result.returncode == 2 and 'exists; pass --overwrite' in result.stderr
    assert (tmp_path / 'out' / 'keep.txt').read_text() == 'mine'
    result = run_cli(*base, '--image-topic', RAW, '--overwrite')
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / 'out' / 'keep.txt').exists()
    assert '/left/segmentation/overlay' in read_bag(tmp_path / 'out')[0]

    (tmp_path / 'notes.txt').write_text('not a bag')
    result = run_cli('bag', str(tmp_path / 'notes.txt'), str(tmp_path / 'out2'),
                     '--image-topic', RAW, '--model', model, *MODEL_OPTIONS)
    assert result.returncode == 2 and 'not a rosbag2 bag' in result.stderr
    result = run_cli('bag', str(tmp_path / 'missing'), str(tmp_path / 'out2'),
                     '--image-topic', RAW, '--model', model, *MODEL_OPTIONS)
    assert result.returncode == 2 and 'no such bag' in result.stderr
    assert not (tmp_path / 'out2').exists()


def test_frames_that_fail_to_decode_are_counted_skipped_and_named(model, tmp_path):
    frames = [make_frame(64, 48, seed=index) for index in range(4)]
    short = messages.image(frames[1], 'bgr8', header(1, 'left'))
    short.data = short.data[:-10]  # data shorter than step * height
    garbage = messages.compressed_image('bgr8; jpeg compressed bgr8',
                                        np.arange(200, dtype=np.uint8), header(2, 'right'))
    raw_data = {1: messages.serialize(short, messages.IMAGE)}
    packed_data = {2: messages.serialize(garbage, messages.COMPRESSED_IMAGE)}
    write_bag(tmp_path / 'in', 'sqlite3', frames, raw_data=raw_data, packed_data=packed_data)
    result = run_cli('bag', str(tmp_path / 'in'), str(tmp_path / 'out'), '--image-topic', RAW,
                     '--image-topic', PACKED, '--model', model, *MODEL_OPTIONS)
    assert result.returncode == 1
    assert '2 frames could not be used and were skipped' in result.stderr
    assert f'{RAW} frame 1 (bag time {START_NS + STEP_NS} ns): data has' in result.stderr
    assert f'{PACKED} frame 2 (bag time {START_NS + 2 * STEP_NS + 1000} ns)' in result.stderr
    assert 'cannot be decoded' in result.stderr and 'Traceback' not in result.stderr
    _, input_rows = read_bag(tmp_path / 'in')
    _, rows = read_bag(tmp_path / 'out')
    assert [row for row in rows if 'segmentation' not in row[0]] == input_rows
    assert len(of_topic(rows, '/left/segmentation/class_map')) == 3
    assert len(of_topic(rows, '/right/segmentation/overlay')) == 3


def big_frames(count: int) -> list[np.ndarray]:
    """Return frames of about a MiB (a real photo where there is one): each its own chunk."""
    if (IMAGES / 'leuvenB.jpg').is_file():
        photo = cv2.imread(str(IMAGES / 'leuvenB.jpg'))
        return [np.roll(photo, 37 * index, axis=1) for index in range(count)]
    return [make_frame(640, 480, seed=index) for index in range(count)]


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_a_truncated_bag_gives_what_was_read_and_says_where_it_stopped(model, tmp_path,
                                                                       storage):
    write_bag(tmp_path / 'in', storage, big_frames(6))
    storage_file = next(path for path in (tmp_path / 'in').iterdir()
                        if path.suffix in ('.mcap', '.db3'))
    # A recorder killed mid-write: no metadata.yaml, the file cut off part-way.
    (tmp_path / 'in' / 'metadata.yaml').unlink()
    with open(storage_file, 'r+b') as handle:
        handle.truncate(storage_file.stat().st_size * 6 // 10)
    result = run_cli('bag', str(tmp_path / 'in'), str(tmp_path / 'out'), '--image-topic', RAW,
                     '--model', model, *MODEL_OPTIONS)
    assert 'Traceback' not in result.stderr
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'is damaged' in result.stderr
    assert 'reading stopped after message' in result.stderr
    assert 'holds what was read before it' in result.stderr
    topics, rows = read_bag(tmp_path / 'out')
    inputs = [row for row in rows if 'segmentation' not in row[0]]
    frames = [row for row in inputs if row[0] == RAW]
    assert 1 <= len(frames) < 6
    assert len(of_topic(rows, '/left/segmentation/overlay')) == len(frames)
    stopped_after = int(result.stderr.split('reading stopped after message ')[1].split()[0])
    assert stopped_after == len(inputs)


def test_an_interrupted_run_leaves_no_output(model, tmp_path):
    write_bag(tmp_path / 'in', 'mcap', big_frames(30))
    process = subprocess.Popen(
        [SEG_ROS, 'bag', str(tmp_path / 'in'), str(tmp_path / 'out'), '--image-topic', RAW,
         '--image-topic', PACKED, '--model', model, *MODEL_OPTIONS],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob('.out.partial/out/*')) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    if process.returncode == 0:
        pytest.skip('the run finished before it could be interrupted')
    assert process.returncode == 130, stderr
    assert 'interrupted' in stderr and 'Traceback' not in stderr
    assert not (tmp_path / 'out').exists() and not list(tmp_path.glob('.out*'))


def test_runs_without_ros_installed(model, tmp_path):
    write_bag(tmp_path / 'in', 'mcap', [make_frame(64, 48)])
    # rclpy and the message packages made unimportable in the child, as on a machine without ROS.
    script = (
        'import sys\n'
        'class NoRos:\n'
        '    def find_spec(self, name, path=None, target=None):\n'
        '        if name.split(".")[0] in ("rclpy", "sensor_msgs", "std_msgs", "vision_msgs"):\n'
        '            raise ImportError(f"no ROS here: {name}")\n'
        'sys.meta_path.insert(0, NoRos())\n'
        'from seg_ros.cli import main\n'
        'status = main(sys.argv[1:])\n'
        'assert "rclpy" not in sys.modules and "sensor_msgs" not in sys.modules\n'
        'sys.exit(status)\n')
    result = subprocess.run(
        [sys.executable, '-c', script, 'bag', str(tmp_path / 'in'), str(tmp_path / 'out'),
         '--image-topic', RAW, '--model', model, *MODEL_OPTIONS, '--instance-classes', 'car'],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    topics, _ = read_bag(tmp_path / 'out')
    assert topics['/left/segmentation/instances'] == messages.DETECTION_2D_ARRAY


def test_ros2_bag_info_reads_the_output(model, tmp_path):
    ros2 = shutil.which('ros2')
    if ros2 is None:
        pytest.skip('the ros2 command line is not installed here (on a robot: ros-jazzy-ros2bag)')
    probe = subprocess.run([ros2, 'bag', 'info', '--help'], capture_output=True, text=True,
                           timeout=60)
    if probe.returncode != 0:
        pytest.skip(f'ros2 is installed without rosbag2 (ros2 bag: {probe.stderr.strip()[-200:]})')
    write_bag(tmp_path / 'in', 'mcap', [make_frame(64, 48, seed=index) for index in range(2)])
    for storage in ('mcap', 'sqlite3'):
        out = tmp_path / f'out_{storage}'
        result = run_cli('bag', str(tmp_path / 'in'), str(out), '--image-topic', RAW,
                         '--model', model, *MODEL_OPTIONS, '--storage', storage)
        assert result.returncode == 0, result.stderr
        info = subprocess.run([ros2, 'bag', 'info', str(out)], capture_output=True, text=True,
                              timeout=60)
        assert info.returncode == 0, info.stderr
        assert '/left/segmentation/overlay' in info.stdout
        assert 'Messages:' in info.stdout


def test_progress_bar_on_a_terminal(model, tmp_path):
    write_bag(tmp_path / 'in', 'mcap', [make_frame(64, 48, seed=index) for index in range(5)])
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [SEG_ROS, 'bag', str(tmp_path / 'in'), str(tmp_path / 'out'), '--image-topic', RAW,
             '--image-topic', PACKED, '--model', model, *MODEL_OPTIONS],
            stdout=subprocess.DEVNULL, stderr=follower)
        os.close(follower)
        shown = b''
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        assert process.wait(timeout=300) == 0
    finally:
        os.close(leader)
    text = shown.decode(errors='replace')
    assert '\r  [' in text and '] 10/10 frames' in text
    assert 'frames/s' in text and 's left' in text


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_one_storage_file_or_a_folder_without_metadata_is_a_bag(model, tmp_path, storage):
    write_bag(tmp_path / 'in', storage, [make_frame(64, 48, seed=index) for index in range(2)])
    storage_file = next(path for path in (tmp_path / 'in').iterdir()
                        if path.suffix in ('.mcap', '.db3'))
    result = run_cli('bag', str(storage_file), str(tmp_path / 'out1'), '--image-topic', RAW,
                     '--model', model, *MODEL_OPTIONS)
    assert result.returncode == 0, result.stderr
    (tmp_path / 'in' / 'metadata.yaml').unlink()  # an intact file, its metadata.yaml lost
    result = run_cli('bag', str(tmp_path / 'in'), str(tmp_path / 'out2'), '--image-topic', RAW,
                     '--model', model, *MODEL_OPTIONS)
    assert result.returncode == 0, result.stderr
    assert 'damaged' not in result.stderr
    assert read_bag(tmp_path / 'out1')[1] == read_bag(tmp_path / 'out2')[1]


def test_depth_gives_points_and_objects_as_the_node(model, tmp_path):
    """--depth-topic: each frame's points and objects from its depth, paired by stamp."""
    frames = street_frames(4)
    fx, fy, cx, cy = 50.0, 52.0, 32.0, 22.0
    depths = []
    for index in range(4):
        depth = np.full((48, 64), 6.0 + index, np.float32)        # the road
        depth[5:15, :] = 2.0 + 0.1 * np.arange(64)[None, :]       # the first car's rows
        depth[30:40, :] = 3.0
        depth[0:2, :] = np.nan                                    # no depth at the top
        depths.append(depth)
    store = messages.typestore()
    info = store.types[messages.CAMERA_INFO](
        header=header(0, 'cam'), height=48, width=64, distortion_model='plumb_bob',
        d=np.zeros(5), k=np.array([fx, 0, cx, 0, fy, cy, 0, 0, 1], np.float64),
        r=np.eye(3).reshape(-1), p=np.zeros(12), binning_x=0, binning_y=0,
        roi=store.types['sensor_msgs/msg/RegionOfInterest'](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
    with Writer(tmp_path / 'in', version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        image = writer.add_connection('/cam/image_raw', messages.IMAGE, typestore=store)
        depth_topic = writer.add_connection('/cam/depth', messages.IMAGE, typestore=store)
        info_topic = writer.add_connection('/cam/camera_info', messages.CAMERA_INFO,
                                           typestore=store)
        for index, frame in enumerate(frames):
            timestamp = START_NS + index * STEP_NS
            depth_data = messages.serialize(messages.image(depths[index], '32FC1',
                                                           header(index, 'cam')), messages.IMAGE)
            if index == 2:   # the depth before its frame
                writer.write(depth_topic, timestamp - 500, depth_data)
            writer.write(info_topic, timestamp, messages.serialize(info, messages.CAMERA_INFO))
            writer.write(image, timestamp + 100, messages.serialize(
                messages.image(frame, 'bgr8', header(index, 'cam')), messages.IMAGE))
            if index in (0, 3):   # after its frame; frame 1 has none
                writer.write(depth_topic, timestamp + 200, depth_data)
    options = ('--image-topic', '/cam/image_raw', '--depth-topic', '/cam/depth',
               '--instance-classes', 'car', 'person', '--min-instance-area', '20',
               '--cloud-organized')
    result = run_cli('bag', str(tmp_path / 'in'), str(tmp_path / 'out'), '--model', model,
                     *MODEL_OPTIONS, *options)
    assert result.returncode == 0, result.stderr
    assert 'frames without points and objects: 1 (no depth image on /cam/depth' in \
        result.stdout
    _, rows = read_bag(tmp_path / 'out')
    clouds = of_topic(rows, '/cam/segmentation/points')
    objects = of_topic(rows, '/cam/segmentation/objects')
    maps = {msg.header.stamp.sec - 1000: pixels_of(msg)
            for _, msg in of_topic(rows, '/cam/segmentation/instance_map')}
    class_maps = {msg.header.stamp.sec - 1000: pixels_of(msg)
                  for _, msg in of_topic(rows, '/cam/segmentation/class_map')}
    assert [msg.header.stamp.sec - 1000 for _, msg in clouds] == [0, 2, 3]
    assert [msg.header.stamp.sec - 1000 for _, msg in objects] == [0, 2, 3]
    v, u = np.mgrid[0:48, 0:64]
    for (_, cloud), (_, found) in zip(clouds, objects):
        index = cloud.header.stamp.sec - 1000
        z = depths[index].astype(np.float64)
        assert (cloud.height, cloud.width) == (48, 64) and not cloud.is_dense
        points = np.frombuffer(cloud.data.tobytes(), np.dtype({
            'names': ['x', 'y', 'z', 'label', 'instance'], 'formats': ['<f4'] * 3 + ['<u2'] * 2,
            'offsets': [0, 4, 8, 16, 18], 'itemsize': 20})).reshape(48, 64)
        np.testing.assert_allclose(points['z'], z, rtol=1e-6)
        np.testing.assert_allclose(points['x'], (u - cx) * z / fx, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(points['y'], (v - cy) * z / fy, rtol=1e-5, atol=1e-6)
        assert np.array_equal(points['label'], class_maps[index])
        assert np.array_equal(points['instance'], maps[index])
        instance_map = maps[index]
        expected = {}
        for instance in sorted(set(np.unique(instance_map).tolist()) - {0}):
            pixels = (instance_map == instance) & np.isfinite(z)
            xyz = np.stack([((u - cx) * z / fx)[pixels], ((v - cy) * z / fy)[pixels],
                            z[pixels]], axis=1)
            expected[str(instance)] = (np.median(xyz, axis=0), np.percentile(xyz, 95, axis=0) -
                                       np.percentile(xyz, 5, axis=0))
        assert sorted(d.id for d in found.detections) == sorted(expected) and expected
        for detection in found.detections:
            center, size = expected[detection.id]
            position = detection.bbox.center.position
            np.testing.assert_allclose([position.x, position.y, position.z], center, rtol=1e-5)
            np.testing.assert_allclose([detection.bbox.size.x, detection.bbox.size.y,
                                        detection.bbox.size.z], size, rtol=1e-5, atol=1e-6)
    # A depth topic of another type is refused before the model loads.
    result = run_cli('bag', str(tmp_path / 'in'), str(tmp_path / 'bad'), '--model', model,
                     *MODEL_OPTIONS, '--image-topic', '/cam/image_raw', '--depth-topic',
                     '/cam/camera_info')
    assert result.returncode == 2
    assert '--depth-topic /cam/camera_info: it is sensor_msgs/msg/CameraInfo' in result.stderr
