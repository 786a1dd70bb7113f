"""
A writer of Torch7 binary object files (``torch.save`` format) and a small ENet-like network.

The writer follows ``torch.File:writeObject`` in binary mode: int32 type tags, float64
numbers, length-prefixed strings, reference indices for tables and torch objects (an object
written twice is written once and referred to after), ``'V 1'`` and the class name before a
torch object's contents. Tests use it to make networks that OpenCV DNN's own Torch importer and
seg_ros's converter both read.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np


class Module:
    """A Torch7 object of class ``class_name`` with a table of fields."""

    def __init__(self, class_name: str, **fields: Any) -> None:
        self.class_name = class_name
        self.fields = {'train': False, '_type': 'torch.FloatTensor', **fields}


class Torch7Writer:
    """Serialises Python values as Torch7 objects (little-endian, 8-byte longs)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.indices: dict[int, int] = {}
        self.keep: list[Any] = []  # keeps objects alive so that their ids stay unique

    def int32(self, value: int) -> None:
        self.chunks.append(struct.pack('<i', value))

    def string(self, text: str) -> None:
        data = text.encode()
        self.int32(len(data))
        self.chunks.append(data)

    def reference(self, value: Any) -> bool:
        """Write the reference index; return True when the object was written before."""
        known = id(value) in self.indices
        if not known:
            self.indices[id(value)] = len(self.indices) + 1
            self.keep.append(value)
        self.int32(self.indices[id(value)])
        return known

    def write(self, value: Any) -> None:
        """Write one object (None, bool, number, str, dict, list, ndarray or Module)."""
        if value is None:
            self.int32(0)
        elif isinstance(value, bool):
            self.int32(5)
            self.int32(int(value))
        elif isinstance(value, (int, float)):
            self.int32(1)
            self.chunks.append(struct.pack('<d', float(value)))
        elif isinstance(value, str):
            self.int32(2)
            self.string(value)
        elif isinstance(value, (dict, list)):
            self.int32(3)
            if self.reference(value):
                return
            items = value.items() if isinstance(value, dict) else enumerate(value, start=1)
            items = list(items)
            self.int32(len(items))
            for key, item in items:
                self.write(key)
                self.write(item)
        elif isinstance(value, np.ndarray):
            self.tensor(value)
        elif isinstance(value, Module):
            self.int32(4)
            if self.reference(value):
                return
            self.string('V 1')
            self.string(value.class_name)
            self.write(value.fields)
        else:
            raise TypeError(f'cannot write {type(value).__name__}')

    def tensor(self, array: np.ndarray) -> None:
        self.int32(4)
        if self.reference(array):
            return
        self.string('V 1')
        self.string('torch.FloatTensor')
        data = np.ascontiguousarray(array, dtype='<f4')
        self.int32(data.ndim if data.size else 0)
        if not data.size:
            self.chunks.append(struct.pack('<q', 1))
            self.int32(0)  # no storage
            return
        strides = [stride // data.itemsize for stride in data.strides]
        self.chunks.append(struct.pack(f'<{data.ndim}q', *data.shape))
        self.chunks.append(struct.pack(f'<{data.ndim}q', *strides))
        self.chunks.append(struct.pack('<q', 1))
        storage = data.reshape(-1)
        self.int32(4)
        self.reference(storage)
        self.string('V 1')
        self.string('torch.FloatStorage')
        self.chunks.append(struct.pack('<q', storage.size))
        self.chunks.append(storage.tobytes())

    def data(self) -> bytes:
        return b''.join(self.chunks)


def save_torch7(path: str, root: Any) -> None:
    """Write ``root`` as a Torch7 binary object file."""
    writer = Torch7Writer()
    writer.write(root)
    with open(path, 'wb') as stream:
        stream.write(writer.data())


# ---- nn modules -------------------------------------------------------------------------------
EMPTY = np.zeros(0, np.float32)


def container(class_name: str, *children: Module, **fields: Any) -> Module:
    return Module(class_name, modules=list(children), **fields)


def conv(rng: np.random.Generator, planes_in: int, planes_out: int, kernel: int, stride: int = 1,
         pad: int = 0, dilation: int = 0) -> Module:
    weight = rng.normal(0, (2.0 / (planes_in * kernel * kernel)) ** 0.5,
                        (planes_out, planes_in, kernel, kernel)).astype(np.float32)
    fields = {'nInputPlane': planes_in, 'nOutputPlane': planes_out, 'kW': kernel, 'kH': kernel,
              'dW': stride, 'dH': stride, 'padW': pad, 'padH': pad, 'weight': weight,
              'bias': rng.normal(0, 0.1, planes_out).astype(np.float32)}
    if dilation:
        return Module('nn.SpatialDilatedConvolution', dilationW=dilation, dilationH=dilation,
                      **fields)
    return Module('nn.SpatialConvolution', **fields)


def full_conv(rng: np.random.Generator, planes_in: int, planes_out: int, kernel: int,
              stride: int, pad: int, adj: int) -> Module:
    weight = rng.normal(0, (2.0 / (planes_in * kernel * kernel)) ** 0.5,
                        (planes_in, planes_out, kernel, kernel)).astype(np.float32)
    return Module('nn.SpatialFullConvolution', nInputPlane=planes_in, nOutputPlane=planes_out,
                  kW=kernel, kH=kernel, dW=stride, dH=stride, padW=pad, padH=pad, adjW=adj,
                  adjH=adj, weight=weight, bias=rng.normal(0, 0.1, planes_out).astype(np.float32))


def batch_norm(rng: np.random.Generator, planes: int) -> Module:
    return Module('nn.SpatialBatchNormalization', eps=1e-3, affine=True, momentum=0.1,
                  running_mean=rng.normal(0, 0.2, planes).astype(np.float32),
                  running_var=rng.uniform(0.5, 2.0, planes).astype(np.float32),
                  weight=rng.uniform(0.5, 1.5, planes).astype(np.float32),
                  bias=rng.normal(0, 0.2, planes).astype(np.float32))


def prelu(rng: np.random.Generator, planes: int) -> Module:
    return Module('nn.PReLU', nOutputPlane=planes,
                  weight=rng.uniform(0.05, 0.4, planes).astype(np.float32))


def max_pool() -> Module:
    return Module('nn.SpatialMaxPooling', kW=2, kH=2, dW=2, dH=2, padW=0, padH=0,
                  ceil_mode=False, indices=np.zeros(0, np.float32))


def max_unpool(pool: Module) -> Module:
    # OpenCV DNN pairs the two by their shared indices tensor, seg_ros by 'pooling'.
    return Module('nn.SpatialMaxUnpooling', pooling=pool, indices=pool.fields['indices'])


def small_enet(seed: int = 0, num_classes: int = 5, extra: Module | None = None) -> Module:
    """
    Return a small network with every module ENet's Cityscapes file holds, plus ReLU.

    Initial block (conv and max-pool joined), a downsampling bottleneck (dilated conv,
    SpatialDropout, max-pool and Padding on the main branch), an upsampling bottleneck
    (SpatialFullConvolution with adj, SpatialMaxUnpooling of the earlier pool), a negative
    Padding with a fill value, and a full convolution to ``num_classes`` score planes at input
    size (H and W multiples of 8). ``extra`` is appended before the last layer.
    """
    rng = np.random.default_rng(seed)
    pool = max_pool()
    down = container('nn.Sequential',
                     container('nn.ConcatTable',
                               container('nn.Sequential', conv(rng, 16, 8, 2, 2),
                                         batch_norm(rng, 8), prelu(rng, 8),
                                         conv(rng, 8, 8, 3, 1, 2, dilation=2),
                                         batch_norm(rng, 8), prelu(rng, 8),
                                         conv(rng, 8, 32, 1), batch_norm(rng, 32),
                                         Module('nn.SpatialDropout', p=0.1)),
                               container('nn.Sequential', pool,
                                         Module('nn.Padding', dim=1, pad=16, nInputDim=3,
                                                value=0, index=1))),
                     Module('nn.CAddTable', inplace=False), prelu(rng, 32))
    up = container('nn.Sequential',
                   container('nn.ConcatTable',
                             container('nn.Sequential', conv(rng, 32, 16, 1),
                                       batch_norm(rng, 16), prelu(rng, 16),
                                       full_conv(rng, 16, 16, 3, 2, 1, 1),
                                       batch_norm(rng, 16), prelu(rng, 16),
                                       conv(rng, 16, 16, 1), batch_norm(rng, 16)),
                             container('nn.Sequential', conv(rng, 32, 16, 1),
                                       batch_norm(rng, 16), max_unpool(pool))),
                   Module('nn.CAddTable', inplace=False), Module('nn.ReLU', inplace=False))
    layers = [container('nn.ConcatTable', conv(rng, 3, 13, 3, 2, 1), max_pool()),
              Module('nn.JoinTable', dimension=2), batch_norm(rng, 16), prelu(rng, 16),
              container('nn.Sequential', conv(rng, 16, 16, 3, 1, 1), batch_norm(rng, 16),
                        prelu(rng, 16)),
              down, up,
              Module('nn.Padding', dim=1, pad=-2, nInputDim=3, value=0.5, index=1)]
    if extra is not None:
        layers.append(extra)
    layers.append(full_conv(rng, 18, num_classes, 2, 2, 0, 0))
    return container('nn.Sequential', *layers)
