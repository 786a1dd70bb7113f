"""
Several cameras in one process with one network in memory: ``multi_camera_segmentation``.

The hub node ``segmentation_cameras`` reads ``cameras`` (namespaces), ``image`` and
``camera_info`` (topic names inside each camera's namespace) and starts one
:class:`~seg_ros.ros.segmentation_node.SegmentationNode` per camera, named ``segmentation`` in
the camera's namespace: ``/<camera>/segmentation/...`` are exactly the topics of one node per
camera, each output with its own camera's header and camera_info. Every camera node takes the
same parameters (a params file's ``/**``); the first loads the network, the others share it.

``workers`` threads (default 2) serve the cameras in turn
(:class:`~seg_ros.core.latest_frame.FairSlots`): each camera's newest frame waits in its own
slot, a camera has at most one frame in hand (its outputs stay in order), and a camera that
floods, sends malformed frames or stops neither starves nor slows the others. The workers
share the one network: ONNX Runtime runs their calls side by side, OpenVINO with one infer
request a worker on the one compiled model, OpenCV DNN one at a time; while one worker is in
the network another converts, decodes, renders and publishes. seg_ros's backends run one image
a call (each network is opened at a fixed batch-1 input shape), so the frames of several
cameras are not put into one batch.
"""

import sys
import threading

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from seg_ros.core.latest_frame import FairSlots
from seg_ros.ros.runner import events_executor, run_node, StartupError
from seg_ros.ros.segmentation_node import SegmentationNode, SharedNetwork

HUB_NAME = 'segmentation_cameras'
DEFAULT_WORKERS, MAX_WORKERS = 2, 8


def check_cameras(cameras: list[str]) -> list[str]:
    """
    Return the camera namespaces without slashes; raise StartupError for a bad list.

    :param cameras: the ``cameras`` parameter.
    """
    names = [camera.strip().strip('/') for camera in cameras]
    if not names or not all(names):
        raise StartupError(f'parameter cameras must name at least one camera namespace, got '
                           f'{list(cameras)!r}')
    if len(set(names)) != len(names):
        raise StartupError(f'parameter cameras names a camera twice: {names!r}')
    return names


class CameraHub(Node):
    """Start one segmentation node per camera, sharing one network and one worker."""

    def __init__(self) -> None:
        """Read the cameras, start their nodes (the first loads the network), start the worker."""
        super().__init__(HUB_NAME)
        self.declare_parameter('cameras', Parameter.Type.STRING_ARRAY, ParameterDescriptor(
            description='Camera namespaces: one segmentation node in each, one network for all.',
            read_only=True))
        self.declare_parameter('image', 'image_raw', ParameterDescriptor(
            description='Image topic inside each camera namespace (/<camera>/<image>).',
            read_only=True))
        self.declare_parameter('camera_info', 'camera_info', ParameterDescriptor(
            description='CameraInfo topic inside each camera namespace.', read_only=True))
        self.declare_parameter('workers', DEFAULT_WORKERS, ParameterDescriptor(
            description='Threads serving the cameras with the one network (1 to 8).',
            read_only=True))
        try:
            cameras = check_cameras(self.get_parameter('cameras').value or [])
        except ParameterUninitializedException:  # not set, or set to an untyped []
            cameras = check_cameras([])
        image = self.get_parameter('image').value.strip('/')
        camera_info = self.get_parameter('camera_info').value.strip('/')
        workers = self.get_parameter('workers').value
        if not 1 <= workers <= MAX_WORKERS:
            raise StartupError(f'parameter workers must be 1 to {MAX_WORKERS}, got {workers!r}')
        self._slots = FairSlots(len(cameras))
        network = SharedNetwork()
        self.children: list[SegmentationNode] = []
        try:
            for camera, slot in zip(cameras, self._slots.slots):
                self.children.append(SegmentationNode(
                    network=network, slot=slot, namespace=f'/{camera}',
                    cli_args=['--ros-args', '-r', f'image:=/{camera}/{image}',
                              '-r', f'camera_info:=/{camera}/{camera_info}']))
        except BaseException:
            self._destroy_children()
            raise
        self._workers = [threading.Thread(target=self._work, name=f'segmentation{index}',
                                          daemon=True) for index in range(workers)]
        for worker in self._workers:
            worker.start()
        self.get_logger().info(
            f'{len(cameras)} cameras in one process, one network '
            f'({network.segmenter.backend.describe()}), {workers} workers: '
            + ', '.join(node.get_fully_qualified_name() for node in self.children))

    def _work(self) -> None:
        while not self._slots.closed:
            taken = self._slots.take(timeout=0.2, hold=True)
            if taken is not None:
                index, item = taken
                try:
                    self.children[index].handle_frame(item)
                finally:
                    self._slots.release(index)

    def _destroy_children(self) -> None:
        for node in self.children:
            node.destroy_node()
        self.children = []

    def destroy_node(self) -> None:
        """Stop the workers (each finishes its frame in hand), the camera nodes, then the hub."""
        self._slots.close()
        for worker in self._workers:
            if worker.is_alive():
                worker.join(timeout=1.5)
        self._destroy_children()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Run the cameras until SIGINT/SIGTERM; a start-up error exits with status 1."""
    return run_node(CameraHub, HUB_NAME, args, events_executor)


if __name__ == '__main__':
    sys.exit(main())
