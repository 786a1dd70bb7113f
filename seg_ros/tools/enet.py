"""
ENet (Paszke et al. 2016, arXiv:1606.02147) in PyTorch, exportable to a clean ONNX graph.

API::

    from seg_ros.tools.enet import ENet
    model = ENet(num_classes=20)        # about 0.35 M parameters
    scores = model(images)              # float32 (N, 3, H, W), H and W multiples of 8
                                        # -> (N, num_classes, H, W) class scores (logits)

    from seg_ros.tools.export import export_onnx
    export_onnx(model, 'enet.onnx', width, height, *, fused: bool, swap_rb=True, scale=1/255,
                mean=(0, 0, 0), num_classes=..., metadata: dict[str, str] | None = None,
                dynamic: bool = True)
    # fused=False: float32 NCHW input -> (1, C, H, W) scores.
    # fused=True: uint8 (1, H, W, 3) BGR frame (as cv2 gives it) -> uint8 (1, H, W) class map;
    #   channel swap, scale, mean, network, argmax and cast run inside the graph.

Layout (the paper's Table 1): an initial block (3x3 stride-2 convolution with 13 filters
concatenated with a 2x2 max-pool), stage 1 (a downsampling bottleneck to 64 channels and 4
regular ones), stages 2 and 3 (128 channels: regular, dilated 2, asymmetric 5, dilated 4,
regular, dilated 8, asymmetric 5, dilated 16; stage 2 starts with a downsampling bottleneck),
stages 4 and 5 (upsampling bottlenecks whose max-unpooling uses the switches of the matching
encoder max-pool, then regular bottlenecks) and a 2x2 transposed convolution to the classes.
Every activation is a PReLU, as in the paper and in the authors' released Cityscapes model.
Max-unpooling is ``seg_ros.tools.unpool.max_unpool2x2`` and the channel zero-padding of the
downsampling bottlenecks ``pad_channels``: plain ops, so the ONNX graph holds no MaxUnpool, no
ScatterND and no shape arithmetic.
"""

import torch
from torch import nn
import torch.nn.functional as F

from seg_ros.tools.unpool import max_unpool2x2

# ENet's input must survive three 2x2 stride-2 downsamplings exactly.
SIZE_MULTIPLE = 8
# Bottlenecks reduce their channels by this factor inside the extension branch.
PROJECTION_RATIO = 4


def pad_channels(x: torch.Tensor, before: int, after: int, value: float = 0.0) -> torch.Tensor:
    """
    Add ``before`` leading and ``after`` trailing channels filled with ``value`` to (N, C, H, W).

    Exported as a single ONNX Pad with constant pads: torch's own export of ``F.pad`` computes
    the pads with a chain of shape ops that OpenCV DNN cannot import.
    """
    if torch.onnx.is_in_onnx_export():
        return ChannelPad.apply(x, before, after, value)
    return F.pad(x, (0, 0, 0, 0, before, after), value=value)


class ChannelPad(torch.autograd.Function):
    """Export hook: ``pad_channels`` as one ONNX Pad node with constant pads."""

    @staticmethod
    def forward(ctx: object, x: torch.Tensor, before: int, after: int,
                value: float) -> torch.Tensor:
        return F.pad(x, (0, 0, 0, 0, before, after), value=value)

    @staticmethod
    def symbolic(graph: object, x: object, before: int, after: int, value: float) -> object:
        # ONNX pads: all dims' begins, then all dims' ends (N, C, H, W).
        pads = torch.tensor([0, before, 0, 0, 0, after, 0, 0], dtype=torch.int64)
        fill = torch.tensor(value, dtype=torch.float32)
        return graph.op('Pad', x, graph.op('Constant', value_t=pads),
                        graph.op('Constant', value_t=fill))


def conv_bn_act(in_channels: int, out_channels: int, kernel: tuple[int, int],
                activation: nn.Module, *, stride: int = 1, padding: tuple[int, int] = (0, 0),
                dilation: int = 1) -> nn.Sequential:
    """Build a bias-free convolution followed by batch normalisation and ``activation``."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=padding,
                  dilation=dilation, bias=False),
        nn.BatchNorm2d(out_channels),
        activation)


class InitialBlock(nn.Module):
    """3x3 stride-2 convolution (13 filters) concatenated with a 2x2 max-pool of the input."""

    def __init__(self, in_channels: int = 3, out_channels: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels - in_channels, 3, stride=2, padding=1,
                              bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        merged = torch.cat([self.conv(x), F.max_pool2d(x, 2, 2)], dim=1)
        return self.act(self.bn(merged))


class RegularBottleneck(nn.Module):
    """
    Residual bottleneck keeping resolution and channels.

    The middle convolution is a 3x3 (``dilation`` 1), a dilated 3x3 or, with ``asymmetric``, a
    5x1 followed by a 1x5.
    """

    def __init__(self, channels: int, *, dilation: int = 1, asymmetric: bool = False,
                 dropout: float = 0.1) -> None:
        super().__init__()
        internal = channels // PROJECTION_RATIO

        if asymmetric:
            middle = nn.Sequential(
                nn.Conv2d(internal, internal, (5, 1), padding=(2, 0), bias=False),
                nn.Conv2d(internal, internal, (1, 5), padding=(0, 2), bias=False),
                nn.BatchNorm2d(internal),
                nn.PReLU(internal))
        else:
            middle = conv_bn_act(internal, internal, (3, 3), nn.PReLU(internal),
                                 padding=(dilation, dilation), dilation=dilation)
        self.extension = nn.Sequential(
            conv_bn_act(channels, internal, (1, 1), nn.PReLU(internal)),
            middle,
            nn.Conv2d(internal, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.Dropout2d(dropout))
        self.out_act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_act(x + self.extension(x))


class DownsamplingBottleneck(nn.Module):
    """
    Bottleneck halving the resolution; its input is kept for the decoder's unpooling.

    The main branch max-pools 2x2 and zero-pads the channels to ``out_channels``; the extension
    starts with a 2x2 stride-2 projection.
    """

    def __init__(self, in_channels: int, out_channels: int, *, dropout: float) -> None:
        super().__init__()
        internal = in_channels // PROJECTION_RATIO
        self.extra_channels = out_channels - in_channels
        self.extension = nn.Sequential(
            conv_bn_act(in_channels, internal, (2, 2), nn.PReLU(internal), stride=2),
            conv_bn_act(internal, internal, (3, 3), nn.PReLU(internal), padding=(1, 1)),
            nn.Conv2d(internal, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.Dropout2d(dropout))
        self.out_act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        main = pad_channels(F.max_pool2d(x, 2, 2), 0, self.extra_channels)
        return self.out_act(main + self.extension(x))


class UpsamplingBottleneck(nn.Module):
    """
    Bottleneck doubling the resolution.

    The main branch is a 1x1 convolution then max-unpooling to the switches of the encoder's
    max-pool of ``pre_pool``; the extension upsamples with a 3x3 stride-2 transposed
    convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, *, dropout: float) -> None:
        super().__init__()
        internal = in_channels // PROJECTION_RATIO
        self.main_conv = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                       nn.BatchNorm2d(out_channels))
        self.extension = nn.Sequential(
            conv_bn_act(in_channels, internal, (1, 1), nn.PReLU(internal)),
            nn.ConvTranspose2d(internal, internal, 3, stride=2, padding=1, output_padding=1,
                               bias=False),
            nn.BatchNorm2d(internal),
            nn.PReLU(internal),
            nn.Conv2d(internal, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.Dropout2d(dropout))
        self.out_act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor, pre_pool: torch.Tensor) -> torch.Tensor:
        main = max_unpool2x2(self.main_conv(x), pre_pool)
        return self.out_act(main + self.extension(x))


def middle_stage(channels: int, dropout: float) -> nn.Sequential:
    """Build the 8 bottlenecks shared by stages 2 and 3 (after stage 2's downsampling)."""
    return nn.Sequential(
        RegularBottleneck(channels, dropout=dropout),
        RegularBottleneck(channels, dilation=2, dropout=dropout),
        RegularBottleneck(channels, asymmetric=True, dropout=dropout),
        RegularBottleneck(channels, dilation=4, dropout=dropout),
        RegularBottleneck(channels, dropout=dropout),
        RegularBottleneck(channels, dilation=8, dropout=dropout),
        RegularBottleneck(channels, asymmetric=True, dropout=dropout),
        RegularBottleneck(channels, dilation=16, dropout=dropout))


class ENet(nn.Module):
    """ENet semantic segmentation network: (N, 3, H, W) images -> (N, classes, H, W) scores."""

    def __init__(self, num_classes: int = 20) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}')
        self.num_classes = num_classes
        self.initial = InitialBlock(3, 16)
        self.down1 = DownsamplingBottleneck(16, 64, dropout=0.01)
        self.stage1 = nn.Sequential(*(RegularBottleneck(64, dropout=0.01) for _ in range(4)))
        self.down2 = DownsamplingBottleneck(64, 128, dropout=0.1)
        self.stage2 = middle_stage(128, 0.1)
        self.stage3 = middle_stage(128, 0.1)
        self.up4 = UpsamplingBottleneck(128, 64, dropout=0.1)
        self.stage4 = nn.Sequential(RegularBottleneck(64), RegularBottleneck(64))
        self.up5 = UpsamplingBottleneck(64, 16, dropout=0.1)
        self.stage5 = RegularBottleneck(16)
        self.classifier = nn.ConvTranspose2d(16, num_classes, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        # Under tracing (ONNX export) the sizes are symbolic: the check would freeze them.
        if not torch.jit.is_tracing() and (height % SIZE_MULTIPLE or width % SIZE_MULTIPLE):
            raise ValueError(f'input height and width must be multiples of {SIZE_MULTIPLE}, '
                             f'got {height}x{width}')
        stage1_input = self.initial(x)
        stage2_input = self.stage1(self.down1(stage1_input))
        encoded = self.stage3(self.stage2(self.down2(stage2_input)))
        decoded = self.stage4(self.up4(encoded, stage2_input))
        decoded = self.stage5(self.up5(decoded, stage1_input))
        return self.classifier(decoded)
