"""
The node's output topic names, shared by the node and ``seg-ros bag`` (no ROS import).

Relative to the node (``~/``): the image outputs of :data:`IMAGE_OUTPUTS`, each also as
``<topic>/compressed`` in its codec, the class masks of :func:`mask_topic`, and the outputs
named below.
"""

from dataclasses import dataclass
import re


@dataclass(frozen=True)
class ImageOutput:
    """One image output: ``~/<name>`` raw and ``~/<name>/compressed`` in ``codec``."""

    name: str
    codec: str

    @property
    def topic(self) -> str:
        """Return the raw image's topic, relative to the node."""
        return f'~/{self.name}'


#: The image outputs, in the order they are made; ``publish_<name>`` switches each off.
IMAGE_OUTPUTS = (ImageOutput('class_map', 'png'), ImageOutput('color_mask', 'jpeg'),
                 ImageOutput('overlay', 'jpeg'))


#: The confidence map (mono8, the class map's size).
CONFIDENCE = 'confidence'
#: The objects in 3-D (vision_msgs/Detection3DArray).
OBJECTS = 'objects'
#: The labelled points (sensor_msgs/PointCloud2).
POINTS = 'points'


def mask_topic(class_name: str) -> str:
    """
    Return the topic of a class's binary mask: ``~/mask/<name>``.

    :param class_name: e.g. ``'TrafficLight'`` or ``'traffic light'``.
    :return: e.g. ``'~/mask/trafficlight'`` or ``'~/mask/traffic_light'``: lower case, every
        run of characters other than letters and digits one ``_``, never starting with a digit.
    """
    token = re.sub(r'[^a-z0-9]+', '_', class_name.lower()).strip('_') or 'class'
    return f'~/mask/{"class_" + token if token[0].isdigit() else token}'


def class_mask_indices(names: list[str], class_names: tuple[str, ...]) -> dict[int, str]:
    """
    Return the class ids and mask topics of the ``class_masks`` parameter.

    :param names: class names, matched to the model's without regard to case.
    :param class_names: the model's classes, by id.
    :return: class id to :func:`mask_topic`.
    :raises ValueError: naming the first unknown class and listing the model's classes.
    """
    ids = {}
    for class_id, class_name in enumerate(class_names):
        ids.setdefault(class_name.lower(), class_id)
    indices = {}
    for name in names:
        class_id = ids.get(name.lower())
        if class_id is None:
            raise ValueError(f'class_masks: {name!r} is not a class of the model; its classes '
                             f'are: {", ".join(class_names)}')
        indices[class_id] = mask_topic(class_names[class_id])
    return indices
