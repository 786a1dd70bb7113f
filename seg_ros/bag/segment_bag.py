"""
``seg-ros bag INPUT OUTPUT --image-topic T``: every frame of T segmented into a new bag.

OUTPUT holds every input message unchanged (same bytes, same bag time) and, for each selected
frame, the outputs the node publishes, under ``--prefix`` (default ``/<camera
namespace>/segmentation``): ``class_map``, ``color_mask``, ``overlay`` (each as
``<topic>/compressed`` with ``--transport``), ``mask/<class>``, ``instance_map`` and
``instances`` where the model gives instances, each with the input frame's header and the input
message's bag time, and ``labels`` / ``label_info`` once, before the first output.

Frames go through the backend one by one and none is dropped: no backend of seg_ros takes a
batch (each opens its network at a static input shape of batch 1). The bag is written under a
temporary name beside OUTPUT and renamed only once complete.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
import os
from pathlib import Path
import shutil
import sys
import time
from typing import Iterator

from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

from seg_ros.bag import messages
from seg_ros.bag.reading import BagError, BagSource, open_bag, Topic
from seg_ros.core.segmenter import Segmenter
from seg_ros.frame_outputs import assemble, OutputSelection, segment
from seg_ros.offline.model_options import make_segmenter, print_model
from seg_ros.output_topics import class_mask_indices, IMAGE_OUTPUTS
from seg_ros.ros import compressed
from seg_ros.ros.image_conversion import (image_to_array, ImageConversionError, NODE_ENCODINGS,
                                          to_bgr8, to_rgb8)

BAG_VERSION = 9  # rosbag2 metadata version of Jazzy
SHOWN_FAILURES = 10
PLAIN_PROGRESS_PERIOD_S = 10.0
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
    seen: int = 0
    segmented: int = 0
    labels_written: bool = False


@dataclass
class Progress:
    """Frames/s and time left: a bar on a terminal, a line every few seconds in a log."""

    total: int
    quiet: bool
    terminal: bool = field(default_factory=lambda: sys.stderr.isatty())
    started: float = field(default_factory=time.monotonic)
    last_line: float = 0.0
    done: int = 0

    def tick(self) -> None:
        """Count one frame and show the progress."""
        self.done += 1
        now = time.monotonic()
        if self.quiet or (not self.terminal and now - self.last_line < PLAIN_PROGRESS_PERIOD_S):
            return
        self.last_line = now
        self.show(now)

    def show(self, now: float) -> None:
        """Print the counts, the rate and the time left."""
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        total = max(self.total, self.done)
        left = f', {(total - self.done) / rate:.0f} s left' if rate > 0 and self.total else ''
        counts = f'{self.done}/{total}' if self.total else f'{self.done}'
        if self.terminal:
            filled = int(30 * self.done / total) if self.total else 0
            bar = '#' * filled + '-' * (30 - filled)
            print(f'\r  [{bar}] {counts} frames, {rate:.1f} frames/s{left}   ', end='',
                  file=sys.stderr, flush=True)
        else:
            print(f'  {counts} frames, {rate:.1f} frames/s{left}', file=sys.stderr, flush=True)

    def finish(self) -> None:
        """Show the final counts (a log gets its last line too) and end the bar's line."""
        if self.quiet or not self.done:
            return
        self.show(time.monotonic())
        if self.terminal:
            print(file=sys.stderr)


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
            instances='instances' in self.outputs, class_map=True)
        self.convert = to_rgb8 if args.color_encoding == 'rgb8' else to_bgr8

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

    def write_outputs(self, bag: OutputBag, camera: Camera, msg, image, timestamp: int) -> None:
        """Segment one frame and write what the node would publish for it."""
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
        for class_id, mask in outputs.masks.items():
            bag.write(camera.prefix + self.masks[class_id][1:], messages.IMAGE,
                      messages.image(mask, 'mono8', header), timestamp)
        if outputs.instance_map is not None:
            bag.write(f'{camera.prefix}/instance_map', messages.IMAGE,
                      messages.image(outputs.instance_map, 'mono16', header), timestamp)
        if outputs.instances is not None:
            bag.write(f'{camera.prefix}/instances', messages.DETECTION_2D_ARRAY,
                      messages.detections(outputs.instances, header), timestamp)


def make_bag_segmenter(args: argparse.Namespace) -> BagSegmenter:
    """
    Load the model of the command's options; return what turns frames into output messages.

    :raises ValueError: a model option is wrong (``ModelError`` names it).
    """
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
    return {name: Camera(name, by_name[name].msgtype == messages.COMPRESSED_IMAGE, prefix)
            for name, prefix in zip(topics, prefixes)}


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
        segmenter = make_segmenter(args)
        frames = BagSegmenter(segmenter, args)
    except ValueError as error:
        print(f'seg-ros bag: {error}', file=sys.stderr)
        return 2
    print_model(segmenter)
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
    """Copy every message; segment the selected frames."""
    for topic, timestamp, data, camera, index in selected_frames(source, cameras, frames.args):
        bag.pass_through(topic, timestamp, data)
        if camera is None:
            continue
        try:
            msg, image = frames.frame(camera, topic.msgtype, data)
            frames.write_outputs(bag, camera, msg, image, timestamp)
            camera.segmented += 1
        except FrameError as error:
            failures.append(f'{camera.topic} frame {index} (bag time {timestamp} ns): {error}')
        progress.tick()


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
