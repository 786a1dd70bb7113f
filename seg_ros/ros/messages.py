"""
The segmentation node's ROS messages: frames in, instances, labels and camera_info out.

vision_msgs (``~/instances``, ``~/label_info``) is a ROS package, not on PyPI: where it cannot
be imported, :data:`VISION_MSGS_ERROR` says why and those outputs are not made.
"""

import numpy as np
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header, String

try:  # vision_msgs is a ROS package (apt install ros-jazzy-vision-msgs), not on PyPI
    from vision_msgs.msg import (Detection2D, Detection2DArray, Detection3D, Detection3DArray,
                                 LabelInfo, ObjectHypothesisWithPose, VisionClass)
    VISION_MSGS_ERROR = ''
except ImportError as error:
    Detection2D = Detection2DArray = LabelInfo = ObjectHypothesisWithPose = VisionClass = None
    Detection3D = Detection3DArray = None
    VISION_MSGS_ERROR = str(error)

from seg_ros.core.decode.instances import Instances
from seg_ros.core.geometry.camera import Intrinsics
from seg_ros.core.geometry.objects import Objects3D
from seg_ros.core.model.labels import Labels
from seg_ros.frame_outputs import detection_boxes, object_boxes
from seg_ros.ros import compressed
from seg_ros.ros.image_conversion import image_to_array, ImageConversionError, NODE_ENCODINGS


class UnsupportedEncoding(ImageConversionError):
    """An image whose encoding the node does not take."""


def _deserialise(data: bytes, message_type: type):
    """Return the message serialised in ``data``; raise ImageConversionError if it is not one."""
    try:
        return deserialize_message(data, message_type)
    except Exception as error:  # rclpy raises its own types for a message it cannot read
        raise ImageConversionError(f'cannot deserialise a {message_type.__name__} message of '
                                   f'{len(data)} bytes: {error}') from error


def raw_frame(data: bytes) -> tuple[Header, np.ndarray, str]:
    """
    Deserialise and check a ``sensor_msgs/Image``; return its header, pixels and encoding.

    :raises ImageConversionError: an undecodable message, an encoding the node does not
        take (:class:`UnsupportedEncoding`), a malformed image.
    """
    msg = _deserialise(data, Image)
    if msg.encoding not in NODE_ENCODINGS:
        raise UnsupportedEncoding(f'encoding {msg.encoding!r} is not supported '
                                  f'(accepted: {", ".join(NODE_ENCODINGS)})')
    return msg.header, image_to_array(msg), msg.encoding


def compressed_frame(data: bytes) -> tuple[Header, np.ndarray, str]:
    """Deserialise and decode a ``sensor_msgs/CompressedImage``; raise ImageConversionError."""
    msg = _deserialise(data, CompressedImage)
    frame, encoding = compressed.decode(msg.data, msg.format)
    return msg.header, frame, encoding


def detections(instances: Instances, header: Header) -> 'Detection2DArray':
    """
    Return the instances as a Detection2DArray with ``header``.

    Per instance (:func:`seg_ros.frame_outputs.detection_boxes`): ``id`` its instance-map id,
    one hypothesis (class id as a string, score), the box centre and size in input pixels.
    """
    array = Detection2DArray(header=header)
    for box in detection_boxes(instances):
        detection = Detection2D(header=header, id=box.instance_id)
        detection.bbox.center.position.x, detection.bbox.center.position.y = box.center
        detection.bbox.size_x, detection.bbox.size_y = box.size
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = box.class_id
        hypothesis.hypothesis.score = box.score
        detection.results = [hypothesis]
        array.detections.append(detection)
    return array


def objects(found: Objects3D, header: Header) -> 'Detection3DArray':
    """
    Return 3-D objects as a Detection3DArray with ``header`` (the image's frame).

    Per object (:func:`seg_ros.frame_outputs.object_boxes`): ``id`` its (track) id, one
    hypothesis (class id as a string, score, its pose at the centre), the box's centre (median
    x, y, z of its points), identity orientation and size (5th-95th percentile extent per axis).
    """
    array = Detection3DArray(header=header)
    for box in object_boxes(found):
        detection = Detection3D(header=header, id=box.instance_id)
        center = detection.bbox.center
        center.position.x, center.position.y, center.position.z = box.center
        center.orientation.w = 1.0
        detection.bbox.size.x, detection.bbox.size.y, detection.bbox.size.z = box.size
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id = box.class_id
        hypothesis.hypothesis.score = box.score
        hypothesis.pose.pose = center
        detection.results = [hypothesis]
        array.detections.append(detection)
    return array


def labels_json(labels: Labels) -> String:
    """Return ``~/labels``: the classes' ids, names and colours as JSON."""
    return String(data=labels.to_json())


def label_info(labels: Labels, stamp) -> 'LabelInfo':
    """Return ``~/label_info``: every class id and name, threshold 0 (every pixel has one)."""
    info = LabelInfo(threshold=0.0)
    info.header.stamp = stamp
    info.class_map = [VisionClass(class_id=class_id, class_name=name)
                      for class_id, name in enumerate(labels.names)]
    return info


def scaled_camera_info(info: CameraInfo, width: int, height: int,
                       header: Header) -> CameraInfo:
    """
    Return ``info`` for its image resized to ``width`` x ``height`` (e.g. the network's size).

    The intrinsics ``k`` through :meth:`Intrinsics.resized_to`, the projection ``p`` row by row
    with the same factors; distortion and rectification unchanged.

    :raises ValueError: a camera_info without a usable size or camera matrix.
    """
    camera = Intrinsics.from_k(info.k, info.width, info.height)
    resized = camera.resized_to(width, height)
    scale_x, scale_y = width / camera.width, height / camera.height
    scaled = CameraInfo(header=header, width=width, height=height,
                        distortion_model=info.distortion_model, d=info.d, r=info.r)
    k = list(info.k)
    k[0], k[2], k[4], k[5] = resized.fx, resized.cx, resized.fy, resized.cy
    scaled.k = k
    p = list(info.p)
    p[0], p[2], p[3] = p[0] * scale_x, p[2] * scale_x, p[3] * scale_x
    p[5], p[6], p[7] = p[5] * scale_y, p[6] * scale_y, p[7] * scale_y
    scaled.p = p
    return scaled
