"""
Reading a rosbag2 bag, and what is left of one that was cut off.

:func:`open_bag` takes a bag folder (``metadata.yaml`` beside the storage files), a folder whose
recording stopped before ``metadata.yaml`` was written, or one ``.mcap`` / ``.db3`` file. An
intact bag is read with ``rosbags``; one ``rosbags`` refuses (no MCAP footer or summary, a
malformed SQLite file: a recorder killed mid-write, a copy cut short) is read record by record
up to where it breaks, and :attr:`BagSource.stopped` then says where that was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from io import BytesIO
import os
from pathlib import Path
import shutil
import sqlite3
import struct
import tempfile
from typing import Iterator

from rosbags.interfaces import MessageDefinition, MessageDefinitionFormat
from rosbags.rosbag2 import Reader, ReaderError

STORAGE_SUFFIXES = ('.mcap', '.db3')
_MCAP_MAGIC = b'\x89MCAP0\r\n'
_FORMATS = {'ros2msg': MessageDefinitionFormat.MSG, 'ros2idl': MessageDefinitionFormat.IDL,
            'omgidl': MessageDefinitionFormat.IDL}


class BagError(Exception):
    """The input cannot be read as a bag at all."""


@dataclass(frozen=True)
class Topic:
    """One connection of the input: what the output's copy of it needs."""

    id: int  # noqa: A003 - the connection id, as rosbags names it
    topic: str
    msgtype: str
    msgdef: MessageDefinition
    digest: str
    count: int | None  # None: not known (a bag read record by record)
    serialization_format: str = 'cdr'
    offered_qos_profiles: tuple = ()


@dataclass
class BagSource:
    """
    An opened input bag: its topics and, once, its messages.

    :ivar path: what was opened.
    :ivar storage: ``'mcap'`` or ``'sqlite3'``.
    :ivar topics: the connections, by id.
    :ivar start_ns: the first message's bag time, or None when unknown before reading.
    :ivar salvaged: why ``rosbags`` could not open it (it is then read record by record), or ''.
    :ivar stopped: after :meth:`messages`, where and why reading stopped early, or ''.
    """

    path: Path
    storage: str
    topics: dict[int, Topic]
    start_ns: int | None
    end_ns: int | None
    salvaged: str = ''
    stopped: str = ''
    _messages: object = field(default=None, repr=False)
    _close: object = field(default=None, repr=False)

    def messages(self) -> Iterator[tuple[Topic, int, bytes]]:
        """Yield (topic, bag timestamp ns, CDR bytes) up to the end or the first broken record."""
        read = 0
        last_ns = None
        try:
            for topic_id, timestamp, data in self._messages():
                topic = self.topics.get(topic_id)
                if topic is None:
                    continue
                read += 1
                last_ns = timestamp
                yield topic, timestamp, data
        except Exception as error:  # noqa: BLE001 - a damaged file fails in many ways
            where = (f'after message {read} (bag time {last_ns} ns)' if read else
                     'before the first message')
            self.stopped = f'{self.path}: reading stopped {where}: {error}'

    def close(self) -> None:
        """Release the files of a bag whose messages were not read to the end (idempotent)."""
        if self._close is not None:
            self._close()

    def image_topics(self, image_types: tuple[str, ...]) -> list[str]:
        """Return the topics of the given types, sorted."""
        return sorted({topic.topic for topic in self.topics.values()
                       if topic.msgtype in image_types})


def storage_file(path: Path) -> Path:
    """Return the one storage file of a folder without ``metadata.yaml``."""
    files = sorted(candidate for candidate in path.iterdir()
                   if candidate.suffix in STORAGE_SUFFIXES)
    if len(files) != 1:
        found = ', '.join(candidate.name for candidate in files) or 'none'
        raise BagError(f'{path}: not a rosbag2 bag (no metadata.yaml, and not exactly one .mcap '
                       f'or .db3 file in it: {found})')
    return files[0]


def open_bag(path: str | Path) -> BagSource:
    """
    Open a bag for reading.

    :raises BagError: no such path, or nothing of a bag in it.
    """
    path = Path(path)
    if not path.exists():
        raise BagError(f'{path}: no such bag (a folder with metadata.yaml, or a .mcap or .db3 '
                       'file)')
    if path.is_dir() and not (path / 'metadata.yaml').is_file():
        target = storage_file(path)
    elif path.is_file() and path.suffix not in STORAGE_SUFFIXES:
        raise BagError(f'{path}: not a rosbag2 bag (a folder with metadata.yaml, or a .mcap or '
                       '.db3 file)')
    else:
        target = path
    try:
        return _open_with_rosbags(target)
    except (ReaderError, FileNotFoundError, KeyError, ValueError) as error:
        reason = str(error) or type(error).__name__
    storage = _storage_of(target)
    files = sorted(target.glob('*' + ('.mcap' if storage == 'mcap' else '.db3'))) \
        if target.is_dir() else [target]
    if len(files) != 1:
        raise BagError(f'{path}: cannot be read: {reason}')
    if storage == 'mcap':
        return _salvage_mcap(files[0], reason)
    return _salvage_sqlite(files[0], reason)


def _storage_of(target: Path) -> str:
    if target.is_dir():
        return 'mcap' if any(target.glob('*.mcap')) else 'sqlite3'
    return 'mcap' if target.suffix == '.mcap' else 'sqlite3'


def _open_with_rosbags(target: Path) -> BagSource:
    reader = Reader(target)
    reader.open()
    topics = {connection.id: Topic(
        connection.id, connection.topic, connection.msgtype, connection.msgdef,
        connection.digest, connection.msgcount, connection.ext.serialization_format,
        tuple(connection.ext.offered_qos_profiles)) for connection in reader.connections}

    closed = []

    def close():
        if not closed:
            closed.append(True)
            reader.close()

    def messages():
        try:
            for connection, timestamp, data in reader.messages():
                yield connection.id, timestamp, data
        finally:
            close()

    start = reader.start_time if reader.message_count else None
    end = reader.end_time if reader.message_count else None
    return BagSource(target, _storage_of(target), topics, start, end, _messages=messages,
                     _close=close)


# ---- MCAP, record by record --------------------------------------------------------------------
def _decompress(compression: str, data: bytes) -> bytes:
    if compression == '':
        return data
    if compression == 'zstd':
        try:
            from compression import zstd  # Python 3.14
        except ImportError:
            from backports import zstd  # rosbags' dependency before 3.14
        return zstd.decompress(data)
    if compression == 'lz4':
        from lz4.frame import decompress
        return decompress(data)
    raise ValueError(f'chunk compression {compression!r} is not supported')


class _Records:
    """The records of an MCAP data section: (opcode, content), stopping at a cut-off record."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def __iter__(self):
        while True:
            start = self.stream.tell()
            head = self.stream.read(9)
            if not head:
                return
            if len(head) < 9:
                raise EOFError(f'the file ends inside a record header at byte {start}')
            opcode, length = struct.unpack('<BQ', head)
            content = self.stream.read(length)
            if len(content) < length:
                raise EOFError(f'the file ends inside a {length}-byte record at byte {start}')
            yield opcode, content


def _string(view: BytesIO) -> str:
    (length,) = struct.unpack('<I', view.read(4))
    return view.read(length).decode()


def _mcap_records(stream):
    """Yield the (opcode, content) of an MCAP data section, chunks opened, to the data end."""
    for opcode, content in _Records(stream):
        if opcode == 0x06:  # chunk: start, end, uncompressed size, crc, compression, records
            view = BytesIO(content)
            view.read(28)
            compression = _string(view)
            (size,) = struct.unpack('<Q', view.read(8))
            yield from _mcap_records(BytesIO(_decompress(compression, view.read(size))))
        elif opcode == 0x0F:  # data end: the summary follows
            return
        else:
            yield opcode, content


def _scan_mcap(path: Path, topics: dict[int, Topic], with_messages: bool):
    """Read schemas and channels into ``topics``; yield the messages when asked."""
    schemas: dict[int, tuple[str, str, str]] = {}
    with path.open('rb') as handle:
        handle.read(8)
        for opcode, content in _mcap_records(handle):
            view = BytesIO(content)
            if opcode == 0x03:
                (schema_id,) = struct.unpack('<H', view.read(2))
                name, encoding = _string(view), _string(view)
                schemas[schema_id] = (name, encoding, _string(view))
            elif opcode == 0x04:
                channel_id, schema_id = struct.unpack('<HH', view.read(4))
                topic, encoding = _string(view), _string(view)
                name, definition_format, definition = schemas.get(schema_id, ('', '', ''))
                topics.setdefault(channel_id, Topic(
                    channel_id, topic, name, MessageDefinition(
                        _FORMATS.get(definition_format, MessageDefinitionFormat.NONE),
                        definition), '', None, encoding))
            elif opcode == 0x05 and with_messages:
                channel_id, _, log_time, _ = struct.unpack('<HIQQ', view.read(22))
                yield channel_id, log_time, content[22:]


def _salvage_mcap(path: Path, reason: str) -> BagSource:
    """Read an MCAP file without its summary, in file order, up to where it is cut off."""
    with path.open('rb') as handle:
        if handle.read(8) != _MCAP_MAGIC:
            raise BagError(f'{path}: not an MCAP file ({reason})')
    topics: dict[int, Topic] = {}
    try:  # a first pass for the topics (the messages of a channel follow its record)
        for _ in _scan_mcap(path, topics, with_messages=False):
            pass
    except Exception:  # noqa: BLE001 - the second pass reports where the file breaks
        pass
    return BagSource(path, 'mcap', topics, None, None, salvaged=reason,
                     _messages=lambda: _scan_mcap(path, topics, with_messages=True))


# ---- SQLite, row by row ------------------------------------------------------------------------
_SQLITE_PAGE_COUNT_OFFSET = 28  # the database header's page count (big-endian uint32)


def _readable_copy(path: Path) -> Path:
    """
    Return a copy of a cut-off SQLite file whose header gives the pages really there.

    SQLite refuses a whole file whose header counts more pages than it holds ("database disk
    image is malformed"); with the count fixed it reads every row up to the first missing page.
    The input is never changed: the copy goes to the temporary folder.
    """
    handle, name = tempfile.mkstemp(suffix='.db3', prefix='seg_ros_bag_')
    os.close(handle)
    shutil.copyfile(path, name)
    with open(name, 'r+b') as copy:
        header = copy.read(100)
        if len(header) < 100 or not header.startswith(b'SQLite format 3\0'):
            os.unlink(name)
            raise BagError(f'{path}: not an SQLite file')
        (page_size,) = struct.unpack('>H', header[16:18])
        page_size = 65536 if page_size == 1 else page_size
        copy.seek(_SQLITE_PAGE_COUNT_OFFSET)
        copy.write(struct.pack('>I', os.path.getsize(name) // page_size))
    return Path(name)


def _salvage_sqlite(path: Path, reason: str) -> BagSource:
    """Read the rows a cut-off rosbag2 SQLite file still holds, in the order they were written."""
    copy = _readable_copy(path)
    try:
        database = sqlite3.connect(f'file:{copy}?mode=ro', uri=True)
        columns = {row[1] for row in database.execute('PRAGMA table_info(topics)')}
        digest = 'type_description_hash' if 'type_description_hash' in columns else "''"
        rows = database.execute(
            f'SELECT id, name, type, serialization_format, {digest} FROM topics').fetchall()
        definitions = {}
        if database.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                            "name = 'message_definitions'").fetchone()[0]:
            definitions = {name: (encoding, text) for name, encoding, text in database.execute(
                'SELECT topic_type, encoding, encoded_message_definition FROM '
                'message_definitions')}
    except sqlite3.DatabaseError as error:
        os.unlink(copy)
        raise BagError(f'{path}: cannot be read ({reason}; {error})') from None
    topics = {}
    for topic_id, name, msgtype, serialization, type_hash in rows:
        encoding, text = definitions.get(msgtype, ('', ''))
        topics[topic_id] = Topic(
            topic_id, name, msgtype,
            MessageDefinition(_FORMATS.get(encoding, MessageDefinitionFormat.NONE), text),
            type_hash or '', None, serialization)

    def close():
        database.close()
        copy.unlink(missing_ok=True)

    def messages():
        try:
            yield from database.execute('SELECT topic_id, timestamp, data FROM messages '
                                        'ORDER BY id')
        finally:
            close()

    return BagSource(path, 'sqlite3', topics, None, None, salvaged=reason, _messages=messages,
                     _close=close)
