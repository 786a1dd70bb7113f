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

A record that LZ4 halves at least (class maps, colour masks, confidence: 4-30x) is kept as an
LZ4 block (:func:`pack`; ``lz4`` comes with rosbags), the others (an overlay of a photo: 1.4x)
as they are: writing a file costs a CPU about 3 s a GB here, more than LZ4 takes to pack those.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
import json
import mmap
import os
from pathlib import Path
import shutil
import struct

import lz4.block
import numpy as np

MAGIC = b'SEGROSF2'
PLAN = 'plan.json'
_LENGTH = struct.Struct('<Q')
_TEMPORARY = '.tmp'
PACK_FROM = 1 << 16  # records this long or longer are tried with LZ4
_SAMPLE = 1 << 15  # the bytes from the middle of a record that decide whether it is packed


@dataclass(frozen=True)
class Record:
    """One output message: topic, type, latched (the label topics), bag time, bytes."""

    topic: str
    msgtype: str
    latched: bool
    timestamp: int
    offset: int
    size: int  # bytes in the chunk
    raw_size: int = 0  # the message's bytes where it is kept as an LZ4 block, else 0

    def payload(self, data: memoryview) -> memoryview | bytes:
        """Return the message's CDR bytes from the chunk's ``data``."""
        stored = data[self.offset:self.offset + self.size]
        return lz4.block.decompress(stored, uncompressed_size=self.raw_size) if self.raw_size \
            else stored


@dataclass(frozen=True)
class FrameOutputs:
    """What a worker made of one frame: its output messages, or why it could not be used."""

    topic: str
    index: int
    timestamp: int
    failure: str
    records: tuple[Record, ...]


def pack(data: bytes) -> tuple[bytes, int]:
    """
    Return a message's bytes as a chunk keeps them, and its raw size where they are packed.

    A record is packed where a sample from its middle halves at least (a photo's pixels are
    not tried whole).
    """
    if len(data) < PACK_FROM:
        return data, 0
    middle = len(data) // 2
    sample = data[middle - _SAMPLE // 2:middle + _SAMPLE // 2]
    if 2 * len(lz4.block.compress(sample, store_size=False)) > len(sample):
        return data, 0
    packed = lz4.block.compress(data, store_size=False)
    return (packed, len(data)) if 2 * len(packed) <= len(data) else (data, 0)


def chunk_path(folder: Path, number: int) -> Path:
    """Return the file of chunk ``number``."""
    return folder / f'chunk-{number:06d}'


def write_chunk(path: Path, frames: list[FrameOutputs], pieces: list,
                tracks: dict[str, bytes] | None = None) -> None:
    """
    Write a chunk under a temporary name, then give it its name.

    :param pieces: the bytes the records point into, in pieces (bytes or arrays) one after
        the other, written as they are.
    :param tracks: each camera's tracks after the chunk, for the bag's next chunk.
    """
    views = [memoryview(np.ascontiguousarray(piece, np.uint8)) if isinstance(piece, np.ndarray)
             else memoryview(piece) for piece in pieces]
    header = json.dumps({'frames': [
        [frame.topic, frame.index, frame.timestamp, frame.failure,
         [[record.topic, record.msgtype, record.latched, record.timestamp, record.offset,
           record.size, record.raw_size] for record in frame.records]] for frame in frames],
        'size': sum(view.nbytes for view in views),
        'tracks': {topic: base64.b64encode(snapshot).decode()
                   for topic, snapshot in (tracks or {}).items()}}).encode()
    temporary = path.with_name(path.name + _TEMPORARY)
    try:
        with open(temporary, 'wb') as handle:
            handle.write(MAGIC + _LENGTH.pack(len(header)) + header)
            handle.writelines(views)
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
    """
    Return the frames of a chunk file and the bytes their records point into.

    The bytes are the file mapped into memory (read as the records are used, no copy of the
    chunk); the mapping ends with the last reference to them.
    """
    with open(path, 'rb') as handle:
        found = _header(handle)
        if found is None:
            raise ValueError(f'{path}: not a chunk file of seg-ros fleet')
        header, start = found
        size = os.fstat(handle.fileno()).st_size - start
        if size != header['size']:
            raise ValueError(f'{path}: {size} bytes of records, not {header["size"]}')
        data = memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))[start:] \
            if size else memoryview(b'')
    frames = [FrameOutputs(topic, index, timestamp, failure,
                           tuple(Record(*record) for record in records))
              for topic, index, timestamp, failure, records in header['frames']]
    return frames, data


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
