"""
``camera_source`` over real topics, alone and feeding ``segmentation_node`` (embedded model).

Sources: the animated synthetic scenes, a folder of images, a video file; unreadable sources end
the process with status 1 and a message naming the source.
"""

import os
import signal
import time

import cv2
import numpy as np
import pytest

from models import make_frame
from ros_env import module_domain, rclpy_context
from ros_harness import NodeProcess, ParameterCaller, Probe, wait_until

DOMAIN_ID = module_domain(13)

ros_context = pytest.fixture(scope='module')(rclpy_context(DOMAIN_ID))


@pytest.fixture(scope='module')
def probe(ros_context):
    probe = Probe(ros_context, 'camera_probe')
    yield probe
    probe.close()


def record_camera(probe, namespace: str):
    from sensor_msgs.msg import CameraInfo, Image

    from seg_ros.ros.qos import image_qos
    images = probe.record(Image, f'{namespace}/image_raw', image_qos('sensor_data', 10))
    infos = probe.record(CameraInfo, f'{namespace}/camera_info', image_qos('sensor_data', 10))
    return images, infos


def pixels(msg) -> np.ndarray:
    return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)


def test_synthetic_source_publishes_stamped_moving_frames(probe):
    images, infos = record_camera(probe, '/synth')
    camera = NodeProcess('camera_source', [
        '-r', '__ns:=/synth', '-p', 'width:=320', '-p', 'height:=240', '-p', 'rate:=10.0',
        '-p', 'frame_id:=front_camera'], DOMAIN_ID)
    try:
        assert wait_until(lambda: len(images) >= 5 and infos, 60), camera.output()
        now_ns = probe.node.get_clock().now().nanoseconds
        first, last = images[0], images[-1]
        for msg in (first, last):
            assert (msg.width, msg.height, msg.encoding) == (320, 240, 'bgr8')
            assert msg.header.frame_id == 'front_camera'
            stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            assert 0 <= now_ns - stamp_ns < 30e9, 'stamp should be the capture time'
        assert not np.array_equal(pixels(first), pixels(last)), 'the scene should move'
        stamps = [m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec for m in images]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
        info = infos[-1]
        assert (info.width, info.height) == (320, 240)
        assert info.header.frame_id == 'front_camera'
        assert info.k[0] > 0 and info.k[2] == pytest.approx(159.5)
    finally:
        assert camera.stop(signal.SIGINT) == 0, camera.output()
        camera.close()


def test_rate_loop_and_frame_id_apply_at_runtime_the_others_are_read_only(probe):
    images, _ = record_camera(probe, '/runtime')
    camera = NodeProcess('camera_source', [
        '-r', '__ns:=/runtime', '-p', 'width:=64', '-p', 'height:=48', '-p', 'rate:=2.0',
        '-p', 'synthetic_loop:=5'], DOMAIN_ID)
    client = ParameterCaller(probe, '/runtime/camera_source')
    try:
        assert client.wait_ready(), camera.output()
        assert wait_until(lambda: len(images) >= 2, 30), camera.output()
        result, = client.set_values(rate=20.0)
        assert result.successful, result.reason
        counted, started = len(images), time.monotonic()
        time.sleep(2.0)
        rate = (len(images) - counted) / (time.monotonic() - started)
        assert rate > 8.0, f'{rate:.1f} Hz after rate:=20.0 (was 2 Hz)'
        result, = client.set_values(frame_id='renamed')
        assert result.successful, result.reason
        assert wait_until(lambda: images[-1].header.frame_id == 'renamed', 5)
        assert client.set_values(loop=False)[0].successful
        assert client.get_values('loop', 'rate') == [False, 20.0]
        for name, value in (('source', '0'), ('width', 32), ('encoding', 'rgb8')):
            result, = client.set_values(**{name: value})
            assert not result.successful, name
        result, = client.set_values(rate=0.0)
        assert not result.successful and 'rate' in result.reason
    finally:
        assert camera.stop(signal.SIGINT) == 0, camera.output()
        camera.close()


def test_folder_source_without_loop_stops_after_the_last_image(probe, tmp_path):
    for index in range(3):
        cv2.imwrite(str(tmp_path / f'img{index}.png'), make_frame(64, 48, seed=index))
    (tmp_path / 'notes.txt').write_text('not an image')
    images, _ = record_camera(probe, '/folder')
    camera = NodeProcess('camera_source', [
        '-r', '__ns:=/folder', '-p', f'source:={tmp_path}', '-p', 'width:=0', '-p', 'height:=0',
        '-p', 'rate:=2.0', '-p', 'loop:=false', '-p', 'qos:=reliable',
        '-p', 'wait_for_subscribers:=1'], DOMAIN_ID)
    try:
        # It waits for the probe's subscription, so every frame of the folder reaches it.
        assert camera.wait(timeout=60) == 0, camera.output()
        assert '1 subscriber(s) matched: publishing' in camera.output()
        assert 'End of source after 3 frames' in camera.output()
        assert wait_until(lambda: len(images) == 3, 5), len(images)
        for msg in images:
            assert (msg.width, msg.height) == (64, 48)
    finally:
        camera.close()


@pytest.mark.parametrize('keep', [True, False])
def test_folder_source_loops_past_an_unreadable_image_keeping_the_decoded_ones(tmp_path, keep):
    from seg_ros.ros.camera_source import FolderSource, SourceError
    frames = [make_frame(64, 48, seed=index) for index in range(2)]
    for index, frame in enumerate(frames):
        cv2.imwrite(str(tmp_path / f'img{index}.png'), frame)
    (tmp_path / 'img2.png').write_bytes(b'not a png')
    source = FolderSource(str(tmp_path), keep_decoded=keep)
    for _ in range(3):  # the unreadable image is skipped on every pass, not fatal
        for frame in frames:
            np.testing.assert_array_equal(source.read(0.0), frame)
        assert source.read(0.0) is None
        source.rewind()
    assert source.unreadable == [str(tmp_path / 'img2.png')]
    for index in range(2):
        os.remove(tmp_path / f'img{index}.png')
    if keep:  # replayed from memory, not decoded again
        for _ in range(2):
            for frame in frames:
                np.testing.assert_array_equal(source.read(0.0), frame)
            assert source.read(0.0) is None
            source.rewind()
    else:
        with pytest.raises(SourceError, match='no image in the source can be read'):
            source.read(0.0)


def test_video_source_resizes_and_limits_frames(probe, tmp_path):
    video = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 10.0, (80, 60))
    for index in range(4):
        writer.write(make_frame(80, 60, seed=index))
    writer.release()
    images, _ = record_camera(probe, '/video')
    camera = NodeProcess('camera_source', [
        '-r', '__ns:=/video', '-p', f'source:={video}', '-p', 'width:=40', '-p', 'height:=30',
        '-p', 'rate:=10.0', '-p', 'max_frames:=30', '-p', 'encoding:=rgb8',
        '-p', 'wait_for_subscribers:=1'], DOMAIN_ID)
    try:
        # A finite source: without waiting for the recorder, a slow discovery (a loaded machine)
        # can see all 30 frames published before the subscription matches.
        assert camera.wait(timeout=60) == 0, camera.output()
        assert wait_until(lambda: images, 30), camera.output()
        assert all((m.width, m.height, m.encoding) == (40, 30, 'rgb8') for m in images)
        assert len(images) <= 30
    finally:
        camera.close()


@pytest.mark.parametrize('kind', ['missing', 'empty_folder', 'not_a_video'])
def test_unreadable_sources_exit_with_a_clear_message(tmp_path, kind):
    source = {'missing': tmp_path / 'nope.mp4', 'empty_folder': tmp_path,
              'not_a_video': tmp_path / 'notes.mp4'}[kind]
    if kind == 'not_a_video':
        source.write_text('this is text')
    camera = NodeProcess('camera_source', ['-p', f'source:={source}'], DOMAIN_ID)
    try:
        assert camera.wait(timeout=60) == 1, camera.output()
        fatal = [line for line in camera.output().splitlines() if 'cannot start' in line]
        assert len(fatal) == 1 and f"source='{source}'" in fatal[0], camera.output()
    finally:
        camera.close()


def test_camera_source_to_segmentation_node_with_the_embedded_model(probe):
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from seg_ros.paths import embedded_model_path, share_directory
    assert os.path.isfile(embedded_model_path()), 'the embedded model must ship with seg_ros'
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    overlays = probe.record(Image, '/e2e/segmentation/overlay', reliable)
    class_maps = probe.record(Image, '/e2e/segmentation/class_map', reliable)
    camera = NodeProcess('camera_source', [
        '-r', '__ns:=/e2e/camera', '-p', 'width:=480', '-p', 'height:=270', '-p', 'rate:=10.0',
        '-p', 'frame_id:=e2e_camera'], DOMAIN_ID)
    node = NodeProcess('segmentation_node', [
        '--params-file', os.path.join(share_directory(), 'config', 'segment.yaml'),
        '-r', '__ns:=/e2e', '-r', 'image:=/e2e/camera/image_raw',
        '-r', 'camera_info:=/e2e/camera/camera_info'], DOMAIN_ID)
    try:
        assert wait_until(lambda: len(overlays) >= 3 and class_maps, 90), node.output()
        time.sleep(0.5)
        overlay = overlays[-1]
        assert (overlay.width, overlay.height) == (480, 270)
        assert overlay.header.frame_id == 'e2e_camera'
        stamps = {m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec for m in overlays}
        matching = [m for m in class_maps
                    if m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec in stamps]
        assert matching, 'class maps and overlays should carry the same camera stamps'
        class_map = np.frombuffer(bytes(matching[-1].data), np.uint8)
        # A street scene: road and sky are both found in a synthetic frame.
        present = set(np.unique(class_map).tolist())
        assert {1, 11} <= present, present
    finally:
        assert node.stop(signal.SIGINT) == 0, node.output()
        assert camera.stop(signal.SIGINT) == 0, camera.output()
        node.close()
        camera.close()
