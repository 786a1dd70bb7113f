"""
A reader of Torch7 (Lua torch) binary serialised objects, in NumPy: enough for ``nn`` networks.

API::

    read_torch7(path) -> object
        # the root object: Torch7Object for a torch class, ndarray for a tensor, dict for a
        # table, float / str / bool / None for Lua values

The format (``torch.File:writeObject`` in binary mode, little-endian, 8-byte longs): every
object starts with an int32 type tag. Numbers are float64; strings an int32 length and bytes;
booleans an int32; tables and torch objects an int32 reference index (an index seen before is
the same object again, which is how ``SpatialMaxUnpooling`` refers to its pooling), then for a
table an int32 pair count and the key/value pairs, and for a torch object a version string
``'V <n>'``, its class name and its contents: a tensor's rank, int64 sizes and strides, 1-based
storage offset and storage object; a storage's int64 element count and raw elements; any other
class (the ``nn`` modules) one table of fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
import struct
from typing import Any

import numpy as np

TYPE_NIL = 0
TYPE_NUMBER = 1
TYPE_STRING = 2
TYPE_TABLE = 3
TYPE_TORCH = 4
TYPE_BOOLEAN = 5
TYPE_FUNCTION = 6
TYPE_RECUR_FUNCTION = 8
LEGACY_TYPE_RECUR_FUNCTION = 7

# Storage element types by class-name prefix (torch.<Prefix>Storage / torch.<Prefix>Tensor).
ELEMENT_TYPES = {
    'Double': np.dtype('<f8'), 'Float': np.dtype('<f4'), 'Half': np.dtype('<f2'),
    'Long': np.dtype('<i8'), 'Int': np.dtype('<i4'), 'Short': np.dtype('<i2'),
    'Char': np.dtype('i1'), 'Byte': np.dtype('u1'), 'Cuda': np.dtype('<f4'),
    'CudaDouble': np.dtype('<f8'), 'CudaHalf': np.dtype('<f2'), 'CudaLong': np.dtype('<i8'),
    'CudaInt': np.dtype('<i4'), 'CudaShort': np.dtype('<i2'), 'CudaChar': np.dtype('i1'),
    'CudaByte': np.dtype('u1'),
}


class Torch7FormatError(ValueError):
    """The file is not a Torch7 binary object file this reader understands."""


@dataclass(eq=False)
class Torch7Object:
    """An instance of a Torch7 class other than a tensor or storage (e.g. ``nn.Sequential``)."""

    class_name: str
    fields: dict[Any, Any] = field(default_factory=dict)

    @property
    def type_name(self) -> str:
        """Return the class name without its package (``cudnn.SpatialConvolution`` -> ...)."""
        return self.class_name.rsplit('.', 1)[-1]

    def get(self, name: str, default: Any = None) -> Any:
        """Return the field ``name``, or ``default`` when it is absent or nil."""
        value = self.fields.get(name)
        return default if value is None else value


class _Reader:
    """Decodes one file's bytes; the reference table spans the whole file."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.position = 0
        self.objects: dict[int, Any] = {}

    def take(self, count: int) -> memoryview:
        end = self.position + count
        if count < 0 or end > len(self.data):
            raise Torch7FormatError(f'truncated at byte {self.position} (needs {count} more)')
        chunk = self.data[self.position:end]
        self.position = end
        return chunk

    def int32(self) -> int:
        return struct.unpack('<i', self.take(4))[0]

    def int64s(self, count: int) -> tuple[int, ...]:
        return struct.unpack(f'<{count}q', self.take(8 * count))

    def string(self) -> str:
        size = self.int32()
        return bytes(self.take(size)).decode('utf-8', errors='replace')

    def read(self) -> Any:
        """Read the next object."""
        tag = self.int32()
        if tag == TYPE_NIL:
            return None
        if tag == TYPE_NUMBER:
            value = struct.unpack('<d', self.take(8))[0]
            return int(value) if value.is_integer() else value
        if tag == TYPE_STRING:
            return self.string()
        if tag == TYPE_BOOLEAN:
            return self.int32() == 1
        if tag in (TYPE_TABLE, TYPE_TORCH):
            index = self.int32()
            if index in self.objects:
                return self.objects[index]
            return self.read_table(index) if tag == TYPE_TABLE else self.read_torch(index)
        if tag in (TYPE_FUNCTION, TYPE_RECUR_FUNCTION, LEGACY_TYPE_RECUR_FUNCTION):
            raise Torch7FormatError('the file holds a serialised Lua function (not supported)')
        raise Torch7FormatError(f'unknown object type tag {tag} at byte {self.position - 4}')

    def read_table(self, index: int) -> dict:
        table: dict[Any, Any] = {}
        self.objects[index] = table
        for _ in range(self.int32()):
            key = self.read()
            table[key] = self.read()
        return table

    def read_torch(self, index: int) -> Any:
        version = self.string()
        class_name = self.string() if version.startswith('V ') else version
        element = class_name.removeprefix('torch.')
        if element.endswith('Storage') and element[:-len('Storage')] in ELEMENT_TYPES:
            dtype = ELEMENT_TYPES[element[:-len('Storage')]]
            count = self.int64s(1)[0]
            storage = np.frombuffer(self.take(count * dtype.itemsize), dtype=dtype)
            self.objects[index] = storage
            return storage
        if element.endswith('Tensor') and element[:-len('Tensor')] in ELEMENT_TYPES:
            return self.read_tensor(index, ELEMENT_TYPES[element[:-len('Tensor')]])
        instance = Torch7Object(class_name)
        self.objects[index] = instance
        fields = self.read()
        if isinstance(fields, dict):
            instance.fields = fields
        return instance

    def read_tensor(self, index: int, dtype: np.dtype) -> np.ndarray:
        rank = self.int32()
        sizes = self.int64s(rank)
        strides = self.int64s(rank)
        offset = self.int64s(1)[0] - 1
        storage = self.read()
        if rank == 0 or storage is None or 0 in sizes:
            tensor = np.zeros([0], dtype)
        else:
            if not isinstance(storage, np.ndarray):
                raise Torch7FormatError('a tensor refers to a storage that is not one')
            last = offset + sum((size - 1) * stride for size, stride in zip(sizes, strides))
            if offset < 0 or last >= len(storage):
                raise Torch7FormatError(f'a tensor of size {list(sizes)} overruns its storage '
                                        f'of {len(storage)} elements')
            tensor = np.lib.stride_tricks.as_strided(
                storage[offset:], shape=sizes,
                strides=[stride * storage.itemsize for stride in strides]).copy()
        self.objects[index] = tensor
        return tensor


def read_torch7(path: str | os.PathLike) -> Any:
    """
    Read the object a Torch7 ``torch.save`` (binary) file holds.

    :param path: the ``.net`` / ``.t7`` file.
    :return: the root object (a :class:`Torch7Object` for a network).
    :raises Torch7FormatError: the bytes are not a Torch7 binary object file.
    :raises OSError: the file cannot be read.
    """
    with open(path, 'rb') as stream:
        data = stream.read()
    return _Reader(data).read()
