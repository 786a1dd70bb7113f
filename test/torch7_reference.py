"""
An independent reference for the Torch7 converter: a Torch7 ``nn`` network as PyTorch modules.

The node and ``seg-ros convert`` convert a Torch7 file to ONNX without torch
(:mod:`seg_ros.core.model.torch7_onnx`). This module reads the file with ``torchfile`` and
interprets its module tree into PyTorch modules of the same semantics, written apart from that
converter, so the tests can compare the two on the same file::

    load_torch7(net_path) -> (torch.nn.Module in eval mode, Counter of Torch7 module types)
    Torch7Builder().build(torchfile_module) -> torch.nn.Module

Supported (``nn.`` or ``cudnn.``): Sequential, ConcatTable, CAddTable, JoinTable, Identity,
SpatialConvolution(MM), SpatialDilatedConvolution, SpatialFullConvolution,
SpatialBatchNormalization, PReLU, ReLU, Sigmoid, Tanh, SpatialMaxPooling, SpatialMaxUnpooling,
SpatialDropout, Dropout, Padding (channel dimension).

Semantics kept from Torch7:

- SpatialDropout/Dropout in evaluation mode multiply by ``1 - p`` (the v1 behaviour; only
  modules saved with ``v2 = true`` pass the input through unchanged).
- SpatialMaxUnpooling puts its input back at the switches of the SpatialMaxPooling it refers
  to (``F.max_unpool2d`` with the pooling's indices).
- Padding(dim, pad, nInputDim, value, index) pads ``|pad|`` entries of ``value``: after the
  data for ``pad > 0``, before it for ``pad < 0`` (only the channel dimension).
- JoinTable and Padding dimensions are 1-based and shift by one for a batched input when the
  module records its non-batched rank (``nInputDims`` / ``nInputDim``).
- SpatialBatchNormalization keeps its own ``eps`` (1e-3 in ENet, not PyTorch's 1e-5).
- SpatialFullConvolution's ``adjW``/``adjH`` are the transposed convolution's output padding.
"""

from collections import Counter
from collections.abc import Sequence
import os

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F
import torchfile

# A batched NCHW tensor; Torch7 dimensions recorded for unbatched inputs shift by one.
BATCHED_RANK = 4

Tensors = torch.Tensor | list  # a Torch7 "table" is a list of tensors (possibly nested)


def field(module: torchfile.TorchObject, name: str, default: object = None) -> object:
    """Return the Torch7 module's field ``name`` (stored with bytes keys), or ``default``."""
    return module._obj.get(name.encode(), default)


def type_name(module: torchfile.TorchObject) -> str:
    """Return the class name without its package (``cudnn.SpatialConvolution`` -> ...)."""
    return module.torch_typename().decode().rsplit('.', 1)[-1]


def parameter(array: np.ndarray, shape: Sequence[int] | None = None) -> nn.Parameter:
    """Wrap a Torch7 tensor (any float dtype, possibly flattened) as a float32 parameter."""
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    return nn.Parameter(tensor.reshape(shape) if shape is not None else tensor,
                        requires_grad=False)


def batched_dim(dimension: int, recorded_rank: int | None) -> int:
    """Turn a 1-based Torch7 dimension into the 0-based dimension of a batched NCHW tensor."""
    if recorded_rank is not None and recorded_rank > 0 and recorded_rank != BATCHED_RANK:
        dimension += BATCHED_RANK - recorded_rank
    return dimension - 1


class Sequential(nn.Module):
    """Torch7 nn.Sequential: feed each module's output (tensor or table) to the next."""

    def __init__(self, children: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(children)

    def forward(self, x: Tensors) -> Tensors:
        for layer in self.layers:
            x = layer(x)
        return x


class ConcatTable(nn.Module):
    """Torch7 nn.ConcatTable: apply every branch to the same input, return the table."""

    def __init__(self, children: list[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(children)

    def forward(self, x: Tensors) -> list:
        return [branch(x) for branch in self.branches]


class CAddTable(nn.Module):
    """Torch7 nn.CAddTable: element-wise sum of a table."""

    def forward(self, table: list) -> torch.Tensor:
        total = table[0]
        for tensor in table[1:]:
            total = total + tensor
        return total


class JoinTable(nn.Module):
    """Torch7 nn.JoinTable: concatenate a table along one dimension."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, table: list) -> torch.Tensor:
        return torch.cat(table, dim=self.dim)


class Identity(nn.Module):
    """Torch7 nn.Identity (passes tables through too)."""

    def forward(self, x: Tensors) -> Tensors:
        return x


class Scale(nn.Module):
    """Multiply by a constant: Torch7 (v1) dropout at inference."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


class ChannelPadding(nn.Module):
    """Torch7 nn.Padding on the channel dimension, at its start or its end."""

    def __init__(self, before: int, after: int, value: float) -> None:
        super().__init__()
        self.before = before
        self.after = after
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (0, 0, 0, 0, self.before, self.after), value=self.value)


class MaxPool(nn.Module):
    """Torch7 SpatialMaxPooling; keeps its input for the SpatialMaxUnpooling that refers to it."""

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int], ceil_mode: bool) -> None:
        super().__init__()
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.switches: torch.Tensor | None = None
        self.size: tuple[int, int] = (0, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.size = tuple(x.shape[-2:])
        pooled, self.switches = F.max_pool2d(x, self.kernel, self.stride, self.padding,
                                             ceil_mode=self.ceil_mode, return_indices=True)
        return pooled


class MaxUnpool(nn.Module):
    """Torch7 SpatialMaxUnpooling: unpool to the switches of its (2x2, stride 2) MaxPool."""

    def __init__(self, pool: MaxPool) -> None:
        super().__init__()
        if (pool.kernel, pool.stride, pool.padding) != ((2, 2), (2, 2), (0, 0)):
            raise ValueError('SpatialMaxUnpooling needs a 2x2 stride-2 unpadded pooling, got '
                             f'kernel {pool.kernel} stride {pool.stride} pad {pool.padding}')
        # A plain attribute, not a submodule: the pool already sits in the tree.
        self.pools = [pool]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool = self.pools[0]
        if pool.switches is None:
            raise ValueError('SpatialMaxUnpooling ran before its SpatialMaxPooling')
        return F.max_unpool2d(x, pool.switches, 2, 2, output_size=pool.size)


class Torch7Builder:
    """Build PyTorch modules from a torchfile module tree; counts the Torch7 types met."""

    def __init__(self) -> None:
        self.layers: Counter[str] = Counter()
        # Torch7 object id -> MaxPool, so that unpooling finds the pooling it refers to.
        self.pools: dict[int, MaxPool] = {}

    def build(self, module: torchfile.TorchObject) -> nn.Module:
        """Return the PyTorch equivalent of one Torch7 module (recursively)."""
        name = type_name(module)
        self.layers[module.torch_typename().decode()] += 1
        builder = getattr(self, 'build_' + name, None)
        if builder is None:
            raise ValueError(f'Torch7 module {module.torch_typename().decode()} is not '
                             'supported by the converter')
        return builder(module)

    def children(self, module: torchfile.TorchObject) -> list[nn.Module]:
        return [self.build(child) for child in field(module, 'modules') or []]

    def build_Sequential(self, module: torchfile.TorchObject) -> nn.Module:
        return Sequential(self.children(module))

    def build_ConcatTable(self, module: torchfile.TorchObject) -> nn.Module:
        return ConcatTable(self.children(module))

    def build_CAddTable(self, module: torchfile.TorchObject) -> nn.Module:
        return CAddTable()

    def build_JoinTable(self, module: torchfile.TorchObject) -> nn.Module:
        return JoinTable(batched_dim(int(field(module, 'dimension')),
                                     field(module, 'nInputDims')))

    def build_Identity(self, module: torchfile.TorchObject) -> nn.Module:
        return Identity()

    def build_SpatialConvolution(self, module: torchfile.TorchObject) -> nn.Module:
        groups = int(field(module, 'groups', 1) or 1)
        in_channels = int(field(module, 'nInputPlane'))
        out_channels = int(field(module, 'nOutputPlane'))
        kernel = (int(field(module, 'kH')), int(field(module, 'kW')))
        dilation = (int(field(module, 'dilationH', 1)), int(field(module, 'dilationW', 1)))
        bias = field(module, 'bias')
        conv = nn.Conv2d(in_channels, out_channels, kernel,
                         stride=(int(field(module, 'dH')), int(field(module, 'dW'))),
                         padding=(int(field(module, 'padH', 0)), int(field(module, 'padW', 0))),
                         dilation=dilation, groups=groups, bias=bias is not None)
        # MM and cudnn variants may store the weight flattened to 2-D.
        conv.weight = parameter(field(module, 'weight'), conv.weight.shape)
        if bias is not None:
            conv.bias = parameter(bias)
        return conv

    build_SpatialConvolutionMM = build_SpatialConvolution
    build_SpatialDilatedConvolution = build_SpatialConvolution

    def build_SpatialFullConvolution(self, module: torchfile.TorchObject) -> nn.Module:
        bias = field(module, 'bias')
        conv = nn.ConvTranspose2d(
            int(field(module, 'nInputPlane')), int(field(module, 'nOutputPlane')),
            (int(field(module, 'kH')), int(field(module, 'kW'))),
            stride=(int(field(module, 'dH')), int(field(module, 'dW'))),
            padding=(int(field(module, 'padH', 0)), int(field(module, 'padW', 0))),
            output_padding=(int(field(module, 'adjH', 0)), int(field(module, 'adjW', 0))),
            bias=bias is not None)
        # Torch7 and PyTorch share the (in, out, kH, kW) layout of transposed weights.
        conv.weight = parameter(field(module, 'weight'), conv.weight.shape)
        if bias is not None:
            conv.bias = parameter(bias)
        return conv

    def build_SpatialBatchNormalization(self, module: torchfile.TorchObject) -> nn.Module:
        mean = field(module, 'running_mean')
        variance = field(module, 'running_var')
        if variance is None:
            # Torch7 before 2016 stored the inverse standard deviation instead.
            inverse_std = np.asarray(field(module, 'running_std'), dtype=np.float64)
            variance = 1.0 / inverse_std ** 2 - float(field(module, 'eps'))
        norm = nn.BatchNorm2d(len(mean), eps=float(field(module, 'eps')),
                              affine=field(module, 'weight') is not None)
        norm.running_mean.copy_(torch.from_numpy(np.asarray(mean, dtype=np.float32)))
        norm.running_var.copy_(torch.from_numpy(np.asarray(variance, dtype=np.float32)))
        if norm.affine:
            norm.weight = parameter(field(module, 'weight'))
            norm.bias = parameter(field(module, 'bias'))
        return norm

    def build_PReLU(self, module: torchfile.TorchObject) -> nn.Module:
        weight = np.asarray(field(module, 'weight')).reshape(-1)
        prelu = nn.PReLU(len(weight))
        prelu.weight = parameter(weight)
        return prelu

    def build_ReLU(self, module: torchfile.TorchObject) -> nn.Module:
        return nn.ReLU()

    def build_Sigmoid(self, module: torchfile.TorchObject) -> nn.Module:
        return nn.Sigmoid()

    def build_Tanh(self, module: torchfile.TorchObject) -> nn.Module:
        return nn.Tanh()

    def build_SpatialDropout(self, module: torchfile.TorchObject) -> nn.Module:
        if field(module, 'v2', False):
            return Identity()
        return Scale(1.0 - float(field(module, 'p')))

    build_Dropout = build_SpatialDropout

    def build_SpatialMaxPooling(self, module: torchfile.TorchObject) -> nn.Module:
        pool = MaxPool((int(field(module, 'kH')), int(field(module, 'kW'))),
                       (int(field(module, 'dH')), int(field(module, 'dW'))),
                       (int(field(module, 'padH', 0)), int(field(module, 'padW', 0))),
                       bool(field(module, 'ceil_mode', False)))
        self.pools[id(module)] = pool
        return pool

    def build_SpatialMaxUnpooling(self, module: torchfile.TorchObject) -> nn.Module:
        pool = self.pools.get(id(field(module, 'pooling')))
        if pool is None:
            raise ValueError('SpatialMaxUnpooling refers to a SpatialMaxPooling that does not '
                             'come before it in the network')
        return MaxUnpool(pool)

    def build_Padding(self, module: torchfile.TorchObject) -> nn.Module:
        dim = batched_dim(int(field(module, 'dim')), field(module, 'nInputDim'))
        if dim != 1:
            raise ValueError(f'Padding is supported on the channel dimension only, got '
                             f'dimension {dim} of NCHW')
        pad = int(field(module, 'pad'))
        index = int(field(module, 'index', 1))
        if index != 1:
            raise ValueError(f'Padding index must be 1 (pad at either end), got {index}')
        value = float(field(module, 'value', 0) or 0)
        return ChannelPadding(max(-pad, 0), max(pad, 0), value)


def load_torch7(net_path: str | os.PathLike) -> tuple[nn.Module, Counter]:
    """
    Read a Torch7 ``.net``/``.t7`` file into an equivalent PyTorch module (eval mode).

    :param net_path: the Torch7 serialized network.
    :return: the module and the count of Torch7 module types it holds.
    """
    root = torchfile.load(os.fspath(net_path))
    builder = Torch7Builder()
    network = builder.build(root).eval()
    return network, builder.layers
