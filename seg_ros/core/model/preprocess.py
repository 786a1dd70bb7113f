"""
Frames to network inputs, as a :class:`ModelDescription` says.

``(pixel * rescale_factor - image_mean) / image_std`` per channel, computed as
``(pixel - mean_px) * factor`` with ``mean_px = image_mean / rescale_factor`` and
``factor = rescale_factor / image_std`` (one subtraction and one multiplication in float32, as
OpenCV's ``blobFromImage`` scales: the classic ENet tutorial's input, bit for bit), after
resizing the frame to the input size and putting its channels in the network's order. A
YOLO-seg model (task ``yolo_seg``) is divided by ``image_std / rescale_factor`` instead: for its
0-1 input ``pixel / 255`` in float32, bit for bit what ultralytics feeds the network.

The resize is ``cv2.resize`` bilinear (``resize: opencv``, no antialiasing) or Pillow's
``Image.resize`` with the description's ``resample`` filter (``resize: pil``, antialiased when
shrinking), which is what HuggingFace's image processors do: Pillow is then needed.
"""

from __future__ import annotations

import cv2
import numpy as np

from seg_ros.core.errors import ModelError
from seg_ros.core.install_hints import install_hint
from seg_ros.core.model.description import ModelDescription


def resized(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Return ``image`` resized to ``width`` x ``height`` (bilinear), itself if already so."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


def pil_resized(image: np.ndarray, width: int, height: int, resample: int) -> np.ndarray:
    """
    Return a uint8 (H, W, 3) or (H, W) image resized with Pillow's filter ``resample``.

    Channels are resized independently, so their order does not matter.

    :raises ModelError: naming ``resize`` where Pillow is not installed.
    """
    try:
        from PIL import Image
    except ImportError as error:
        raise ModelError('resize', 'pil',
                         'resize pil (a HuggingFace preprocessor_config.json) needs '
                         f'{install_hint("PIL")}; or set resize opencv') from error
    if image.shape[1] == width and image.shape[0] == height:
        return image
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize(
        (width, height), resample=resample))


def network_image(frame: np.ndarray, encoding: str, description: ModelDescription
                  ) -> np.ndarray:
    """
    Return the frame resized to the input size, 3 channels, in the network's channel order.

    :param frame: (H, W, 3) uint8 in ``encoding`` order, or (H, W) uint8 grey.
    :param encoding: ``'bgr8'`` or ``'rgb8'``: channel order of a colour frame.
    :param description: a resolved description (input size set).
    :return: (input height, input width, 3) uint8.
    """
    if description.resize == 'pil':
        image = pil_resized(frame, description.input_width, description.input_height,
                            description.resample)
    else:
        image = resized(frame, description.input_width, description.input_height)
    if image.ndim == 2:
        # Grey to 3 channels after resizing: fewer pixels to convert.
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if (encoding == 'rgb8') != (description.channel_order == 'RGB'):
        return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)  # the same swap both ways
    return image


def prepare_input(frame: np.ndarray, encoding: str, description: ModelDescription,
                  fused: bool = False) -> np.ndarray:
    """
    Turn a frame into the network input.

    :param frame: (H, W, 3) uint8 in ``encoding`` order, or (H, W) uint8 grey; any size.
    :param encoding: ``'bgr8'`` or ``'rgb8'``.
    :param description: a resolved description (input size and layout set).
    :param fused: the model takes the uint8 image itself: (1, H, W, 3) in ``channel_order``,
        no normalisation.
    :return: float32 (1, 3, H, W), (1, H, W, 3) or (3, H, W) as ``input_layout`` says, or the
        uint8 image of a fused model.
    """
    image = network_image(frame, encoding, description)
    if fused:
        return np.ascontiguousarray(image)[np.newaxis]
    mean, std = description.network_mean_std()
    rescale = description.rescale_factor
    blob = image.astype(np.float32)
    blob -= np.array([m / rescale for m in mean], np.float32)
    if description.task == 'yolo_seg':
        # Divided, not multiplied by the inverse: x / 255 in float32 is what ultralytics
        # (``div_(255)``) feeds the network; x * float32(1 / 255) differs in the last bit for
        # most pixels, and that moves a YOLO-seg export's outputs.
        blob /= np.array([s / rescale for s in std], np.float32)
    else:
        # Multiplied, as OpenCV's blobFromImage scales (the reference of OpenCV-era models).
        blob *= np.array([rescale / s for s in std], np.float32)
    if description.input_layout == 'NHWC':
        return blob[np.newaxis]
    planes = np.ascontiguousarray(blob.transpose(2, 0, 1))
    return planes if description.input_layout == 'CHW' else planes[np.newaxis]
