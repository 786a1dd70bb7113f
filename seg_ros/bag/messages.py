"""
The node's output messages as ``rosbags`` messages, serialised to CDR for a bag.

The type store is ROS 2 Jazzy's plus the vision_msgs types the node publishes (``LabelInfo``,
``Detection2DArray``, ``Detection3DArray``), registered from their message definitions
(vision_msgs 4.1, Apache-2.0; comments left out), since rosbags ships only the core message
packages.
"""

from __future__ import annotations

import functools
import sys

import numpy as np
from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness, QosReliability,
                                QosTime)
from rosbags.typesys import get_types_from_msg, get_typestore, Stores

from seg_ros.core.decode.instances import Instances
from seg_ros.core.geometry.objects import Objects3D
from seg_ros.frame_outputs import detection_boxes, object_boxes
from seg_ros.ros.image_conversion import pixel_layout

IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'
STRING = 'std_msgs/msg/String'
LABEL_INFO = 'vision_msgs/msg/LabelInfo'
DETECTION_2D_ARRAY = 'vision_msgs/msg/Detection2DArray'
DETECTION_3D_ARRAY = 'vision_msgs/msg/Detection3DArray'
POINT_CLOUD2 = 'sensor_msgs/msg/PointCloud2'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)
_POINT_FIELD_TYPES = {'<f4': 7, '<u2': 4}  # sensor_msgs/PointField FLOAT32, UINT16

VISION_MSGS = {
    'VisionClass': 'uint16 class_id\nstring class_name\n',
    'LabelInfo': 'std_msgs/Header header\nvision_msgs/VisionClass[] class_map\n'
                 'float32 threshold\n',
    'Point2D': 'float64 x\nfloat64 y\n',
    'Pose2D': 'vision_msgs/Point2D position\nfloat64 theta\n',
    'BoundingBox2D': 'vision_msgs/Pose2D center\nfloat64 size_x\nfloat64 size_y\n',
    'ObjectHypothesis': 'string class_id\nfloat64 score\n',
    'ObjectHypothesisWithPose': 'ObjectHypothesis hypothesis\n'
                                'geometry_msgs/PoseWithCovariance pose\n',
    'Detection2D': 'std_msgs/Header header\nObjectHypothesisWithPose[] results\n'
                   'BoundingBox2D bbox\nstring id\n',
    'Detection2DArray': 'std_msgs/Header header\nDetection2D[] detections\n',
    'BoundingBox3D': 'geometry_msgs/Pose center\ngeometry_msgs/Vector3 size\n',
    'Detection3D': 'std_msgs/Header header\nObjectHypothesisWithPose[] results\n'
                   'BoundingBox3D bbox\nstring id\n',
    'Detection3DArray': 'std_msgs/Header header\nDetection3D[] detections\n',
}

_NO_TIME = QosTime(0, 0)
#: The node's outputs: reliable, volatile; its label topics: latched (transient local, depth 1).
OUTPUT_QOS = (Qos(QosHistory.KEEP_LAST, 5, QosReliability.RELIABLE, QosDurability.VOLATILE,
                  _NO_TIME, _NO_TIME, QosLiveliness.AUTOMATIC, _NO_TIME, False),)
LATCHED_QOS = (Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE,
                   QosDurability.TRANSIENT_LOCAL, _NO_TIME, _NO_TIME, QosLiveliness.AUTOMATIC,
                   _NO_TIME, False),)
_MACHINE_IS_BIGENDIAN = int(sys.byteorder == 'big')


@functools.cache
def typestore():
    """Return the Jazzy type store with the vision_msgs types added (built once)."""
    store = get_typestore(Stores.ROS2_JAZZY)
    types = {}
    for name, text in VISION_MSGS.items():
        types.update(get_types_from_msg(text, f'vision_msgs/msg/{name}'))
    store.register(types)
    return store


def serialize(message, msgtype: str) -> memoryview:
    """Return a message as CDR bytes."""
    return typestore().serialize_cdr(message, msgtype)


def deserialize(data, msgtype: str):
    """Return the message of CDR bytes."""
    return typestore().deserialize_cdr(data, msgtype)


def _type(msgtype: str):
    return typestore().types[msgtype]


def image(pixels: np.ndarray, encoding: str, header) -> object:
    """
    Return a ``sensor_msgs/Image`` of an array, as ``array_to_image`` fills one for the node.

    :param pixels: (H, W) or (H, W, C) array of the encoding's dtype.
    :param encoding: e.g. ``'rgb8'``, ``'mono8'``, ``'mono16'``.
    :param header: the input frame's header (a rosbags ``std_msgs/Header``).
    """
    layout = pixel_layout(encoding)
    height, width = pixels.shape[:2]
    data = np.ascontiguousarray(pixels, layout.dtype).reshape(-1).view(np.uint8)
    return _type(IMAGE)(header=header, height=height, width=width, encoding=encoding,
                        is_bigendian=_MACHINE_IS_BIGENDIAN, step=width * layout.pixel_bytes,
                        data=data)


def compressed_image(format_text: str, data, header) -> object:
    """Return a ``sensor_msgs/CompressedImage`` of ``compressed.encode``'s format and bytes."""
    return _type(COMPRESSED_IMAGE)(header=header, format=format_text,
                                   data=np.frombuffer(data, np.uint8))


def string(text: str) -> object:
    """Return a ``std_msgs/String``."""
    return _type(STRING)(data=text)


def label_info(names: tuple[str, ...], header) -> object:
    """Return the node's ``~/label_info``: every class id and name, threshold 0."""
    vision_class = _type('vision_msgs/msg/VisionClass')
    return _type(LABEL_INFO)(
        header=header, threshold=0.0,
        class_map=[vision_class(class_id=class_id, class_name=name)
                   for class_id, name in enumerate(names)])


def detections(instances: Instances, header) -> object:
    """
    Return the instances as the node's ``~/instances`` (see ``seg_ros.ros.messages.detections``).

    Per instance (:func:`seg_ros.frame_outputs.detection_boxes`): ``id`` its instance-map id, one
    hypothesis (class id as a string, score), the box centre and size in input-image pixels.
    """
    types = typestore().types
    point, pose2d = types['vision_msgs/msg/Point2D'], types['vision_msgs/msg/Pose2D']
    box, hypothesis = types['vision_msgs/msg/BoundingBox2D'], types[
        'vision_msgs/msg/ObjectHypothesis']
    with_pose = types['vision_msgs/msg/ObjectHypothesisWithPose']
    pose = types['geometry_msgs/msg/PoseWithCovariance']
    position, orientation = types['geometry_msgs/msg/Point'], types['geometry_msgs/msg/Quaternion']
    geometry_pose = types['geometry_msgs/msg/Pose']
    detection = types['vision_msgs/msg/Detection2D']
    items = []
    for item in detection_boxes(instances):
        result = with_pose(
            hypothesis=hypothesis(class_id=item.class_id, score=item.score),
            pose=pose(pose=geometry_pose(position=position(x=0.0, y=0.0, z=0.0),
                                         orientation=orientation(x=0.0, y=0.0, z=0.0, w=1.0)),
                      covariance=np.zeros(36, np.float64)))
        (center_x, center_y), (size_x, size_y) = item.center, item.size
        bbox = box(center=pose2d(position=point(x=center_x, y=center_y), theta=0.0),
                   size_x=float(size_x), size_y=float(size_y))
        items.append(detection(header=header, results=[result], bbox=bbox,
                               id=item.instance_id))
    return types[DETECTION_2D_ARRAY](header=header, detections=items)


def point_cloud(cloud: np.ndarray, header) -> object:
    """
    Return a ``sensor_msgs/PointCloud2`` of a structured array, as the node's ``~/points``.

    :param cloud: 1-D (unorganised, dense) or (h, w) (organized, NaN where no point) records of
        little-endian float32 / uint16 fields (:func:`seg_ros.core.geometry.points.cloud_dtype`).
    """
    types = typestore().types
    field = types['sensor_msgs/msg/PointField']
    fields = [field(name=name, offset=offset, datatype=_POINT_FIELD_TYPES[kind.str], count=1)
              for name, (kind, offset) in cloud.dtype.fields.items()]
    height, width = cloud.shape if cloud.ndim == 2 else (1, len(cloud))
    data = np.ascontiguousarray(cloud).view(np.uint8).reshape(-1)
    return types[POINT_CLOUD2](header=header, height=height, width=width, fields=fields,
                               is_bigendian=False, point_step=cloud.dtype.itemsize,
                               row_step=cloud.dtype.itemsize * width, data=data,
                               is_dense=cloud.ndim != 2)


def objects(found: Objects3D, header) -> object:
    """Return 3-D objects as the node's ``~/objects`` (see ``seg_ros.ros.messages.objects``)."""
    types = typestore().types
    point, quaternion = types['geometry_msgs/msg/Point'], types['geometry_msgs/msg/Quaternion']
    pose, vector = types['geometry_msgs/msg/Pose'], types['geometry_msgs/msg/Vector3']
    hypothesis = types['vision_msgs/msg/ObjectHypothesis']
    with_pose = types['vision_msgs/msg/ObjectHypothesisWithPose']
    covariance_pose = types['geometry_msgs/msg/PoseWithCovariance']
    box, detection = types['vision_msgs/msg/BoundingBox3D'], types['vision_msgs/msg/Detection3D']
    items = []
    for item in object_boxes(found):
        center = pose(position=point(*item.center), orientation=quaternion(0.0, 0.0, 0.0, 1.0))
        result = with_pose(hypothesis=hypothesis(class_id=item.class_id, score=item.score),
                           pose=covariance_pose(pose=center,
                                                covariance=np.zeros(36, np.float64)))
        items.append(detection(header=header, results=[result],
                               bbox=box(center=center, size=vector(*item.size)),
                               id=item.instance_id))
    return types[DETECTION_3D_ARRAY](header=header, detections=items)
