"""
2x2 max-unpooling written with plain tensor ops, so that it exports to a clean ONNX graph.

``F.max_unpool2d`` exports to MaxUnpool (TensorRT rejects it, OpenVINO runs it slowly) or
ScatterND, and the TorchScript exporter cannot export it at all. ENet only ever unpools the
output of a 2x2 stride-2 max-pool, so the switch locations can be recomputed from the tensor
that was pooled: split every 2x2 window into its 4 pixels (strided slices: the pixel_unshuffle
of the tensor), mark the first maximum of each window (the tie rule of ``F.max_pool2d``) as a
one-hot mask, multiply by the value to unpool and put the 4 pixels back in place.

Putting them back is a pixel_shuffle (DepthToSpace) in training. In the ONNX export it is 4
depthwise ConvTranspose nodes (kernel 2, stride 2, one-hot weights: pixel ``(i, j)`` of every
window) and their sum, exactly the same numbers (``x * 1``, ``x * 0`` and adding zeros are
exact): OpenCV DNN 4.6 (Debian 12, what rosdep installs) cannot import DepthToSpace with
dynamic H and W, and reads these. :mod:`seg_ros.tools.depth_to_space` rewrites older exports
(DepthToSpace) into the same form.

The exported graph holds only Slice, Max, Equal, Cast, Sub, Mul, ConvTranspose and Add with
constant attributes: no Shape arithmetic, so H and W stay dynamic even for OpenCV DNN. OpenCV 4.5.4
has no Equal: :mod:`seg_ros.tools.opencv_compat` rewrites it, exactly, and ``seg_ros.tools.train``
does so after its export.

API::

    max_unpool2x2(values, pre_pool) -> Tensor
        values:   (N, C, H/2, W/2) tensor to unpool (the decoder's tensor)
        pre_pool: (N, C, H, W) tensor the encoder max-pooled (2x2, stride 2)
        returns:  (N, C, H, W), equal to
                  F.max_unpool2d(values, F.max_pool2d(pre_pool, 2, 2, return_indices=True)[1], 2)
"""

import warnings

import torch
import torch.nn.functional as F

from seg_ros.tools.depth_to_space import one_hot_kernels

BLOCK = 2


def place_windows(placed: list[torch.Tensor]) -> torch.Tensor:
    """
    Put 4 (N, C, h, w) tensors back as the 4 pixels of every 2x2 window of (N, C, 2h, 2w).

    Tensor ``k`` holds pixel ``(k // 2, k % 2)`` of each window (ONNX DepthToSpace, DCR, of
    their concatenation). Exported as one-hot depthwise ConvTranspose nodes and an Add chain
    (see the module's docstring), else computed with reshapes (differentiable, for training).
    """
    if torch.onnx.is_in_onnx_export():
        total = None
        with warnings.catch_warnings():
            # The channel count and the kernels are constants of the graph, as they should be.
            warnings.simplefilter('ignore', torch.jit.TracerWarning)
            channels = int(placed[0].shape[1])
            for part, kernel in zip(placed, one_hot_kernels(channels, BLOCK)):
                moved = F.conv_transpose2d(part, torch.from_numpy(kernel), stride=BLOCK,
                                           groups=channels)
                total = moved if total is None else total + moved
        return total
    return rearrange_dcr(torch.cat(placed, dim=1))


def rearrange_dcr(x: torch.Tensor) -> torch.Tensor:
    """Rearrange (N, 4C, h, w) to (N, C, 2h, 2w): input channel ``k * C + c`` goes to (c, k)."""
    batch, depth, height, width = x.shape
    channels = depth // (BLOCK * BLOCK)
    blocks = x.reshape(batch, BLOCK, BLOCK, channels, height, width)
    return blocks.permute(0, 3, 4, 1, 5, 2).reshape(
        batch, channels, height * BLOCK, width * BLOCK)


def window_one_hot(pre_pool: torch.Tensor) -> list[torch.Tensor]:
    """
    Mark the first maximum of every 2x2 window.

    :param pre_pool: (N, C, H, W) tensor, H and W even.
    :return: 4 (N, C, H/2, W/2) float masks, for the window's top-left, top-right, bottom-left
        and bottom-right pixels; per window exactly one of them is 1, the first maximum in
        row-major order (the switch ``F.max_pool2d`` records).
    """
    pixels = [pre_pool[:, :, i::BLOCK, j::BLOCK] for i in range(BLOCK) for j in range(BLOCK)]
    window_max = torch.maximum(torch.maximum(pixels[0], pixels[1]),
                               torch.maximum(pixels[2], pixels[3]))
    masks = []
    # 1 until a window has found its first maximum, then 0: later ties are not switches.
    unclaimed = None
    for pixel in pixels[:-1]:
        is_max = (pixel == window_max).to(pre_pool.dtype)
        mask = is_max if unclaimed is None else is_max * unclaimed
        unclaimed = 1 - mask if unclaimed is None else unclaimed - mask
        masks.append(mask)
    masks.append(unclaimed)
    return masks


def max_unpool2x2(values: torch.Tensor, pre_pool: torch.Tensor) -> torch.Tensor:
    """
    Max-unpool ``values`` to the switches of a 2x2 stride-2 max-pool of ``pre_pool``.

    :param values: (N, C, H/2, W/2) tensor to place back at full resolution.
    :param pre_pool: (N, C, H, W) tensor whose 2x2 max-pool defined the switches.
    :return: (N, C, H, W) tensor, zero except at the first maximum of every window.
    """
    return place_windows([mask * values for mask in window_one_hot(pre_pool)])
