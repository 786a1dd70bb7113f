"""
2x2 max-unpooling written with plain tensor ops, so that it exports to a clean ONNX graph.

``F.max_unpool2d`` exports to MaxUnpool (TensorRT rejects it, OpenVINO runs it slowly) or
ScatterND, and the TorchScript exporter cannot export it at all. ENet only ever unpools the
output of a 2x2 stride-2 max-pool, so the switch locations can be recomputed from the tensor
that was pooled: split every 2x2 window into its 4 pixels (strided slices: the pixel_unshuffle
of the tensor), mark the first maximum of each window (the tie rule of ``F.max_pool2d``) as a
one-hot mask, multiply by the value to unpool and put the 4 pixels back in place (a
pixel_shuffle, exported as ONNX DepthToSpace).

The exported graph holds only Slice, Max, Equal, Cast, Sub, Mul, Concat and DepthToSpace with
constant attributes: no Shape arithmetic, so H and W stay dynamic even for OpenCV DNN.

API::

    max_unpool2x2(values, pre_pool) -> Tensor
        values:   (N, C, H/2, W/2) tensor to unpool (the decoder's tensor)
        pre_pool: (N, C, H, W) tensor the encoder max-pooled (2x2, stride 2)
        returns:  (N, C, H, W), equal to
                  F.max_unpool2d(values, F.max_pool2d(pre_pool, 2, 2, return_indices=True)[1], 2)
"""

import torch

BLOCK = 2


def depth_to_space_dcr(x: torch.Tensor) -> torch.Tensor:
    """
    Rearrange (N, 4C, h, w) to (N, C, 2h, 2w); input channel ``k * C + c`` goes to ``(c, k)``.

    ``k = 2 * i + j`` is the pixel's row-major place in its output 2x2 block. This is ONNX
    DepthToSpace in DCR mode, which is what the export writes (torch's pixel_shuffle is the CRD
    order and would need a shape-dependent reshape to reach it).
    """
    if torch.onnx.is_in_onnx_export():
        return DepthToSpaceDCR.apply(x)
    return rearrange_dcr(x)


def rearrange_dcr(x: torch.Tensor) -> torch.Tensor:
    """Compute ``depth_to_space_dcr`` with reshapes (differentiable, for training)."""
    batch, depth, height, width = x.shape
    channels = depth // (BLOCK * BLOCK)
    blocks = x.reshape(batch, BLOCK, BLOCK, channels, height, width)
    return blocks.permute(0, 3, 4, 1, 5, 2).reshape(
        batch, channels, height * BLOCK, width * BLOCK)


class DepthToSpaceDCR(torch.autograd.Function):
    """Export hook: ``depth_to_space_dcr`` as one ONNX DepthToSpace (DCR) node."""

    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:
        return rearrange_dcr(x)

    @staticmethod
    def symbolic(graph: object, x: object) -> object:
        return graph.op('DepthToSpace', x, blocksize_i=BLOCK, mode_s='DCR')


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
    placed = [mask * values for mask in window_one_hot(pre_pool)]
    return depth_to_space_dcr(torch.cat(placed, dim=1))
