"""
Bags for the tests of ``seg-ros bag`` and ``seg-ros fleet``: two cameras and a chatter topic.

Written and read with rosbags (a test module imports this after ``pytest.importorskip``).
"""

from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag2 import Reader, StoragePlugin, Writer

from models import class_weights
from seg_ros.bag import messages

CLASSES = ['road', 'car', 'person', 'sky']
COLORS = '128,64,128\n0,0,142\n220,20,60\n70,130,180\n'
MODEL_OPTIONS = ('--width', '64', '--height', '48', '--backend', 'opencv')
RAW, PACKED, CHATTER = '/left/image_raw', '/right/image_raw/compressed', '/chatter'
STORAGES = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}
STEP_NS = 100_000_000  # 10 frames a second
START_NS = 1_700_000_000 * 10**9


def header(index: int, frame_id: str):
    types = messages.typestore().types
    stamp = types['builtin_interfaces/msg/Time'](sec=1000 + index, nanosec=123 + index)
    return types['std_msgs/msg/Header'](stamp=stamp, frame_id=frame_id)


def jpeg(frame: np.ndarray) -> np.ndarray:
    ok, data = cv2.imencode('.jpg', frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.reshape(-1)


def write_bag(path: Path, storage: str, frames: list[np.ndarray], *,
              raw_data: dict[int, bytes] | None = None,
              packed_data: dict[int, bytes] | None = None) -> None:
    """
    Write a bag of two cameras and a chatter topic, ``STEP_NS`` apart.

    The left camera is raw (bgr8, every third frame rgb8), the right one JPEG; ``raw_data`` and
    ``packed_data`` replace a frame's CDR bytes (broken frames).
    """
    store = messages.typestore()
    with Writer(path, version=9, storage_plugin=STORAGES[storage]) as writer:
        left = writer.add_connection(RAW, messages.IMAGE, typestore=store)
        right = writer.add_connection(PACKED, messages.COMPRESSED_IMAGE, typestore=store)
        chatter = writer.add_connection(CHATTER, messages.STRING, typestore=store)
        for index, frame in enumerate(frames):
            timestamp = START_NS + index * STEP_NS
            encoding = 'rgb8' if index % 3 == 2 else 'bgr8'
            pixels = frame[..., ::-1] if encoding == 'rgb8' else frame
            data = (raw_data or {}).get(index) or messages.serialize(
                messages.image(pixels, encoding, header(index, 'left')), messages.IMAGE)
            writer.write(left, timestamp, data)
            data = (packed_data or {}).get(index) or messages.serialize(
                messages.compressed_image('bgr8; jpeg compressed bgr8', jpeg(frame),
                                          header(index, 'right')), messages.COMPRESSED_IMAGE)
            writer.write(right, timestamp + 1000, data)
            writer.write(chatter, timestamp + 2000,
                         messages.serialize(messages.string(f'note {index}'), messages.STRING))


def read_bag(path: Path) -> tuple[dict[str, str], list[tuple[str, int, bytes]]]:
    """Return the topics (name: type) and every message (topic, bag time, bytes) of a bag."""
    with Reader(path) as reader:
        topics = {connection.topic: connection.msgtype for connection in reader.connections}
        rows = [(connection.topic, timestamp, bytes(data))
                for connection, timestamp, data in reader.messages()]
    return topics, rows


def of_topic(rows, topic: str) -> list[tuple[int, object]]:
    """Return (bag time, message) of one topic, in bag order."""
    return [(timestamp, messages.deserialize(data, msgtype))
            for name, timestamp, data in rows
            for msgtype in [TOPIC_TYPES.get(name.rsplit('/', 1)[-1], messages.IMAGE)]
            if name == topic]


TOPIC_TYPES = {'compressed': messages.COMPRESSED_IMAGE, 'label_info': messages.LABEL_INFO,
               'labels': messages.STRING, 'instances': messages.DETECTION_2D_ARRAY,
               'points': messages.POINT_CLOUD2, 'objects': messages.DETECTION_3D_ARRAY}


def pixels_of(msg) -> np.ndarray:
    """Return the pixels of a rosbags Image, as BGR for a colour one."""
    dtype = np.uint16 if msg.encoding == 'mono16' else np.uint8
    channels = msg.step // msg.width // np.dtype(dtype).itemsize
    shape = (msg.height, msg.width) if channels == 1 else (msg.height, msg.width, channels)
    array = np.frombuffer(msg.data.tobytes(), dtype).reshape(shape)
    return array[..., ::-1] if msg.encoding == 'rgb8' else array


def street_frames(count: int, first_car_leaves: int = 0) -> list[np.ndarray]:
    """
    Return frames of road, two cars driving right, a person from frame 2 on.

    :param first_car_leaves: the frame from which the first car is gone (0: it stays).
    """
    prototypes = (class_weights(len(CLASSES))[0] / 2).astype(np.uint8)
    frames = []
    for index in range(count):
        classes = np.zeros((48, 64), np.uint8)                      # road
        if not first_car_leaves or index < first_car_leaves:
            classes[5:15, 4 + 3 * index:14 + 3 * index] = 1         # car
        classes[30:40, 20 + 2 * index:34 + 2 * index] = 1           # car
        if index >= 2:
            classes[20:26, 50:58] = 2                                # person
        frames.append(np.ascontiguousarray(prototypes[classes][:, :, ::-1]))
    return frames
