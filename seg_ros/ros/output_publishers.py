"""
The segmentation node's output publishers, and which of them a frame must feed.

They are made through the node's ``make_publisher`` (a managed node makes lifecycle publishers)
and destroyed through its ``drop_publisher``; the class mask publishers are made again when
``class_masks`` or the model changes. ``~/confidence`` is made for every model (one without a
confidence map publishes nothing on it). :meth:`OutputPublishers.wanted` turns the subscriber
counts and the ``publish_*`` parameters into the frame's
:class:`~seg_ros.frame_outputs.OutputSelection`.
"""

import threading
from typing import Callable

from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import String

from seg_ros.core.model.labels import Labels
from seg_ros.frame_outputs import OutputSelection
from seg_ros.output_topics import CONFIDENCE, IMAGE_OUTPUTS
from seg_ros.ros import messages, qos
from seg_ros.ros.messages import Detection2DArray, LabelInfo, VISION_MSGS_ERROR


def _subscribed(publisher) -> bool:
    return publisher is not None and publisher.get_subscription_count() > 0


class OutputPublishers:
    """Every output publisher of one node (none until :meth:`create`)."""

    def __init__(self, node, make_publisher: Callable, drop_publisher: Callable,
                 output_qos) -> None:
        """
        Keep how publishers are made; make none yet.

        :param node: the node (its logger, its topic names).
        :param make_publisher: ``(msg_type, topic, qos) -> publisher``.
        :param drop_publisher: destroys a publisher ``make_publisher`` made.
        :param output_qos: the image outputs' QoS.
        """
        self._node = node
        self._make = make_publisher
        self._drop = drop_publisher
        self.output_qos = output_qos
        self.images: dict[str, object] = {}
        self.compressed: dict[str, object] = {}
        self.camera_info = self.labels = self.label_info = None
        self.instance_map = self.instances = self.confidence = None
        self._masks: dict[int, object] = {}
        self._masks_lock = threading.Lock()

    def create(self, makes_instances: bool) -> None:
        """Make the publishers of every output but the class masks."""
        make, output_qos, logger = self._make, self.output_qos, self._node.get_logger()
        self.images = {output.name: make(Image, output.topic, output_qos)
                       for output in IMAGE_OUTPUTS}
        self.compressed = {output.name: make(CompressedImage, output.topic + '/compressed',
                                             output_qos) for output in IMAGE_OUTPUTS}
        self.camera_info = make(CameraInfo, '~/camera_info', output_qos)
        self.confidence = make(Image, f'~/{CONFIDENCE}', output_qos)
        self.labels = make(String, '~/labels', qos.latched_qos())
        self.label_info = None
        if LabelInfo is None:
            logger.warning(
                f'vision_msgs cannot be imported ({VISION_MSGS_ERROR}): ~/label_info is not '
                'published, the classes are on ~/labels (JSON) only; on a robot: apt install '
                'ros-$ROS_DISTRO-vision-msgs')
        else:
            self.label_info = make(LabelInfo, '~/label_info', qos.latched_qos())
        self.instance_map = make(Image, '~/instance_map', output_qos)
        self.instances = None
        if Detection2DArray is not None:
            self.instances = make(Detection2DArray, '~/instances', output_qos)
        elif makes_instances:
            logger.warning(
                f'~/instances is not published: vision_msgs cannot be imported '
                f'({VISION_MSGS_ERROR}); install ros-$ROS_DISTRO-vision-msgs. ~/instance_map '
                'and the overlay still show the instances')

    def destroy(self) -> None:
        """Destroy every publisher (the class masks too)."""
        self.set_class_masks({})
        publishers = [*self.images.values(), *self.compressed.values(), self.camera_info,
                      self.confidence, self.labels, self.label_info, self.instance_map,
                      self.instances]
        for publisher in publishers:
            if publisher is not None:
                self._drop(publisher)
        self.images, self.compressed = {}, {}
        self.camera_info = self.labels = self.label_info = None
        self.instance_map = self.instances = self.confidence = None

    def set_class_masks(self, indices: dict[int, str]) -> None:
        """Publish the masks of ``indices`` (class id to topic); drop the other mask topics."""
        with self._masks_lock:
            current = self._masks
            publishers = {}
            for class_id, topic in indices.items():
                publisher = current.pop(class_id, None)
                if publisher is None or \
                        publisher.topic_name != self._node.resolve_topic_name(topic):
                    if publisher is not None:
                        self._drop(publisher)
                    publisher = self._make(Image, topic, self.output_qos)
                publishers[class_id] = publisher
            for publisher in current.values():
                self._drop(publisher)
            self._masks = publishers

    def wanted(self, values: dict, makes_instances: bool, class_map: bool,
               makes_confidence: bool = False) -> tuple[OutputSelection, dict[int, object]]:
        """
        Return the outputs that have subscribers (and are switched on), and the masks' publishers.

        :param values: the node's parameter values (``publish_*``).
        :param makes_instances: the running model gives instances.
        :param class_map: another output (camera_info, 3-D) needs the class map.
        :param makes_confidence: the running model gives a confidence map.
        """
        with self._masks_lock:
            masks = {class_id: publisher for class_id, publisher in self._masks.items()
                     if _subscribed(publisher)}
        switched_on = {name for name in self.images if values[f'publish_{name}']}
        return OutputSelection(
            raw=frozenset(name for name in switched_on if _subscribed(self.images[name])),
            compressed=frozenset(name for name in switched_on
                                 if _subscribed(self.compressed[name])),
            masks=tuple(masks),
            instance_map=(makes_instances and values['publish_instance_map'] and
                          _subscribed(self.instance_map)),
            instances=(makes_instances and values['publish_instances'] and
                       _subscribed(self.instances)),
            class_map=class_map,
            confidence=makes_confidence and _subscribed(self.confidence)), masks

    def camera_info_wanted(self) -> bool:
        """Return whether ``~/camera_info`` has a subscriber."""
        return _subscribed(self.camera_info)

    def publish_labels(self, labels: Labels, stamp) -> None:
        """Publish the latched ``~/labels`` and ``~/label_info`` of a model."""
        self.labels.publish(messages.labels_json(labels))
        if self.label_info is not None:
            self.label_info.publish(messages.label_info(labels, stamp))
