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
from typing import Any, Callable

from rclpy.node import Node

from seg_ros.core.latest_frame import FairSlots
from seg_ros.core.segmenter import Segmenter
from seg_ros.ros.node_parameters import NETWORK_VALUES
from seg_ros.ros.parameter_table import ParameterTable
from seg_ros.ros.parameters import ParamSpec
from seg_ros.ros.runner import events_executor, run_node, StartupError
from seg_ros.ros.segmentation_node import SegmentationNode

HUB_NAME = 'segmentation_cameras'
DEFAULT_WORKERS, MAX_WORKERS = 2, 8


def camera_names(cameras: list[str]) -> list[str]:
    """Return the camera namespaces of the ``cameras`` parameter without slashes."""
    return [camera.strip().strip('/') for camera in cameras]


def _cameras_reason(cameras: Any) -> str | None:
    names = camera_names(cameras)
    if not names or not all(names):
        return f'cameras must name at least one camera namespace, got {list(cameras)!r}'
    if len(set(names)) != len(names):
        return f'cameras names a camera twice: {names!r}'
    return None


def _workers_reason(workers: Any) -> str | None:
    if not 1 <= workers <= MAX_WORKERS:
        return f'workers must be 1 to {MAX_WORKERS}, got {workers!r}'
    return None


# The hub's own parameters, all read once at start-up; the camera nodes take the node's.
HUB_TABLE = ParameterTable((
    ParamSpec('cameras', [], 'Camera namespaces: one segmentation node in each, one network '
              'for all.', item_type=str, read_only=True, validate=_cameras_reason),
    ParamSpec('image', 'image_raw', 'Image topic inside each camera namespace '
              '(/<camera>/<image>).', read_only=True),
    ParamSpec('camera_info', 'camera_info', 'CameraInfo topic inside each camera namespace.',
              read_only=True),
    ParamSpec('workers', DEFAULT_WORKERS, f'Threads serving the cameras with the one network '
              f'(1 to {MAX_WORKERS}).', read_only=True, validate=_workers_reason),
))


class SharedNetwork:
    """
    One network for the camera nodes of one process: the first node loads it.

    Every node must be given the same network parameters (those that rebuild the network and
    the instance ones): a node that differs is refused at start-up, naming the parameter.
    """

    def __init__(self) -> None:
        """Hold no network yet."""
        self.segmenter: Segmenter | None = None
        self._values: dict = {}
        self._first = ''

    def segmenter_for(self, values: dict, namespace: str,
                      build: Callable[[dict], Segmenter]) -> Segmenter:
        """
        Return the shared network, built by ``build(values)`` for the first camera.

        :raises StartupError: a network parameter differs from the first camera's.
        """
        wanted = {name: values[name] for name in NETWORK_VALUES}
        if self.segmenter is None:
            self.segmenter, self._values, self._first = build(values), wanted, namespace
            return self.segmenter
        for name, value in wanted.items():
            if value != self._values[name]:
                raise StartupError(
                    f'parameter {name} of {namespace} is {value!r} but {self._first} has '
                    f'{self._values[name]!r}: the cameras of one process share one network')
        return self.segmenter


class CameraHub(Node):
    """Start one segmentation node per camera, sharing one network and its workers."""

    def __init__(self) -> None:
        """Read the cameras, start their nodes (the first loads the network), start workers."""
        super().__init__(HUB_NAME)
        values = HUB_TABLE.declare(self)
        cameras = camera_names(values['cameras'])
        image = values['image'].strip('/')
        camera_info = values['camera_info'].strip('/')
        workers = values['workers']
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
                    self.children[index].pipeline.handle_frame(item)
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
