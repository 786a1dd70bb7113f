"""
The segmentation node: camera images in, class map, colour mask, overlay and class metadata out.

Topics (relative names, remap them): subscribes ``image`` (or ``image/compressed``) and
``camera_info``; publishes ``~/class_map``, ``~/color_mask``, ``~/overlay``, each also as
``<topic>/compressed``, ``~/mask/<class>``, ``~/camera_info`` (only at model resolution),
``~/labels``, ``~/label_info`` (where vision_msgs is installed), ``~/confidence`` (where the
model has a confidence map) and ``/diagnostics``, and with instances (an instance model, or
``instance_classes``) ``~/instance_map`` (mono16) and ``~/instances``
(vision_msgs/Detection2DArray, where vision_msgs is installed), their ids track ids
(:mod:`seg_ros.frame_tracks`); with depth or ``freespace_classes``, ``~/points``,
``~/obstacle_points``, ``~/objects`` and ``~/freespace`` (:mod:`seg_ros.ros.depth_outputs`).
Parameters: :mod:`seg_ros.ros.parameters`.

The node only wires things up (:class:`SegmentationWiring`): its parameters
(:mod:`seg_ros.ros.parameter_table`, :mod:`seg_ros.ros.node_parameters`), its output
publishers (:mod:`seg_ros.ros.output_publishers`), its subscriptions and /diagnostics
(:mod:`seg_ros.ros.diagnostics`); the frames go through a
:class:`~seg_ros.ros.frame_pipeline.FramePipeline`. The managed node
(:mod:`seg_ros.ros.managed_node`) wires the same parts in lifecycle stages.
"""

import sys
from typing import Callable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from seg_ros.core.latest_frame import LatestFrameSlot
from seg_ros.core.segmenter import Segmenter
from seg_ros.core.track.settings import TrackSettings
from seg_ros.ros import qos
from seg_ros.ros.depth_outputs import DepthOutputs
from seg_ros.ros.diagnostics import diagnostic_array, segmentation_status
from seg_ros.ros.frame_pipeline import FramePipeline
from seg_ros.ros.node_parameters import (build_segmenter, ChangePlan, NODE_TABLE, plan_change,
                                         start_class_masks)
from seg_ros.ros.output_publishers import OutputPublishers
from seg_ros.ros.parameter_table import ParameterWatch
from seg_ros.ros.runner import events_executor, run_node


class SegmentationWiring:
    """
    A segmentation node's parts, wired onto a node in stages.

    The constructor declares the parameters, makes /diagnostics, the parameter callbacks and the
    frame pipeline (no thread yet: :meth:`start`); :meth:`configure` loads the network and makes
    the output publishers; :meth:`activate` sends the latched labels and subscribes to the
    camera; :meth:`deactivate` and :meth:`release` undo them. The plain node runs every stage at
    start-up, the managed node one per lifecycle transition.
    """

    def __init__(self, node: Node, *, make_publisher: Callable, drop_publisher: Callable,
                 network=None, slot: LatestFrameSlot | None = None) -> None:
        """
        Declare the parameters; make /diagnostics, the parameter callbacks and the pipeline.

        :param node: the node to wire.
        :param make_publisher: makes an output publisher (a managed node: lifecycle ones).
        :param drop_publisher: destroys one.
        :param network: the :class:`~seg_ros.ros.multi_camera.SharedNetwork` of several
            cameras in one process: the first loads it, the others share it; its parameters are
            then fixed.
        :param slot: the slot that process's workers take this camera's frames from (the
            pipeline then starts no segmentation worker of its own).
        :raises StartupError: a parameter's value is refused.
        """
        self.node = node
        self.values = NODE_TABLE.declare(node)
        self._network = network
        output_qos = qos.image_qos(self.values['output_qos'], self.values['output_depth'])
        self.outputs = OutputPublishers(node, make_publisher, drop_publisher, output_qos)
        self.pipeline = FramePipeline(self.values, self.outputs, node.get_logger(),
                                      lambda: node.get_clock().now().nanoseconds, slot)
        self.image_topic = node.resolve_topic_name('image')
        self._inputs: list = []
        self._diagnostics = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        ParameterWatch(node, NODE_TABLE, self.plan_change, self.apply_change)

    def start(self) -> None:
        """Start the pipeline's threads."""
        self.pipeline.start()

    # ---- stages -------------------------------------------------------------------------------
    def read_parameters(self) -> None:
        """Read every parameter again (a managed node's configure); raise StartupError."""
        self.values.update(NODE_TABLE.read(self.node))

    def configure(self) -> None:
        """Load and warm the model (or share the process's), make the output publishers."""
        if self._network is None:
            segmenter = build_segmenter(self.values)
        else:
            segmenter = self._network.segmenter_for(self.values, self.node.get_namespace(),
                                                    build_segmenter)
        self._log_segmenter(segmenter)
        masks = start_class_masks(self.values, segmenter)
        self.pipeline.tracks.configure(TrackSettings.from_values(self.values))
        self.pipeline.set_segmenter(segmenter)
        self.outputs.create(segmenter.makes_instances)
        self.outputs.set_class_masks(masks)

    def activate(self) -> None:
        """Publish the latched class metadata, subscribe to the camera, segment."""
        node, values, pipeline = self.node, self.values, self.pipeline
        self._publish_labels()
        input_qos = qos.image_qos(values['input_qos'], values['input_depth'])
        # Frames arrive serialised (raw): only the one the worker takes is deserialised and
        # converted, so a frame that is dropped for a newer one costs no more than its copy.
        if values['input_transport'] == 'compressed':
            self.image_topic = node.resolve_topic_name('image') + '/compressed'
            image = node.create_subscription(CompressedImage, self.image_topic,
                                             pipeline.compressed_image_callback, input_qos,
                                             raw=True)
        else:
            self.image_topic = node.resolve_topic_name('image')
            image = node.create_subscription(Image, 'image', pipeline.image_callback, input_qos,
                                             raw=True)
        camera_info = node.create_subscription(CameraInfo, 'camera_info',
                                               pipeline.camera_info_callback, input_qos)
        self._inputs = [image, camera_info]
        if pipeline.depth_outputs is None:  # made once: its depth input and 3-D outputs
            pipeline.depth_outputs = DepthOutputs(
                node, values, self.outputs.output_qos, input_qos, lambda: pipeline.camera_info,
                pipeline.segmenter.labels.names)
        node.get_logger().info(
            f'Subscribed to {self.image_topic} ({qos.describe(input_qos)}); '
            f'outputs under {node.get_fully_qualified_name()}/ '
            f'({qos.describe(self.outputs.output_qos)})')
        pipeline.activate()

    def deactivate(self) -> None:
        """Unsubscribe from the camera; wait for the frame in hand; segment no more."""
        for subscription in self._inputs:
            self.node.destroy_subscription(subscription)
        self._inputs = []
        self.pipeline.deactivate()

    def release(self) -> None:
        """Destroy the output publishers and free the model."""
        self.outputs.destroy()
        self.pipeline.set_segmenter(None)

    def stop(self) -> None:
        """Stop the pipeline's threads (the frame in hand finishes)."""
        self.pipeline.stop()

    # ---- runtime parameter changes ------------------------------------------------------------
    def plan_change(self, changed: dict) -> ChangePlan:
        """Return what a checked change needs; raise ValueError to refuse it (old one kept)."""
        return plan_change(changed, self.values, self.pipeline.segmenter,
                           shared=self._network is not None,
                           check_class_lists=self.pipeline.depth_outputs is not None)

    def apply_change(self, plan: ChangePlan) -> None:
        """Apply an accepted change; swap in a rebuilt network between two frames."""
        self.values.update(plan.values)
        if plan.class_masks is not None:
            self.outputs.set_class_masks(plan.class_masks)
        if plan.new_instance_settings:
            self.pipeline.segmenter.instance_settings = plan.instance_settings
        if plan.track_settings is not None:
            self.pipeline.tracks.configure(plan.track_settings)
        if plan.segmenter is not None:
            self.pipeline.set_segmenter(plan.segmenter)
            self._log_segmenter(plan.segmenter)
            self._publish_labels()

    # ---- reports ------------------------------------------------------------------------------
    def publish_status(self, status: DiagnosticStatus) -> None:
        """Publish one status on /diagnostics."""
        self._diagnostics.publish(diagnostic_array(status,
                                                   self.node.get_clock().now().to_msg()))

    def segmentation_status(self) -> DiagnosticStatus:
        """Return the status of the node while it segments."""
        return segmentation_status(self.node.get_fully_qualified_name(), self.pipeline,
                                   self.image_topic)

    def _publish_labels(self) -> None:
        self.outputs.publish_labels(self.pipeline.segmenter.labels,
                                    self.node.get_clock().now().to_msg())

    def _log_segmenter(self, segmenter: Segmenter) -> None:
        logger = self.node.get_logger()
        config = segmenter.config
        described = segmenter.backend.description
        logger.info(f'Model {config.model_path} at {described.input_width}x'
                    f'{described.input_height}, {len(segmenter.labels.names)} classes; '
                    f'output {described.output_name!r} ({described.output_layout}); inference: '
                    f'{segmenter.backend.describe()}')
        cuda_asked = config.target == 'cuda'
        for note in segmenter.notes:
            if cuda_asked and 'cuda' in note.lower():
                logger.warning(note)
            else:
                logger.info(note)
        for warning in segmenter.warnings:
            logger.warning(warning)
        if segmenter.confidence_reason:
            logger.info(f'~/confidence is not published: {segmenter.confidence_reason}')


class SegmentationNode(Node):
    """Run a segmentation network on the newest camera frame and publish what subscribers want."""

    def __init__(self, *, network=None, slot: LatestFrameSlot | None = None, **kwargs) -> None:
        """
        Load the network (or share one), create the topics, start the workers.

        :param network: the network of several cameras' nodes in one process
            (:class:`~seg_ros.ros.multi_camera.SharedNetwork`).
        :param slot: the slot that process's workers take this camera's frames from.
        :param kwargs: for :class:`rclpy.node.Node` (namespace, cli_args, ...).
        :raises StartupError: a parameter or the model cannot be used.
        """
        super().__init__('segmentation', **kwargs)
        self.segmentation = SegmentationWiring(
            self, make_publisher=self.create_publisher, drop_publisher=self.destroy_publisher,
            network=network, slot=slot)
        self.create_timer(self.segmentation.values['diagnostics_period'],
                          self.diagnostics_callback)
        self.segmentation.configure()
        self.segmentation.activate()
        self.segmentation.start()

    @property
    def pipeline(self) -> FramePipeline:
        """Return the frame pipeline, to which a hub's workers hand frames."""
        return self.segmentation.pipeline

    def diagnostics_callback(self) -> None:
        """Publish backend, rates, timings and counters on /diagnostics."""
        self.segmentation.publish_status(self.segmentation.segmentation_status())

    def destroy_node(self) -> None:
        """Stop the worker (it finishes the frame in hand), then destroy the node."""
        self.segmentation.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Run the segmentation node until SIGINT/SIGTERM; a start-up error exits with status 1."""
    return run_node(SegmentationNode, 'segmentation', args, events_executor)


if __name__ == '__main__':
    sys.exit(main())
