"""
The chunk files of ``seg-ros fleet``: a bag's segmented frames kept until its output is written.

A bag's frames to segment are cut into chunks of ``--chunk-frames``; a worker turns a chunk into
the output messages of each frame (CDR bytes, as the bag gets them), and the run writes them to
``OUTDIR/.<bag>.fleet/chunk-NNNNNN`` under a temporary name first, renamed when complete: a
chunk file under its final name is always whole, so an interrupted run is resumed from the
chunks it finished. ``plan.json`` beside them holds the input's files and the options; a run with
another input or other options starts the bag over. The folder goes once the bag is written.

File layout: ``MAGIC``, the header's length (uint64, little-endian), the header (JSON: every
frame's camera topic, index, bag time, failure and records; with tracking, each camera's tracks
after the chunk, pickled by :meth:`~seg_ros.frame_tracks.FrameTracks.snapshot`, for the next
chunk of a resumed run: the folder is the run's own), then the records' bytes.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
import json
import os
from pathlib import Path
import shutil
import struct

import numpy as np

MAGIC = b'SEGROSF1'
PLAN = 'plan.json'
_LENGTH = struct.Struct('<Q')
_TEMPORARY = '.tmp'


@dataclass(frozen=True)
class Record:
    """One output message: topic, type, latched (the label topics), bag time, bytes."""

    topic: str
    msgtype: str
    latched: bool
    timestamp: int
    offset: int
    size: int


@dataclass(frozen=True)
class FrameOutputs:
    """What a worker made of one frame: its output messages, or why it could not be used."""

    topic: str
    index: int
    timestamp: int
    failure: str
    records: tuple[Record, ...]


def chunk_path(folder: Path, number: int) -> Path:
    """Return the file of chunk ``number``."""
    return folder / f'chunk-{number:06d}'


def write_chunk(path: Path, frames: list[FrameOutputs], data: np.ndarray,
                tracks: dict[str, bytes] | None = None) -> None:
    """
    Write a chunk under a temporary name, then give it its name.

    :param tracks: each camera's tracks after the chunk, for the bag's next chunk.
    """
    header = json.dumps({'frames': [
        [frame.topic, frame.index, frame.timestamp, frame.failure,
         [[record.topic, record.msgtype, record.latched, record.timestamp, record.offset,
           record.size] for record in frame.records]] for frame in frames],
        'size': int(data.nbytes),
        'tracks': {topic: base64.b64encode(snapshot).decode()
                   for topic, snapshot in (tracks or {}).items()}}).encode()
    temporary = path.with_name(path.name + _TEMPORARY)
    try:
        with open(temporary, 'wb') as handle:
            handle.write(MAGIC + _LENGTH.pack(len(header)) + header)
            handle.write(memoryview(np.ascontiguousarray(data, np.uint8)))
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _header(handle) -> tuple[dict, int] | None:
    start = handle.read(len(MAGIC) + _LENGTH.size)
    if len(start) < len(MAGIC) + _LENGTH.size or not start.startswith(MAGIC):
        return None
    (length,) = _LENGTH.unpack(start[len(MAGIC):])
    try:
        header = json.loads(handle.read(length))
    except ValueError:
        return None
    return header, len(start) + length


def chunk_frames(path: Path) -> int | None:
    """Return the frames of a complete chunk file, or None where it is not one."""
    try:
        with open(path, 'rb') as handle:
            found = _header(handle)
    except OSError:
        return None
    if found is None:
        return None
    header, start = found
    if path.stat().st_size != start + header.get('size', -1):
        return None
    return len(header['frames'])


def chunk_tracks(path: Path) -> dict[str, bytes]:
    """Return each camera's tracks after a complete chunk file (empty with tracking off)."""
    with open(path, 'rb') as handle:
        found = _header(handle)
    if found is None:
        raise ValueError(f'{path}: not a chunk file of seg-ros fleet')
    return {topic: base64.b64decode(text) for topic, text in found[0].get('tracks', {}).items()}


def read_chunk(path: Path) -> tuple[list[FrameOutputs], memoryview]:
    """Return the frames of a chunk file and the bytes their records point into."""
    with open(path, 'rb') as handle:
        found = _header(handle)
        if found is None:
            raise ValueError(f'{path}: not a chunk file of seg-ros fleet')
        header, _ = found
        data = handle.read()
    if len(data) != header['size']:
        raise ValueError(f'{path}: {len(data)} bytes of records, not {header["size"]}')
    frames = [FrameOutputs(topic, index, timestamp, failure,
                           tuple(Record(*record) for record in records))
              for topic, index, timestamp, failure, records in header['frames']]
    return frames, memoryview(data)


def prepare(folder: Path, plan: dict) -> dict[int, int]:
    """
    Make the chunk folder of a bag for ``plan``; return its finished chunks (number: frames).

    Chunks of another plan (another input file, other options) are removed, as are the
    temporary files of an interrupted run.
    """
    plan_file = folder / PLAN
    try:
        kept_plan = json.loads(plan_file.read_text())
    except (OSError, ValueError):
        kept_plan = None
    if kept_plan != plan and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if kept_plan != plan:
        temporary = plan_file.with_name(PLAN + _TEMPORARY)
        temporary.write_text(json.dumps(plan, indent=1))
        os.replace(temporary, plan_file)
    finished = {}
    for path in folder.iterdir():
        if path.name.endswith(_TEMPORARY):
            path.unlink()
        elif path.name.startswith('chunk-'):
            frames = chunk_frames(path)
            if frames is None:
                path.unlink()
            else:
                finished[int(path.name.split('-')[1])] = frames
    return finished
