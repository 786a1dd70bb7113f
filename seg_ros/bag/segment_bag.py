"""
``seg-ros bag INPUT OUTPUT --image-topic T``: every frame of T segmented into a new bag.

OUTPUT holds every input message unchanged (same bytes, same bag time) and, for each selected
frame, the outputs the node publishes, under ``--prefix`` (default ``/<camera
namespace>/segmentation``): ``class_map``, ``color_mask``, ``overlay`` (each as
``<topic>/compressed`` with ``--transport``), ``confidence`` where the model has a confidence
map, ``mask/<class>``, ``instance_map`` and ``instances`` where the model gives instances (their
ids track ids, one tracker an image topic, as the node's), with ``--depth-topic`` ``points``
and ``objects`` (``seg_ros/bag/depth.py`` pairs the depth), each with the input frame's header
and the input message's bag time, and ``labels`` / ``label_info`` once, before the first output.

Frames go through the backend one by one and none is dropped: no backend of seg_ros takes a
batch (each opens its network at a static input shape of batch 1). The bag is written under a
temporary name beside OUTPUT and renamed only once complete.
"""

from __future__ import annotations

import argparse
from collections import deque
from dataclasses import dataclass, field
import os
from pathlib import Path
import shutil
import sys
from typing import Iterator

from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

from seg_ros.bag import messages
from seg_ros.bag.depth import BagDepth, FOUND, WAIT
from seg_ros.bag.reading import BagError, BagSource, open_bag, Topic
from seg_ros.core.geometry.depth import check_depth_range
from seg_ros.core.segmenter import Segmenter
from seg_ros.core.track.settings import TrackSettings
from seg_ros.frame_outputs import (assemble, frame_objects, frame_points, OutputSelection,
                                   segment)
from seg_ros.frame_tracks import FrameTracks
from seg_ros.offline.model_options import flag_text, make_segmenter, print_model
from seg_ros.offline.progress import Progress
from seg_ros.output_topics import class_mask_indices, CONFIDENCE, IMAGE_OUTPUTS, OBJECTS, POINTS
from seg_ros.ros import compressed
from seg_ros.ros.image_conversion import (image_to_array, ImageConversionError, NODE_ENCODINGS,
                                          to_bgr8, to_rgb8)

BAG_VERSION = 9  # rosbag2 metadata version of Jazzy
SHOWN_FAILURES = 10
_CODECS = {output.name: output.codec for output in IMAGE_OUTPUTS}
# A pass-through type rosbags cannot hash and the input gave no hash for (only an old bag of a
# custom type): the writer needs some RIHS01 value.
_UNKNOWN_HASH = 'RIHS01_' + '0' * 64


class BagCommandError(Exception):
    """A problem with the command's arguments or input found before any frame is segmented."""


def camera_prefix(image_topic: str) -> str:
    """
    Return the default output namespace of an image topic.

    :param image_topic: e.g. ``/camera/image_raw`` or ``/front/image_raw/compressed``.
    :return: e.g. ``/camera/segmentation`` or ``/front/segmentation``.
    """
    base = image_topic[:-len('/compressed')] if image_topic.endswith('/compressed') else \
        image_topic
    namespace = base.rstrip('/').rpartition('/')[0]
    return f'{namespace}/segmentation'


@dataclass
class Camera:
    """One segmented image topic: where its outputs go and what was done."""

    topic: str
    compressed: bool
    prefix: str
    tracks: FrameTracks = field(default_factory=lambda: FrameTracks(TrackSettings()))
    depth: BagDepth | None = None
    seen: int = 0
    segmented: int = 0
    labels_written: bool = False


class OutputBag:
    """The output bag under its temporary name, its connections made on first use."""

    def __init__(self, output: Path, storage: str) -> None:
        """Open the writer in ``.<name>.partial/<name>`` beside ``output``."""
        self.output = output
        self.partial = output.parent / f'.{output.name}.partial'
        if self.partial.exists():  # left by a run that was killed
            shutil.rmtree(self.partial)
        self.partial.mkdir(parents=True)
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self.writer = Writer(self.partial / output.name, version=BAG_VERSION,
                             storage_plugin=plugin)
        self.writer.open()
        self.connections: dict[tuple, object] = {}
        self.written = 0

    def pass_through(self, topic: Topic, timestamp: int, data: bytes) -> None:
        """Write an input message's bytes unchanged."""
        # Two recorded connections of one topic that rosbags' writer would take for one
        # (same type, format and QoS) share one output connection.
        key = ('input', topic.topic, topic.msgtype, topic.serialization_format,
               repr(topic.offered_qos_profiles))
        connection = self.connections.get(key)
        if connection is None:
            connection = self.connections[key] = self._input_connection(topic)
        self.writer.write(connection, timestamp, data)
        self.written += 1

    def _input_connection(self, topic: Topic):
        store = messages.typestore()
        known = topic.msgtype in store.types
        if topic.msgdef.data:
            definition = topic.msgdef.data
        elif known:
            definition = store.generate_msgdef(topic.msgtype, ros_version=2)[0]
        else:
            definition = ''
        digest = topic.digest or (store.hash_rihs01(topic.msgtype) if known else _UNKNOWN_HASH)
        return self.writer.add_connection(
            topic.topic, topic.msgtype, msgdef=definition, rihs01=digest,
            serialization_format=topic.serialization_format,
            offered_qos_profiles=list(topic.offered_qos_profiles))

    def write(self, topic: str, msgtype: str, message, timestamp: int,
              latched: bool = False) -> None:
        """Serialise and write one output message."""
        self.write_serialized(topic, msgtype, messages.serialize(message, msgtype), timestamp,
                              latched)

    def write_serialized(self, topic: str, msgtype: str, data, timestamp: int,
                         latched: bool = False) -> None:
        """Write one output message already serialised to CDR (``seg-ros fleet``'s parts)."""
        connection = self.connections.get(topic)
        if connection is None:
            connection = self.connections[topic] = self.writer.add_connection(
                topic, msgtype, typestore=messages.typestore(),
                offered_qos_profiles=list(messages.LATCHED_QOS if latched else
                                          messages.OUTPUT_QOS))
        self.writer.write(connection, timestamp, data)
        self.written += 1

    def finish(self, overwrite: bool) -> None:
        """Close the bag and give it its name (replacing an older OUTPUT with ``overwrite``)."""
        self.writer.close()
        if self.output.exists() and overwrite:
            if self.output.is_dir() and not self.output.is_symlink():
                shutil.rmtree(self.output)
            else:
                self.output.unlink()
        os.rename(self.partial / self.output.name, self.output)
        self.partial.rmdir()

    def abandon(self) -> None:
        """Drop the unfinished bag."""
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001 - it is being deleted anyway
            pass
        shutil.rmtree(self.partial, ignore_errors=True)


class FrameError(Exception):
    """One frame cannot be decoded or segmented; it is counted and skipped."""


class BagSegmenter:
    """Turns each selected frame into the node's output messages."""

    def __init__(self, segmenter: Segmenter, args: argparse.Namespace) -> None:
        """Keep the segmenter and what to make."""
        self.segmenter = segmenter
        self.args = args
        self.outputs = set(args.outputs)
        self.image_outputs = [name for name in _CODECS if name in self.outputs]
        self.masks = class_mask_indices(list(args.class_masks), segmenter.labels.names)
        # What the node makes for a subscriber of every output asked for (at input size).
        images = frozenset(self.image_outputs)
        self.selection = OutputSelection(
            raw=images if args.transport in ('raw', 'both') else frozenset(),
            compressed=images if args.transport in ('compressed', 'both') else frozenset(),
            masks=tuple(self.masks), instance_map='instance_map' in self.outputs,
            instances='instances' in self.outputs, class_map=True,
            confidence=CONFIDENCE in self.outputs and segmenter.makes_confidence)
        self.convert = to_rgb8 if args.color_encoding == 'rgb8' else to_bgr8
        self.three_d = {POINTS, OBJECTS} & self.outputs

    def frame(self, camera: Camera, msgtype: str, data: bytes):
        """Return the message and the frame in ``--color-encoding`` order."""
        try:
            msg = messages.deserialize(data, msgtype)
        except Exception as error:  # noqa: BLE001 - rosbags raises several types on bad CDR
            raise FrameError(f'cannot be deserialised as {msgtype}: {error}') from None
        try:
            if camera.compressed:
                pixels, encoding = compressed.decode(msg.data, msg.format)
            else:
                if msg.encoding not in NODE_ENCODINGS:
                    raise FrameError(f'encoding {msg.encoding!r} is not supported (accepted: '
                                     f'{", ".join(NODE_ENCODINGS)})')
                pixels, encoding = image_to_array(msg), msg.encoding
            return msg, self.convert(pixels, encoding)
        except ImageConversionError as error:
            raise FrameError(str(error)) from None

    def write_outputs(self, bag: OutputBag, camera: Camera, msg, image, timestamp: int,
                      depth_msg=None) -> None:
        """Segment one frame and write what the node would publish for it (with its depth)."""
        header = msg.header
        encoding = self.args.color_encoding
        if not camera.labels_written:
            labels = self.segmenter.labels
            bag.write(f'{camera.prefix}/labels', messages.STRING,
                      messages.string(labels.to_json()), timestamp, latched=True)
            bag.write(f'{camera.prefix}/label_info', messages.LABEL_INFO,
                      messages.label_info(labels.names, header), timestamp, latched=True)
            camera.labels_written = True
        selection = self.selection
        try:
            result = segment(self.segmenter, image, selection, model_resolution=False,
                             encoding=encoding, alpha=self.args.alpha)
        except ValueError as error:
            raise FrameError(f'cannot be segmented: {error}') from None
        result = camera.tracks.identify(result, header.stamp.sec + header.stamp.nanosec * 1e-9)
        outputs = assemble(result, selection, model_resolution=False, encoding=encoding)
        for name, (pixels, pixel_encoding) in outputs.images.items():
            topic = f'{camera.prefix}/{name}'
            if name in selection.raw:
                bag.write(topic, messages.IMAGE, messages.image(pixels, pixel_encoding, header),
                          timestamp)
            if name in selection.compressed:
                text, data = compressed.encode(pixels, pixel_encoding, _CODECS[name],
                                               jpeg_quality=self.args.jpeg_quality)
                bag.write(f'{topic}/compressed', messages.COMPRESSED_IMAGE,
                          messages.compressed_image(text, data, header), timestamp)
        if outputs.confidence is not None:
            bag.write(f'{camera.prefix}/{CONFIDENCE}', messages.IMAGE,
                      messages.image(outputs.confidence, 'mono8', header), timestamp)
        for class_id, mask in outputs.masks.items():
            bag.write(camera.prefix + self.masks[class_id][1:], messages.IMAGE,
                      messages.image(mask, 'mono8', header), timestamp)
        if outputs.instance_map is not None:
            bag.write(f'{camera.prefix}/instance_map', messages.IMAGE,
                      messages.image(outputs.instance_map, 'mono16', header), timestamp)
        if outputs.instances is not None:
            bag.write(f'{camera.prefix}/instances', messages.DETECTION_2D_ARRAY,
                      messages.detections(outputs.instances, header), timestamp)
        if depth_msg is not None and self.three_d:
            self.write_3d(bag, camera, result, depth_msg, header, timestamp)

    def write_3d(self, bag: OutputBag, camera: Camera, result, depth_msg, header,
                 timestamp: int) -> None:
        """Write the frame's points and objects from its depth (a fault is counted)."""
        depth = camera.depth.metres(depth_msg)
        if depth is None:
            return
        metres, intrinsics = depth
        args, labels = self.args, self.segmenter.labels
        try:
            if POINTS in self.three_d:
                cloud = frame_points(metres, intrinsics, result, labels.colors_rgb,
                                     stride=args.cloud_stride, organized=args.cloud_organized)
                bag.write(f'{camera.prefix}/{POINTS}', messages.POINT_CLOUD2,
                          messages.point_cloud(cloud, header), timestamp)
            if OBJECTS in self.three_d:
                found = frame_objects(metres, intrinsics, result, args.min_object_points)
                bag.write(f'{camera.prefix}/{OBJECTS}', messages.DETECTION_3D_ARRAY,
                          messages.objects(found, header), timestamp)
        except ValueError as error:  # depth of another camera (another aspect ratio)
            camera.depth.count(f'depth image rejected: {error}')


def make_bag_segmenter(args: argparse.Namespace) -> BagSegmenter:
    """
    Load the model of the command's options; return what turns frames into output messages.

    :raises ValueError: a model option is wrong (``ModelError`` names it).
    """
    args.confidence = CONFIDENCE in args.outputs  # a class-id model gets the graph's output
    return BagSegmenter(make_segmenter(args), args)


def cameras_of(source: BagSource, args: argparse.Namespace) -> dict[str, Camera]:
    """Check the image topics and prefixes against the bag; return the cameras by topic."""
    available = source.image_topics(messages.IMAGE_TYPES)
    listed = ', '.join(available) or 'none'
    by_name = {topic.topic: topic for topic in source.topics.values()}
    topics = list(dict.fromkeys(args.image_topic))
    for name in topics:
        topic = by_name.get(name)
        if topic is None:
            raise BagCommandError(f'{source.path}: no topic {name}; its image topics: {listed}')
        if topic.msgtype not in messages.IMAGE_TYPES:
            raise BagCommandError(f'{name} is {topic.msgtype}, not sensor_msgs/msg/Image or '
                                  f'CompressedImage; the image topics: {listed}')
    prefixes = [prefix.rstrip('/') for prefix in args.prefix]
    if prefixes and len(prefixes) != len(topics):
        raise BagCommandError(f'{len(prefixes)} --prefix for {len(topics)} --image-topic: give '
                              'one a topic, in the same order, or none')
    prefixes = prefixes or [camera_prefix(name) for name in topics]
    for prefix in prefixes:
        if not prefix.startswith('/') or '//' in prefix:
            raise BagCommandError(f'--prefix {prefix!r} is not an absolute topic namespace')
    if len(set(prefixes)) != len(prefixes):
        raise BagCommandError('two image topics would write under one prefix '
                              f'({", ".join(prefixes)}): give each a --prefix')
    taken = set(by_name)
    for prefix in prefixes:
        clash = sorted(name for name in taken if name.startswith(prefix + '/'))
        if clash:
            raise BagCommandError(f'the bag already has topics under {prefix}/ ({clash[0]}): '
                                  'give another --prefix')
    depths = depth_inputs(by_name, topics, args)
    tracks = TrackSettings.from_values(vars(args))
    return {name: Camera(name, by_name[name].msgtype == messages.COMPRESSED_IMAGE, prefix,
                         FrameTracks(tracks), depth)
            for name, prefix, depth in zip(topics, prefixes, depths)}


def depth_inputs(by_name: dict, topics: list[str], args) -> list[BagDepth | None]:
    """Check ``--depth-topic`` and ``--camera-info-topic`` against the bag; one a camera."""
    depth_topics = list(args.depth_topic)
    if not depth_topics:
        if args.camera_info_topic:
            raise BagCommandError('--camera-info-topic without --depth-topic')
        return [None] * len(topics)
    if len(depth_topics) != len(topics):
        raise BagCommandError(f'{len(depth_topics)} --depth-topic for {len(topics)} '
                              '--image-topic: give one a topic, in the same order')
    info_topics = list(args.camera_info_topic) or [camera_info_beside(name) for name in topics]
    if len(info_topics) != len(depth_topics):
        raise BagCommandError(f'{len(info_topics)} --camera-info-topic for '
                              f'{len(depth_topics)} --depth-topic: give one a depth topic')
    try:
        depth_range = check_depth_range(args.depth_range)
    except ValueError as error:
        raise BagCommandError(f'--{error}'.replace('--depth_range=', '--depth-range ')) \
            from None
    for name, kind, flag in [*((topic, messages.IMAGE, '--depth-topic')
                               for topic in depth_topics),
                             *((topic, messages.CAMERA_INFO, '--camera-info-topic')
                               for topic in info_topics)]:
        topic = by_name.get(name)
        if topic is None or topic.msgtype != kind:
            found = 'no such topic' if topic is None else f'it is {topic.msgtype}'
            raise BagCommandError(f'{flag} {name}: {found}, not {kind}')
    return [BagDepth(depth, info, args.depth_max_skew, depth_range)
            for depth, info in zip(depth_topics, info_topics)]


def camera_info_beside(image_topic: str) -> str:
    """Return the camera_info topic beside an image topic: ``/a/image_raw``: ``/a/camera_info``."""
    base = image_topic[:-len('/compressed')] if image_topic.endswith('/compressed') else \
        image_topic
    return f'{base.rstrip("/").rpartition("/")[0]}/camera_info'


def expected_frames(source: BagSource, cameras: dict[str, Camera], args) -> int:
    """Return about how many frames will be segmented (0: not known)."""
    counts = [topic.count for topic in source.topics.values() if topic.topic in cameras]
    if not counts or any(count is None for count in counts):
        return 0
    share = 1.0
    if source.start_ns is not None and source.end_ns and source.end_ns > source.start_ns:
        duration = (source.end_ns - source.start_ns) / 1e9
        end = duration if args.end is None else min(args.end, duration)
        share = max(0.0, end - args.start) / duration if duration else 1.0
    return sum(-(-int(count * share) // args.every) for count in counts)


def check_paths(args: argparse.Namespace) -> Path:
    """Return OUTPUT as a path, refusing an existing one without ``--overwrite``."""
    output = Path(args.output)
    if os.path.lexists(output) and not args.overwrite:
        raise BagCommandError(f'{output} exists; pass --overwrite to replace it')
    if output.resolve() == Path(args.input).resolve():
        raise BagCommandError(f'OUTPUT {output} is the input bag')
    if args.end is not None and args.end <= args.start:
        raise BagCommandError(f'--end {args.end} is not after --start {args.start}')
    if not output.parent.resolve().is_dir():
        raise BagCommandError(f'{output.parent}: no such folder for OUTPUT')
    return output


def run_bag(args: argparse.Namespace) -> int:
    """Run ``seg-ros bag``; return the exit status."""
    try:
        output = check_paths(args)
        source = open_bag(args.input)
        cameras = cameras_of(source, args)
    except (BagCommandError, BagError) as error:
        print(f'seg-ros bag: {error}', file=sys.stderr)
        return 2
    if source.salvaged:
        print(f'seg-ros bag: warning: {source.path} is damaged ({source.salvaged}); reading it '
              'record by record up to where it breaks', file=sys.stderr)
    try:
        frames = make_bag_segmenter(args)
    except ValueError as error:
        print(f'seg-ros bag: {error}', file=sys.stderr)
        return 2
    segmenter = frames.segmenter
    print_model(segmenter)
    if args.confidence and segmenter.confidence_reason:
        print(f'no {CONFIDENCE} topic: {flag_text(segmenter.confidence_reason)}')
    try:
        bag = OutputBag(output, args.storage)
    except (OSError, WriterError) as error:
        print(f'seg-ros bag: {output}: cannot be written: {error}', file=sys.stderr)
        return 2
    progress = Progress(expected_frames(source, cameras, args), args.quiet)
    failures: list[str] = []
    try:
        copy_and_segment(source, cameras, frames, bag, progress, failures)
        bag.finish(args.overwrite)
    except KeyboardInterrupt:
        bag.abandon()
        progress.finish()
        print(f'seg-ros bag: interrupted; {output} not written', file=sys.stderr)
        return 130
    except (OSError, WriterError) as error:
        bag.abandon()
        progress.finish()
        print(f'seg-ros bag: {output}: cannot be written: {error}', file=sys.stderr)
        return 1
    progress.finish()
    return report(source, cameras, bag, failures, output)


def copy_and_segment(source: BagSource, cameras: dict[str, Camera], frames: BagSegmenter,
                     bag: OutputBag, progress: Progress, failures: list[str]) -> None:
    """
    Copy every message; segment the selected frames.

    Messages go through a queue in bag order: a frame whose depth image is not read yet waits
    at its place (with every message after it), so the output bag stays in time order.
    """
    depths = {}
    for camera in cameras.values():
        if camera.depth is not None:
            depths[camera.depth.depth_topic] = (camera.depth, 'depth')
            depths[camera.depth.info_topic] = (camera.depth, 'info')
    queue: deque = deque()
    for topic, timestamp, data, camera, index in selected_frames(source, cameras, frames.args):
        queue.append((topic, timestamp, data, None))
        found = depths.get(topic.topic)
        if found is not None:
            add_depth_input(*found, topic, data)
        if camera is not None:
            queue.append((topic, timestamp, data, [camera, index, None]))
        drain(queue, frames, bag, progress, failures)
    drain(queue, frames, bag, progress, failures, ended=True)


def add_depth_input(depth: BagDepth, kind: str, topic: Topic, data: bytes) -> None:
    """Keep a depth image or camera_info of a camera (one that cannot be read is counted)."""
    try:
        msg = messages.deserialize(data, topic.msgtype)
    except Exception as error:  # noqa: BLE001 - rosbags raises several types on bad CDR
        depth.count(f'{topic.topic}: a message cannot be deserialised ({error})')
        return
    (depth.add_depth if kind == 'depth' else depth.add_info)(msg)


def drain(queue: deque, frames: BagSegmenter, bag: OutputBag, progress: Progress,
          failures: list[str], ended: bool = False) -> None:
    """Write the queue's messages and segment its frames, up to a frame still awaiting depth."""
    while queue:
        topic, timestamp, data, frame = queue[0]
        if frame is None:
            bag.pass_through(topic, timestamp, data)
            queue.popleft()
            continue
        camera, index, decoded = frame
        try:
            if decoded is None:  # once, though the frame may wait for its depth
                decoded = frame[2] = frames.frame(camera, topic.msgtype, data)
            msg, image = decoded
            depth_msg = None
            if camera.depth is not None and frames.three_d:
                state, depth_msg = camera.depth.pairing(messages_stamp(msg), ended)
                if state == WAIT:
                    return
                if state != FOUND:
                    camera.depth.count(f'no depth image on {camera.depth.depth_topic} within '
                                       f'--depth-max-skew of the frame')
            queue.popleft()
            frames.write_outputs(bag, camera, msg, image, timestamp, depth_msg)
            camera.segmented += 1
        except FrameError as error:
            if queue and queue[0][3] is frame:
                queue.popleft()
            failures.append(f'{camera.topic} frame {index} (bag time {timestamp} ns): {error}')
        progress.tick()


def messages_stamp(msg) -> int:
    """Return a message's header stamp in nanoseconds."""
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def selected_frames(source: BagSource, cameras: dict[str, Camera], args: argparse.Namespace
                    ) -> Iterator[tuple[Topic, int, bytes, Camera | None, int]]:
    """
    Yield every input message as (topic, bag time, bytes, camera, frame index), in bag order.

    ``camera`` is the camera to segment the message for, or None: not an image topic, or a frame
    outside ``--start`` / ``--end`` or between two ``--every``; ``frame index`` counts the
    camera's frames inside the time window (``copy_and_segment`` and ``seg-ros fleet`` both
    number them so), -1 where ``camera`` is None.
    """
    first_ns = source.start_ns
    for topic, timestamp, data in source.messages():
        if first_ns is None:
            first_ns = timestamp
        camera = cameras.get(topic.topic)
        index = -1
        if camera is not None:
            offset_s = (timestamp - first_ns) / 1e9
            if offset_s < args.start or (args.end is not None and offset_s > args.end):
                camera = None
            else:
                index = camera.seen
                camera.seen += 1
                if index % args.every:
                    camera, index = None, -1
        yield topic, timestamp, data, camera, index


def report(source: BagSource, cameras: dict[str, Camera], bag: OutputBag, failures: list[str],
           output: Path) -> int:
    """Print what was written and what failed; return the exit status."""
    for camera in cameras.values():
        print(f'{camera.topic}: {camera.segmented} frames segmented into {camera.prefix}/')
        if camera.depth is not None and camera.depth.problems:
            print(f'{camera.topic}: frames without points and objects: ' + ', '.join(
                f'{count} ({problem})' for problem, count in camera.depth.problems.items()))
        if camera.tracks.failures:
            print(f'seg-ros bag: {camera.topic}: the tracker failed on {camera.tracks.failures} '
                  f'frames (they kept their own instance ids), last: '
                  f'{camera.tracks.last_failure}', file=sys.stderr)
    print(f'wrote {output} ({bag.written} messages)')
    status = 0
    if failures:
        status = 1
        print(f'seg-ros bag: {len(failures)} frames could not be used and were skipped '
              '(copied unchanged, no outputs):', file=sys.stderr)
        for failure in failures[:SHOWN_FAILURES]:
            print(f'  {failure}', file=sys.stderr)
        if len(failures) > SHOWN_FAILURES:
            print(f'  ... and {len(failures) - SHOWN_FAILURES} more', file=sys.stderr)
    if source.stopped:
        status = 1
        print(f'seg-ros bag: {source.stopped}; {output} holds what was read before it',
              file=sys.stderr)
    return status
