"""
The output bag of ``seg-ros fleet``: the input copied, each frame's outputs from its chunk.

Messages are written in the order ``seg-ros bag`` writes them (each input message, then the
outputs of a frame to segment right after it; the label topics once a camera, with its first
usable frame), so the bag holds the same messages on the same connections.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
import threading
from typing import Callable, Iterator

from seg_ros.bag.reading import open_bag
from seg_ros.bag.segment_bag import cameras_of, OutputBag, selected_frames
from seg_ros.fleet.parts import chunk_path, FrameOutputs, read_chunk


class MergeError(Exception):
    """The chunks do not fit the bag (it changed since they were made)."""


class Stopped(Exception):
    """The run is being interrupted."""


@dataclass
class MergeResult:
    """What the output bag holds."""

    messages: int
    cameras: dict[str, tuple[str, int]]  # camera topic: (prefix, frames segmented)
    failures: list[str] = field(default_factory=list)
    stopped: str = ''


def chunk_outputs(folder: Path, chunk_ready: Callable[[int], bool]
                  ) -> Iterator[tuple[FrameOutputs, memoryview]]:
    """Yield every frame of chunks 0, 1, ... with the bytes of its records, each once ready."""
    number = 0
    while chunk_ready(number):
        frames, data = read_chunk(chunk_path(folder, number))
        for frame in frames:
            yield frame, data
        number += 1


def merge_bag(path: Path, output: Path, folder: Path, chunk_ready: Callable[[int], bool],
              args: argparse.Namespace, stop: threading.Event) -> MergeResult:
    """
    Write the output bag of ``path`` from its input and its chunk files; name it when complete.

    :param chunk_ready: waits until chunk N is in its file; False where there is no chunk N.
    :raises MergeError: a chunk does not match the bag's frames.
    :raises Stopped: ``stop`` was set, or by ``chunk_ready`` (the unfinished bag is removed).
    """
    source = open_bag(path)
    cameras = cameras_of(source, args)
    bag = OutputBag(output, args.storage)
    outputs = chunk_outputs(folder, chunk_ready)
    failures: list[str] = []
    try:
        for topic, timestamp, data, camera, index in selected_frames(source, cameras, args):
            if stop.is_set():
                raise Stopped()
            bag.pass_through(topic, timestamp, data)
            if camera is None:
                continue
            frame, frame_data = next(outputs, (None, None))
            if frame is None or (frame.topic, frame.index, frame.timestamp) != (
                    camera.topic, index, timestamp):
                raise MergeError(f'the chunks do not match {camera.topic} frame {index} (bag '
                                 f'time {timestamp} ns): the bag changed since they were made')
            for record in frame.records:
                if record.latched and camera.labels_written:
                    continue  # the label topics go once, with the camera's first usable frame
                bag.write_serialized(record.topic, record.msgtype, record.payload(frame_data),
                                     record.timestamp, record.latched)
            camera.labels_written |= any(record.latched for record in frame.records)
            if frame.failure:
                failures.append(f'{camera.topic} frame {index} (bag time {timestamp} ns): '
                                f'{frame.failure}')
            else:
                camera.segmented += 1
        if next(outputs, None) is not None:
            raise MergeError('the chunks hold more frames than the bag: it changed since they '
                             'were made')
        bag.finish(args.overwrite)
    except BaseException:
        bag.abandon()
        source.close()
        raise
    return MergeResult(bag.written, {topic: (camera.prefix, camera.segmented)
                                     for topic, camera in cameras.items()},
                       failures, source.stopped)
