"""
The worker of ``seg-ros fleet``: a Ray actor that loads the model once and segments chunks.

:class:`FrameWorker` is a plain class (this module imports no Ray); ``seg_ros.fleet.run`` makes
it an actor. Its runtime threads are set before the model loads, so that workers x threads =
the CPUs Ray gave them: ``SEG_ROS_THREADS`` (ONNX Runtime's intra-op threads, OpenVINO's
``INFERENCE_NUM_THREADS``), OpenCV's thread pool and ``OMP_NUM_THREADS``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import time

import cv2
import numpy as np

from seg_ros.bag import messages
from seg_ros.bag.segment_bag import Camera, FrameError, make_bag_segmenter
from seg_ros.core.backends.base import THREADS_VARIABLE
from seg_ros.core.track.settings import TrackSettings
from seg_ros.fleet.parts import FrameOutputs, pack, Record, write_chunk
from seg_ros.frame_tracks import FrameTracks

#: A chunk's frame as a worker gets it: camera topic, message type, frame index, bag time.
ChunkFrame = tuple[str, str, int, int]


class Recorder:
    """In place of a bag for ``BagSegmenter.write_outputs``: keeps its messages as chunks do."""

    def __init__(self) -> None:
        """Start with no message."""
        self.pieces: list = []
        self.size = 0
        self.records: list[Record] = []

    def write(self, topic: str, msgtype: str, message, timestamp: int,
              latched: bool = False) -> None:
        """Serialise one output message and keep it (packed where that pays, :func:`pack`)."""
        data, raw_size = pack(messages.serialize(message, msgtype))
        self.records.append(Record(topic, msgtype, latched, timestamp, self.size, len(data),
                                   raw_size))
        self.pieces.append(data)
        self.size += len(data)

    def take(self) -> tuple[Record, ...]:
        """Return the records since the last call."""
        records, self.records = tuple(self.records), []
        return records

    def data(self) -> np.ndarray:
        """Return every message's bytes, one after the other, as one array (for Ray)."""
        return np.frombuffer(b''.join(self.pieces), np.uint8)


class FrameWorker:
    """Loads the model once; turns chunks of frames into their output messages."""

    def __init__(self, args: argparse.Namespace, threads: int) -> None:
        """Set the runtime threads, then load the model (an error is kept for :meth:`ready`)."""
        os.environ[THREADS_VARIABLE] = str(threads)
        os.environ['OMP_NUM_THREADS'] = str(threads)
        cv2.setNumThreads(threads)
        self.frames = None
        self.error = ''
        try:
            self.frames = make_bag_segmenter(args)
        except ValueError as error:  # a model option; ModelError names it
            self.error = str(error)

    def ready(self) -> tuple[str, str]:
        """Return what runs (model and backend) and the model's error ('' where it loaded)."""
        if self.frames is None:
            return '', self.error
        segmenter = self.frames.segmenter
        return f'{segmenter.config.model_path} ({segmenter.backend.describe()})', ''

    def segment(self, cameras: dict[str, tuple[bool, str]], frames: list[ChunkFrame],
                data: list[np.ndarray], chunk_file: str = '', driver_node: str = '',
                tracks: dict[str, bytes] | None = None
                ) -> tuple[int, list[FrameOutputs] | None, np.ndarray | None, float,
                           dict[str, bytes]]:
        """
        Segment a chunk's frames as ``seg-ros bag`` does.

        :param cameras: camera topic: (compressed, output prefix).
        :param frames: the chunk's frames, in bag order.
        :param data: each frame's CDR bytes.
        :param chunk_file: where the run keeps the chunk; written here where this worker runs
            on ``driver_node`` (same file system), else the outputs go back to the driver.
        :param tracks: each camera's tracks where the bag's previous chunk left them
            (:meth:`FrameTracks.snapshot`); none for a bag's first chunk.
        :return: the frames, each frame's outputs (the label topics with a camera's first
            usable frame of the chunk: the run keeps those of the bag's first) and their bytes
            (both None where the chunk file was written here), the seconds it took, and each
            camera's tracks after the chunk (empty with tracking off).
        """
        if self.frames is None:
            raise RuntimeError(f'the model did not load: {self.error}')
        started = time.perf_counter()
        settings = TrackSettings.from_values(vars(self.frames.args))
        chunk_cameras = {topic: Camera(topic, compressed, prefix, FrameTracks(settings))
                         for topic, (compressed, prefix) in cameras.items()}
        for topic, snapshot in (tracks or {}).items():
            chunk_cameras[topic].tracks.restore(snapshot)
        recorder = Recorder()
        outputs = []
        for (topic, msgtype, index, timestamp), frame_data in zip(frames, data):
            camera = chunk_cameras[topic]
            failure = ''
            try:
                msg, image = self.frames.frame(camera, msgtype, frame_data)
                self.frames.write_outputs(recorder, camera, msg, image, timestamp)
            except FrameError as error:
                failure = str(error)
            outputs.append(FrameOutputs(topic, index, timestamp, failure, recorder.take()))
        after = ({topic: camera.tracks.snapshot() for topic, camera in chunk_cameras.items()}
                 if settings.tracking else {})
        if chunk_file and driver_node and driver_node == node_id():
            write_chunk(Path(chunk_file), outputs, recorder.pieces, after)
            return len(outputs), None, None, time.perf_counter() - started, after
        return len(outputs), outputs, recorder.data(), time.perf_counter() - started, after


def node_id() -> str:
    """Return the Ray node this process runs on ('' outside Ray)."""
    try:
        import ray
        return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - no Ray here, or not connected
        return ''
