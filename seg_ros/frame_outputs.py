"""
What one segmented frame gives, written once for the node and ``seg-ros bag`` (no ROS import).

An :class:`OutputSelection` says which outputs are wanted (the node: those with subscribers; the
bag: those asked for); :func:`segment` runs the segmenter for exactly what they need and
:func:`assemble` returns their arrays: the image outputs of
:data:`~seg_ros.output_topics.IMAGE_OUTPUTS` with their encodings, the class masks, the instance
map, the instances and the confidence map. :func:`detection_boxes` gives each instance's fields
of ``~/instances``; with depth, :func:`frame_points` the array of ``~/points`` and
:func:`frame_objects` the objects of ``~/objects`` (:func:`object_boxes`: their fields).
Each caller only turns the arrays into its own messages.
"""

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from seg_ros.core.decode.instances import equal_mask, Instances
from seg_ros.core.geometry.camera import Intrinsics
from seg_ros.core.geometry.objects import instance_points, Objects3D, objects_3d
from seg_ros.core.geometry.points import labelled_points, organized_points
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
    :ivar confidence: the confidence map (where the model has one), the class map's size.
    """

    raw: frozenset[str] = field(default_factory=frozenset)
    compressed: frozenset[str] = field(default_factory=frozenset)
    masks: tuple[int, ...] = ()
    instance_map: bool = False
    instances: bool = False
    class_map: bool = False
    confidence: bool = False

    @property
    def images(self) -> frozenset[str]:
        """Return the image outputs wanted in either form."""
        return self.raw | self.compressed

    def anything(self) -> bool:
        """Return whether anything is wanted at all (else the network need not run)."""
        return bool(self.images or self.masks or self.instance_map or self.instances or
                    self.class_map or self.confidence)


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
    :ivar confidence: mono8 confidence of each class-map pixel's class, or None (not wanted, or
        the model has none: :attr:`~seg_ros.core.segmenter.Segmenter.confidence_reason`).
    """

    class_map: np.ndarray
    images: dict[str, tuple[np.ndarray, str]]
    masks: dict[int, np.ndarray]
    instance_map: np.ndarray | None
    instances: Instances | None
    confidence: np.ndarray | None = None


@dataclass(frozen=True)
class DetectionBox:
    """
    One instance as ``~/instances`` holds it: id, class id and score, box in frame pixels.

    ``instance_id`` is '' for an instance without an id (a track not identified yet).
    """

    instance_id: str
    class_id: str
    score: float
    center: tuple[float, float]
    size: tuple[float, float]


@dataclass(frozen=True)
class ObjectBox:
    """
    One object as ``~/objects`` holds it: id, class id, score, 3-D centre and extent (metres).

    ``instance_id`` is the instance's (track) id; the centre and size are in the image's frame.
    """

    instance_id: str
    class_id: str
    score: float
    center: tuple[float, float, float]
    size: tuple[float, float, float]


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
        image, class_map=('class_map' in images or selection.class_map or bool(selection.masks)
                          or selection.confidence),
        color_mask='color_mask' in images, overlay='overlay' in images,
        full_resolution=not model_resolution, encoding=encoding, alpha=alpha,
        confidence=selection.confidence)


def assemble(result: SegmentationResult, selection: OutputSelection, *,
             model_resolution: bool, encoding: str) -> FrameOutputs:
    """Return the arrays of the selected outputs of a segmented frame."""
    class_map = result.class_map if model_resolution else result.class_map_full
    pixels = {'class_map': (class_map, 'mono8'), 'color_mask': (result.color_mask, encoding),
              'overlay': (result.overlay, encoding)}
    images = {name: pixels[name] for name in IMAGE_NAMES if name in selection.images}
    masks = {class_id: equal_mask(class_map, class_id) for class_id in selection.masks}
    with_instances = result.instances is not None
    confidence = result.confidence if model_resolution else result.confidence_full
    return FrameOutputs(
        class_map=class_map, images=images, masks=masks,
        instance_map=result.instance_map if with_instances and selection.instance_map else None,
        instances=result.instances if with_instances and selection.instances else None,
        confidence=confidence if selection.confidence else None)


def detection_boxes(instances: Instances) -> Iterator[DetectionBox]:
    """Yield each instance's id, class id (as strings), score and box centre and size."""
    for instance_id, class_id, score, (x0, y0, x1, y1) in zip(
            instances.ids.tolist(), instances.class_id.tolist(), instances.score.tolist(),
            instances.xyxy.tolist()):
        yield DetectionBox(str(instance_id) if instance_id else '', str(class_id), float(score),
                           ((x0 + x1) / 2, (y0 + y1) / 2), (x1 - x0, y1 - y0))


def object_boxes(objects: Objects3D) -> Iterator[ObjectBox]:
    """Yield each 3-D object's id, class id (as strings), score, centre and size."""
    for instance_id, class_id, score, center, size in zip(
            objects.ids.tolist(), objects.class_id.tolist(), objects.score.tolist(),
            objects.center.tolist(), objects.size.tolist()):
        yield ObjectBox(str(instance_id), str(class_id), float(score), tuple(center),
                        tuple(size))


def frame_points(metres: np.ndarray, camera: Intrinsics, result: SegmentationResult,
                 colors_rgb: np.ndarray, *, stride: int, organized: bool,
                 output_class_map: np.ndarray | None = None) -> np.ndarray:
    """
    Return the PointCloud2 array of ``~/points`` for a segmented frame and its depth.

    :param metres: (H, W) float32 depth registered to the frame, NaN where invalid.
    :param camera: the colour camera's intrinsics (its CameraInfo), at any of its resolutions.
    :param result: the frame's result (its instance map holds the track ids).
    :param colors_rgb: the class colours.
    :param stride: the unorganised cloud's ``cloud_stride``.
    :param organized: the organized cloud on ``output_class_map``'s grid (else the frame-size
        class map's), NaN where no depth; else the valid points of the stride grid.
    :param output_class_map: ``~/class_map``'s pixels, or None.
    :return: 1-D (unorganised) or (h, w) (organized) :func:`~.points.cloud_dtype` records.
    :raises ValueError: depth of another camera (another aspect ratio).
    """
    class_map = result.class_map_full if result.class_map_full is not None else result.class_map
    if organized:
        grid = class_map if output_class_map is None else output_class_map
        return organized_points(metres, camera, grid, result.instance_map, colors_rgb)
    intrinsics = camera.scaled_to(metres.shape[1], metres.shape[0])
    return labelled_points(metres, intrinsics, class_map, stride, result.instance_map,
                           colors_rgb).cloud(colors_rgb)


def frame_objects(metres: np.ndarray, camera: Intrinsics, result: SegmentationResult,
                  min_object_points: int) -> Objects3D:
    """
    Return the objects of ``~/objects``: each instance with enough valid depth points in 3-D.

    Every depth pixel an instance covers (:func:`~.objects.instance_points`), their median and
    5th-95th percentile extent (:func:`~.objects.objects_3d`); none without instances.

    :param camera: the colour camera's intrinsics, scaled here to the depth image.
    :raises ValueError: depth of another camera (another aspect ratio).
    """
    instances = result.instances
    if instances is None or result.instance_map is None:
        return objects_3d(np.zeros((0, 3), np.float32), np.zeros(0, np.uint16), [], [], [], 1)
    intrinsics = camera.scaled_to(metres.shape[1], metres.shape[0])
    xyz, owners = instance_points(metres, intrinsics, result.instance_map)
    return objects_3d(xyz, owners, instances.ids, instances.class_id, instances.score,
                      min_object_points)
