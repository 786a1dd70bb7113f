"""
The segmentation node's parameter values: the segmenter they make, and what a change needs.

:data:`NODE_TABLE` is the node's table (:mod:`seg_ros.ros.parameters`); :func:`plan_change`
turns a checked runtime change into a :class:`ChangePlan` (a rebuilt network, new instance
settings, new class masks, new track settings), refusing it with the reason when the plan
cannot be made; the node applies the plan once the values are set.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seg_ros.core.decode.instance_decoders import InstanceSettings
from seg_ros.core.segmenter import DESCRIPTION_FIELDS, Segmenter, SegmenterConfig
from seg_ros.core.track.settings import TrackSettings
from seg_ros.output_topics import class_mask_indices
from seg_ros.paths import default_label_paths, embedded_model_path
from seg_ros.ros.parameter_table import ParameterTable
from seg_ros.ros.parameters import (CLASS_LISTS, CLASS_MASKS, INSTANCES, NETWORK, PARAMETERS,
                                    TRACKS)
from seg_ros.ros.runner import StartupError

NODE_TABLE = ParameterTable(PARAMETERS)
INSTANCE_VALUES = ('instance_classes', 'score_threshold', 'nms_iou', 'max_instances',
                   'min_instance_area')
# What a network shared by several cameras fixes for all of them.
NETWORK_VALUES = tuple(spec.name for spec in PARAMETERS if spec.change in (NETWORK, INSTANCES))
CLASS_LIST_VALUES = tuple(spec.name for spec in PARAMETERS if spec.change == CLASS_LISTS)


def segmenter_config(values: dict) -> SegmenterConfig:
    """
    Turn parameter values into the segmenter's configuration, filling in the defaults.

    An empty ``model_path`` means the embedded model; empty label paths mean the single
    ``*classes.txt`` / ``*colors.txt`` beside the model, if there is one.
    """
    model_path = values['model_path'] or embedded_model_path()
    default_classes, default_colors = default_label_paths(model_path)
    description = {name: values[name] for name in DESCRIPTION_FIELDS if name in values}
    for name in ('image_mean', 'image_std'):
        # A params file's [] arrives as None (unset).
        description[name] = tuple(float(value) for value in description.get(name) or ())
    return SegmenterConfig(
        model_path=model_path, preset=values['preset'], backend=values['backend'],
        target=values['target'], require_cuda=values['require_cuda'],
        classes_path=values['classes_path'] or default_classes,
        colors_path=values['colors_path'] or default_colors,
        config_path=values['config_path'], precision=values['precision'],
        instance_classes=tuple(values['instance_classes'] or ()),
        score_threshold=values['score_threshold'], nms_iou=values['nms_iou'],
        max_instances=values['max_instances'], min_instance_area=values['min_instance_area'],
        confidence=values['confidence'], **description)


def describe_error(error: ValueError) -> str:
    """Return the error's message, naming its parameter and value when it has them."""
    message = str(error)
    parameter = getattr(error, 'parameter', None)
    if parameter and parameter not in message:
        message = f'{parameter}={getattr(error, "value", None)!r}: {message}'
    return message


def build_segmenter(values: dict) -> Segmenter:
    """Load the network of these values; raise StartupError naming the parameter at fault."""
    try:
        return Segmenter(segmenter_config(values))
    except ValueError as error:
        raise StartupError(describe_error(error)) from error


def class_ids(entries: list[str], class_names: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """
    Return the class ids named by ``entries`` (names, any case, or ids) and the unknown entries.

    :param entries: e.g. ``['road', 'Sidewalk', '7']``.
    :param class_names: the model's classes, by id.
    """
    by_name = {}
    for class_id, name in enumerate(class_names):
        by_name.setdefault(name.lower(), class_id)
    ids, unknown = [], []
    for entry in entries:
        text = str(entry).strip()
        if text.lower() in by_name:
            ids.append(by_name[text.lower()])
        elif text.isdigit() and int(text) < len(class_names):
            ids.append(int(text))
        else:
            unknown.append(text)
    return np.array(sorted(set(ids)), np.int64), unknown


def unknown_classes_reason(name: str, entries, class_names: tuple[str, ...]) -> str | None:
    """
    Return why a class list parameter names a class the model lacks, or None.

    :param entries: class names (any case) or ids, e.g. ``['road', '7']``.
    """
    _, unknown = class_ids(list(entries or ()), class_names)
    if not unknown:
        return None
    return (f'{name}: {", ".join(map(repr, unknown))} is not a class of the model (name or id); '
            f'its classes are: {", ".join(class_names)}')


def start_class_masks(values: dict, segmenter: Segmenter) -> dict[int, str]:
    """Return the class masks of ``class_masks`` for a model; raise StartupError naming one."""
    try:
        return class_mask_indices(list(values['class_masks']), segmenter.labels.names)
    except ValueError as error:
        raise StartupError(str(error)) from error


@dataclass(frozen=True)
class ChangePlan:
    """
    What applying a checked parameter change takes.

    :ivar values: the changed parameters' new values.
    :ivar segmenter: a rebuilt network to swap in between two frames, or None.
    :ivar new_instance_settings: whether ``instance_settings`` replace the running network's.
    :ivar instance_settings: the new instance settings (None: the model makes no instances).
    :ivar class_masks: the class masks to publish (class id to topic), or None: unchanged.
    :ivar track_settings: new tracking settings (the tracks start afresh), or None: unchanged.
    """

    values: dict[str, Any] = field(default_factory=dict)
    segmenter: Segmenter | None = None
    new_instance_settings: bool = False
    instance_settings: InstanceSettings | None = None
    class_masks: dict[int, str] | None = None
    track_settings: TrackSettings | None = None


def plan_change(changed: dict[str, Any], values: dict[str, Any], segmenter: Segmenter | None, *,
                shared: bool = False, check_class_lists: bool = True) -> ChangePlan:
    """
    Return what a checked change needs, building a new network first where it needs one.

    :param changed: the new values (:meth:`ParameterTable.checked`).
    :param values: every parameter's current value.
    :param segmenter: the running network; None (a managed node not configured) keeps the
        values for the next configure.
    :param shared: the network is shared by several cameras: a change of it is refused.
    :param check_class_lists: check obstacle_classes and freespace_classes against a rebuilt
        network's classes too (the 3-D outputs exist).
    :raises ValueError: the reason the change is refused; the old network keeps running.
    """
    if segmenter is None or not changed:
        return ChangePlan(changed)
    needs = NODE_TABLE.needs(changed)
    new = {**values, **changed}
    tracks = TrackSettings.from_values(new) if TRACKS in needs else None
    if shared and needs & {NETWORK, INSTANCES}:
        names = ', '.join(name for name in changed if name in NETWORK_VALUES)
        raise ValueError(f'{names}: the network is shared by every camera of this process '
                         '(one_process): change it in the params file and restart')
    rebuilt = None
    if NETWORK in needs:
        try:
            rebuilt = Segmenter(segmenter_config(new))
        except ValueError as error:
            raise ValueError(f'network not rebuilt, old one kept: {describe_error(error)}') \
                from None
    model = rebuilt or segmenter
    settings = None
    if INSTANCES in needs and rebuilt is None:
        try:
            settings = segmenter.instance_settings_for(
                tuple(new['instance_classes'] or ()),
                *(new[name] for name in INSTANCE_VALUES[1:]))
        except ValueError as error:
            raise ValueError(describe_error(error)) from None
    masks = None
    if CLASS_MASKS in needs or rebuilt is not None:
        masks = class_mask_indices(list(new['class_masks']), model.labels.names)
    for name in CLASS_LIST_VALUES:
        if name in changed or (rebuilt is not None and check_class_lists):
            reason = unknown_classes_reason(name, new[name], model.labels.names)
            if reason:
                raise ValueError(reason)
    return ChangePlan(changed, rebuilt, INSTANCES in needs and rebuilt is None, settings, masks,
                      tracks)
