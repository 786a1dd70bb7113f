"""
What one segmented frame gives, written once for the node and ``seg-ros bag`` (no ROS import).

An :class:`OutputSelection` says which outputs are wanted (the node: those with subscribers; the
bag: those asked for); :func:`segment` runs the segmenter for exactly what they need and
:func:`assemble` returns their arrays: the image outputs of
:data:`~seg_ros.output_topics.IMAGE_OUTPUTS` with their encodings, the class masks, the instance
map and the instances. :func:`detection_boxes` gives each instance's fields of ``~/instances``.
Each caller only turns the arrays into its own messages.
"""

from dataclasses import dataclass, field
from typing import Iterator

import cv2
import numpy as np

from seg_ros.core.decode.instances import Instances
from seg_ros.core.segmenter import SegmentationResult, Segmenter
from seg_ros.output_topics import IMAGE_OUTPUTS

IMAGE_NAMES = tuple(output.name for output in IMAGE_OUTPUTS)


@dataclass(frozen=True)
class OutputSelection:
    """
    The outputs wanted for one frame.

    :ivar raw: image outputs (names of ``IMAGE_OUTPUTS``) wanted as raw images.
    :ivar compressed: image outputs wanted compressed.
    :ivar masks: class ids whose binary mask is wanted.
    :ivar instance_map: the 16-bit instance map (where the model gives instances).
    :ivar instances: the instances (where the model gives them).
    :ivar class_map: the class map, for an output made elsewhere from it (camera_info, 3-D).
    """

    raw: frozenset[str] = field(default_factory=frozenset)
    compressed: frozenset[str] = field(default_factory=frozenset)
    masks: tuple[int, ...] = ()
    instance_map: bool = False
    instances: bool = False
    class_map: bool = False

    @property
    def images(self) -> frozenset[str]:
        """Return the image outputs wanted in either form."""
        return self.raw | self.compressed

    def anything(self) -> bool:
        """Return whether anything is wanted at all (else the network need not run)."""
        return bool(self.images or self.masks or self.instance_map or self.instances or
                    self.class_map)


@dataclass(frozen=True)
class FrameOutputs:
    """
    The arrays of one frame's wanted outputs.

    :ivar class_map: uint8 class ids at the output resolution.
    :ivar images: the wanted image outputs, in ``IMAGE_OUTPUTS`` order: name to (pixels,
        encoding), e.g. ``'overlay': (array, 'rgb8')``.
    :ivar masks: class id to its mono8 mask (255 where the class is, 0 elsewhere).
    :ivar instance_map: mono16 instance ids, or None.
    :ivar instances: the instances, or None.
    """

    class_map: np.ndarray
    images: dict[str, tuple[np.ndarray, str]]
    masks: dict[int, np.ndarray]
    instance_map: np.ndarray | None
    instances: Instances | None


@dataclass(frozen=True)
class DetectionBox:
    """One instance as ``~/instances`` holds it: id, class id and score, box in frame pixels."""

    instance_id: str
    class_id: str
    score: float
    center: tuple[float, float]
    size: tuple[float, float]


def segment(segmenter: Segmenter, image: np.ndarray, selection: OutputSelection, *,
            model_resolution: bool, encoding: str, alpha: float) -> SegmentationResult:
    """
    Run the segmenter on an image for the selected outputs (and nothing more).

    :param image: (H, W, 3) uint8 in ``encoding`` order, or (H, W) grey.
    :param model_resolution: class map and colour mask at the network's size, else the image's.
    :param encoding: ``'rgb8'`` or ``'bgr8'``, of the image and the colour outputs.
    :param alpha: the overlay's mask weight.
    """
    images = selection.images
    return segmenter.run(
        image, class_map='class_map' in images or selection.class_map or bool(selection.masks),
        color_mask='color_mask' in images, overlay='overlay' in images,
        full_resolution=not model_resolution, encoding=encoding, alpha=alpha)


def assemble(result: SegmentationResult, selection: OutputSelection, *,
             model_resolution: bool, encoding: str) -> FrameOutputs:
    """Return the arrays of the selected outputs of a segmented frame."""
    class_map = result.class_map if model_resolution else result.class_map_full
    pixels = {'class_map': (class_map, 'mono8'), 'color_mask': (result.color_mask, encoding),
              'overlay': (result.overlay, encoding)}
    images = {name: pixels[name] for name in IMAGE_NAMES if name in selection.images}
    masks = {class_id: cv2.compare(class_map, class_id, cv2.CMP_EQ)  # 255 where equal, else 0
             for class_id in selection.masks}
    with_instances = result.instances is not None
    return FrameOutputs(
        class_map=class_map, images=images, masks=masks,
        instance_map=result.instance_map if with_instances and selection.instance_map else None,
        instances=result.instances if with_instances and selection.instances else None)


def detection_boxes(instances: Instances) -> Iterator[DetectionBox]:
    """Yield each instance's id, class id (as strings), score and box centre and size."""
    for instance_id, class_id, score, (x0, y0, x1, y1) in zip(
            instances.ids.tolist(), instances.class_id.tolist(), instances.score.tolist(),
            instances.xyxy.tolist()):
        yield DetectionBox(str(instance_id), str(class_id), float(score),
                           ((x0 + x1) / 2, (y0 + y1) / 2), (x1 - x0, y1 - y0))
