"""
Several cameras in one process (``multi_camera_segmentation``): one network, every camera's topics.

A real process with three cameras runs the small test model; this test publishes frames of a
different size on each camera, malformed frames on one, nothing on another, and checks every
camera's outputs (header, size, class map against plain cv2.dnn), the fairness of the
workers, the refusals that keep the shared network consistent, and the one-process launch.
"""

import time

import cv2
import numpy as np
import pytest

from models import (make_frame, make_labelled_model, tiny_class_map as reference_class_map,
                    TINY_CLASS_NAMES, TINY_COLORS_RGB, TINY_HEIGHT, TINY_WIDTH)
from ros_env import module_domain, rclpy_context
from ros_harness import (image_message as encode, NodeProcess, Probe, tiny_model_params,
                         wait_until)

DOMAIN_ID = module_domain(28)
CAMERAS = ('front', 'left', 'rear')
SIZES = {'front': (80, 60), 'left': (64, 48), 'rear': (120, 40)}
MODEL_WIDTH, MODEL_HEIGHT = TINY_WIDTH, TINY_HEIGHT

ros_context = pytest.fixture(scope='module')(rclpy_context(DOMAIN_ID))


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory) -> str:
    return make_labelled_model(tmp_path_factory.mktemp('multi_model'), TINY_CLASS_NAMES,
                               TINY_COLORS_RGB)


def hub_args(model_dir: str, *params: str) -> list[str]:
    return ['-p', f'cameras:={list(CAMERAS)}',
            *tiny_model_params(model_dir, MODEL_WIDTH, MODEL_HEIGHT, *params)]


@pytest.fixture(scope='module')
def hub(model_dir):
    process = NodeProcess('multi_camera_segmentation', hub_args(model_dir), DOMAIN_ID)
    yield process
    process.finish()


@pytest.fixture(scope='module')
def probe(ros_context, hub):
    probe = Probe(ros_context, 'multi_probe')
    for camera in CAMERAS:
        probe.record_outputs(f'/{camera}/segmentation', ('class_map', 'overlay'))
    probe.record_diagnostics()
    probe.cameras = {camera: probe.camera_publisher(f'/{camera}/image_raw')
                     for camera in CAMERAS}
    for camera, publisher in probe.cameras.items():
        assert probe.wait_for_subscribers(publisher, timeout=60), hub.output()
        assert probe.wait_for_publishers(f'/{camera}/segmentation/overlay', timeout=30)
    yield probe
    probe.close()


def frame_for(camera: str, index: int) -> np.ndarray:
    width, height = SIZES[camera]
    return make_frame(width, height, seed=100 * CAMERAS.index(camera) + index)


def published(probe, camera: str, output: str, stamp_sec: int):
    matches = [msg for msg in list(probe.received[f'/{camera}/segmentation/{output}'])
               if msg.header.stamp.sec == stamp_sec]
    return matches[-1] if matches else None


def send_until_segmented(probe, camera: str, msg, timeout: float = 20.0):
    """Publish ``msg`` on the camera until its class map comes back (matching takes a moment)."""
    def segmented():
        probe.cameras[camera].publish(msg)
        return wait_until(lambda: published(probe, camera, 'class_map', msg.header.stamp.sec),
                          0.5)
    return wait_until(segmented, timeout)


def test_every_camera_gets_its_own_outputs_from_one_network(probe, hub, model_dir):
    for index in range(3):
        for camera in CAMERAS:
            msg = encode(frame_for(camera, index), 'bgr8')
            msg.header.stamp.sec = 1000 + index
            msg.header.frame_id = f'{camera}_optical'
            class_map = send_until_segmented(probe, camera, msg)
            assert class_map is not None, f'{camera} frame {index}:\n{hub.output()}'
            overlay = wait_until(lambda: published(probe, camera, 'overlay', 1000 + index), 5)
            assert overlay is not None
            width, height = SIZES[camera]
            for output in (class_map, overlay):
                assert output.header.frame_id == f'{camera}_optical'
                assert (output.width, output.height) == (width, height)
            got = np.frombuffer(bytes(class_map.data), np.uint8).reshape(height, width)
            expected = reference_class_map(model_dir, frame_for(camera, index))
            assert np.array_equal(got, expected), camera
    assert '3 cameras in one process, one network' in hub.output()
    assert '2 workers' in hub.output()


def test_two_workers_keep_each_cameras_outputs_in_order(probe, hub):
    # Every camera streams as fast as it can: the two workers never hold two frames of one
    # camera, so each camera's outputs come out in the order of its frames.
    for index in range(40):
        for camera in CAMERAS:
            msg = encode(frame_for(camera, index), 'bgr8')
            msg.header.stamp.sec = 7000 + index
            probe.cameras[camera].publish(msg)
        time.sleep(0.01)
    for camera in CAMERAS:
        topic = f'/{camera}/segmentation/class_map'
        assert wait_until(lambda: any(msg.header.stamp.sec == 7039
                                      for msg in list(probe.received[topic])), 20), hub.output()
        stamps = [msg.header.stamp.sec for msg in list(probe.received[topic])
                  if msg.header.stamp.sec >= 7000]
        assert len(stamps) >= 2 and stamps == sorted(set(stamps)), (camera, stamps)


def test_a_flooding_camera_and_a_malformed_one_do_not_starve_the_third(probe, hub):
    from sensor_msgs.msg import Image
    served = 0
    for index in range(10):
        for burst in range(20):  # front floods, left sends garbage
            flood = encode(frame_for('front', burst), 'bgr8')
            flood.header.stamp.sec = 5000
            probe.cameras['front'].publish(flood)
            probe.cameras['left'].publish(Image(height=4, width=8, encoding='bgr8', step=3,
                                                data=bytes(12)))
        msg = encode(frame_for('rear', index), 'bgr8')
        msg.header.stamp.sec = 2000 + index
        probe.cameras['rear'].publish(msg)
        served += wait_until(lambda: published(probe, 'rear', 'class_map', 2000 + index),
                             10) is not None
        time.sleep(0.05)
    assert served == 10, hub.output()
    assert 'frame rejected' in hub.output()
    assert hub.alive()


def test_network_parameters_are_fixed_while_the_network_is_shared(probe, hub):
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter
    client = probe.node.create_client(SetParameters, '/rear/segmentation/set_parameters')
    assert client.wait_for_service(timeout_sec=10)
    request = SetParameters.Request(parameters=[
        Parameter('backend', value='onnxruntime').to_parameter_msg(),
        Parameter('alpha', value=0.3).to_parameter_msg()])
    future = client.call_async(request)
    assert wait_until(future.done, 10)
    result = future.result().results[0]
    assert not result.successful and 'shared by every camera' in result.reason
    request = SetParameters.Request(parameters=[Parameter('alpha', value=0.3)
                                                .to_parameter_msg()])
    future = client.call_async(request)
    assert wait_until(future.done, 10)
    assert future.result().results[0].successful  # per-camera rendering stays settable


def test_cameras_given_different_networks_are_refused_at_start(model_dir, tmp_path):
    params = tmp_path / 'params.yaml'
    params.write_text('/rear/segmentation:\n  ros__parameters:\n    backend: onnxruntime\n')
    process = NodeProcess('multi_camera_segmentation',
                          hub_args(model_dir) + ['--params-file', str(params)], DOMAIN_ID)
    try:
        assert wait_until(lambda: not process.alive(), 60), process.output()
        output = process.output()
        assert process.stop() == 1, output
        assert "parameter backend of /rear is 'onnxruntime' but /front has 'opencv'" in output
    finally:
        process.close()


@pytest.mark.parametrize('parameter,message', [
    ('cameras:=[]', 'must name at least one camera'),
    ('cameras:=[front, front]', 'names a camera twice'),
    ('workers:=0', 'parameter workers must be 1 to 8, got 0')])
def test_a_bad_camera_list_is_refused(model_dir, parameter, message):
    args = hub_args(model_dir)
    if parameter.startswith('cameras'):
        args[1] = parameter
    else:
        args += ['-p', parameter]
    process = NodeProcess('multi_camera_segmentation', args, DOMAIN_ID)
    try:
        assert wait_until(lambda: not process.alive(), 60), process.output()
        assert message in process.output()
        assert process.stop() == 1
    finally:
        process.close()


def test_grey_frames_of_one_camera_and_colour_of_another(probe, hub, model_dir):
    frame = frame_for('left', 50)
    msg = encode(frame, 'mono8')
    msg.header.stamp.sec = 3000
    class_map = send_until_segmented(probe, 'left', msg)
    assert class_map is not None, hub.output()
    grey = cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    width, height = SIZES['left']
    got = np.frombuffer(bytes(class_map.data), np.uint8).reshape(height, width)
    assert np.array_equal(got, reference_class_map(model_dir, grey))


def test_each_camera_has_its_own_tracks(probe, model_dir):
    """Two cameras of one process, one network: each its own tracker, ids from 1 on each."""
    from models import class_weights
    prototypes = (class_weights(len(TINY_CLASS_NAMES))[0] / 2).astype(np.uint8)
    road, car = TINY_CLASS_NAMES.index('road'), TINY_CLASS_NAMES.index('car')
    cars = {'ahead': [(10, 10, 20, 20)], 'behind': [(5, 30, 15, 40), (40, 5, 52, 15)]}
    args = ['-p', f'cameras:={list(cars)}', '-r', 'segmentation_cameras:__node:=tracks_hub',
            *tiny_model_params(model_dir, MODEL_WIDTH, MODEL_HEIGHT, 'instance_classes:=[car]',
                               'min_instance_area:=1')]
    process = NodeProcess('multi_camera_segmentation', args, DOMAIN_ID)
    try:
        publishers = {}
        for camera in cars:
            probe.record_outputs(f'/{camera}/segmentation', ('instance_map',))
            publishers[camera] = probe.camera_publisher(f'/{camera}/image_raw')
            assert probe.wait_for_subscribers(publishers[camera], timeout=60), process.output()
        seen = {}
        for index in range(3):
            for camera, boxes in cars.items():
                classes = np.full((MODEL_HEIGHT, MODEL_WIDTH), road, np.uint8)
                for u0, v0, u1, v1 in boxes:
                    classes[v0:v1, u0 + index:u1 + index] = car
                msg = encode(np.ascontiguousarray(prototypes[classes][:, :, ::-1]), 'bgr8')
                msg.header.stamp.sec, msg.header.stamp.nanosec = 8000, index * 100_000_000

                def arrived(camera=camera, msg=msg):
                    publishers[camera].publish(msg)
                    return wait_until(lambda: [
                        m for m in list(probe.received[f'/{camera}/segmentation/instance_map'])
                        if m.header.stamp == msg.header.stamp and m.width == MODEL_WIDTH], 0.5)
                found = wait_until(arrived, 20)
                assert found, process.output()
                ids = np.frombuffer(bytes(found[0].data), '<u2')
                seen.setdefault(camera, []).append(sorted(set(ids.tolist()) - {0}))
        assert seen['ahead'] == [[1]] * 3 and seen['behind'] == [[1, 2]] * 3, seen
    finally:
        process.finish()
