"""
The model description: everything a model needs around its network file, in one frozen dataclass.

A network input is made from a frame as ``(pixel * rescale_factor - image_mean) / image_std``
per channel, pixel in 0-255, with ``image_mean`` and ``image_std`` always listed in R, G, B order
(HuggingFace's ``preprocessor_config.json`` keys and convention), whatever order the network
takes its channels in (``channel_order``).

Where the values come from, later ones overriding earlier ones, key by key:

1. the defaults of :class:`ModelDescription` (the ``unit`` preset: x/255, RGB);
2. the model's ONNX metadata: ``seg_ros.description`` (a JSON object of these keys), single
   ``seg_ros.<key>`` entries, the legacy ``seg_ros.num_classes`` / ``seg_ros.input_width`` /
   ``seg_ros.input_height``, and ultralytics' ``task`` / ``imgsz`` / ``names``;
3. a sidecar file beside the model: ``<stem>.seg_ros.yaml`` (``.yml``, ``.json``), else a
   HuggingFace ``preprocessor_config.json`` in the same folder; its ``preset`` key applies
   under its other keys;
4. a preset named by the caller (``imagenet``, ``unit``);
5. the caller's overrides (node parameters, CLI flags).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
import json
import os
from typing import Any

from seg_ros.core.errors import ModelError
from seg_ros.core.install_hints import install_hint

TASKS = ('semantic', 'maskrcnn', 'yolo_seg')
INPUT_LAYOUTS = ('NCHW', 'NHWC', 'CHW')
CHANNEL_ORDERS = ('RGB', 'BGR')
OUTPUT_LAYOUTS = ('NCHW', 'NHWC', 'class_ids')
UPSAMPLING = ('bilinear', 'nearest')
RESIZERS = ('opencv', 'pil')
POSTPROCESSING = ('class_map', 'logits')
# PIL's resampling filters by their number (what a HF ``resample`` holds).
PIL_RESAMPLE = {0: 'nearest', 1: 'lanczos', 2: 'bilinear', 3: 'bicubic', 4: 'box', 5: 'hamming'}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PRESETS: dict[str, dict[str, Any]] = {
    # torchvision, timm and HuggingFace models: x/255, RGB, ImageNet mean and std.
    'imagenet': {'rescale_factor': 1 / 255, 'channel_order': 'RGB',
                 'image_mean': IMAGENET_MEAN, 'image_std': IMAGENET_STD},
    # ENet (Torch7 and seg_ros's own): x/255, RGB, nothing else.
    'unit': {'rescale_factor': 1 / 255, 'channel_order': 'RGB',
             'image_mean': (0.0, 0.0, 0.0), 'image_std': (1.0, 1.0, 1.0)},
}

SIDECAR_SUFFIXES = ('.seg_ros.yaml', '.seg_ros.yml', '.seg_ros.json')
HF_PREPROCESSOR_CONFIG = 'preprocessor_config.json'
META_DESCRIPTION = 'seg_ros.description'
META_PREFIX = 'seg_ros.'
MAX_CLASSES = 256


@dataclass(frozen=True)
class ModelDescription:
    """
    How frames become the network input and the network output becomes a class map.

    Empty strings and zeros mean "what the model file says" and are resolved when a backend
    opens the model: ``input_width`` x ``input_height`` 0 x 0 is the size the model declares;
    ``input_layout`` '' is read from the model's input shape; ``output_layout`` '' is NCHW
    scores for a float output and class ids for an integer one; ``output_name`` '' is the
    model's first output.

    :ivar task: ``'semantic'`` (one class map), ``'maskrcnn'`` or ``'yolo_seg'`` (instances).
    :ivar input_width: network input width in pixels, 0: the model's.
    :ivar input_height: network input height in pixels, 0: the model's.
    :ivar input_layout: ``'NCHW'``, ``'NHWC'`` or ``'CHW'`` (no batch axis, Mask R-CNN).
    :ivar channel_order: ``'RGB'`` or ``'BGR'``: the order the network takes its channels in.
    :ivar rescale_factor: pixel (0-255) multiplier, applied first.
    :ivar image_mean: subtracted after rescaling, R, G, B order.
    :ivar image_std: divides after the mean, R, G, B order.
    :ivar output_name: the output holding the scores or class ids, '' for the first.
    :ivar output_layout: ``'NCHW'`` / ``'NHWC'`` scores or ``'class_ids'``.
    :ivar upsample: scores smaller than the input are resized ``'bilinear'`` before the argmax
        (what torchvision and HuggingFace do), or ``'nearest'`` after it.
    :ivar resize: how a frame is resized to the input: ``'opencv'`` (``cv2.resize`` bilinear,
        no antialiasing: fast) or ``'pil'`` (Pillow with ``resample``, antialiased when
        shrinking: what HuggingFace's image processors do; set for a ``preprocessor_config.json``).
    :ivar resample: PIL's filter for ``resize: pil``: 0 nearest, 1 lanczos, 2 bilinear,
        3 bicubic, 4 box, 5 hamming (HuggingFace's ``resample``).
    :ivar postprocess: ``'class_map'``: the argmax at the input size, its class map resized
        (nearest) to the frame (fast); ``'logits'``: the scores resized bilinearly to the frame,
        then the argmax (HuggingFace's ``post_process_semantic_segmentation`` with the frame
        size as target; set for a ``preprocessor_config.json``).
    :ivar size_divisor: the network takes only input sizes that are multiples of this (ENet: 8,
        its three 2x downsamplings, undone by unpooling); 0: any size. A size that is not is
        refused with the nearest ones that are (HuggingFace's ``size_divisor``).
    :ivar num_classes: class count of a class-id output (scores outputs tell it themselves).
    :ivar class_names: class names in id order, () for none.
    :ivar colors: RGB colour per class, () for none.
    """

    task: str = 'semantic'
    input_width: int = 0
    input_height: int = 0
    input_layout: str = ''
    channel_order: str = 'RGB'
    rescale_factor: float = 1 / 255
    image_mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    image_std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    output_name: str = ''
    output_layout: str = ''
    upsample: str = 'bilinear'
    resize: str = 'opencv'
    resample: int = 2
    postprocess: str = 'class_map'
    size_divisor: int = 0
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    colors: tuple[tuple[int, int, int], ...] = ()

    def __post_init__(self) -> None:
        """Check and normalise every field; raise ModelError naming the field."""
        _check_choice('task', self.task, TASKS)
        _check_choice('input_layout', self.input_layout, ('',) + INPUT_LAYOUTS)
        _check_choice('channel_order', self.channel_order, CHANNEL_ORDERS)
        _check_choice('output_layout', self.output_layout, ('',) + OUTPUT_LAYOUTS)
        _check_choice('upsample', self.upsample, UPSAMPLING)
        _check_choice('resize', self.resize, RESIZERS)
        _check_choice('postprocess', self.postprocess, POSTPROCESSING)
        if isinstance(self.resample, bool) or self.resample not in PIL_RESAMPLE:
            raise ModelError('resample', self.resample,
                             'resample must be a PIL filter number 0 to 5 ('
                             + ', '.join(f'{key} {name}' for key, name in PIL_RESAMPLE.items())
                             + f'), got {self.resample!r}')
        for name in ('input_width', 'input_height', 'size_divisor', 'num_classes'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                zero = 'any size' if name == 'size_divisor' else 'from the model'
                raise ModelError(name, value, f'{name} must be an integer >= 0 (0: {zero}), '
                                              f'got {value!r}')
        if (self.input_width == 0) != (self.input_height == 0):
            raise ModelError('input_width', self.input_width,
                             f'input_width {self.input_width} and input_height '
                             f'{self.input_height}: set both or neither to 0 (the size the '
                             'model declares)')
        if self.num_classes > MAX_CLASSES:
            raise ModelError('num_classes', self.num_classes,
                             f'num_classes {self.num_classes}: at most {MAX_CLASSES} (uint8 '
                             'class map)')
        rescale = _number('rescale_factor', self.rescale_factor)
        if rescale == 0:
            raise ModelError('rescale_factor', self.rescale_factor,
                             'rescale_factor must be non-zero')
        object.__setattr__(self, 'rescale_factor', rescale)
        object.__setattr__(self, 'image_mean', _triple('image_mean', self.image_mean))
        std = _triple('image_std', self.image_std)
        if 0.0 in std:
            raise ModelError('image_std', self.image_std, f'image_std {list(std)} holds a zero')
        object.__setattr__(self, 'image_std', std)
        if not isinstance(self.output_name, str):
            raise ModelError('output_name', self.output_name, 'output_name must be a string')
        object.__setattr__(self, 'class_names', tuple(str(name) for name in self.class_names))
        object.__setattr__(self, 'colors', _colors(self.colors))

    # ---- named constructors -----------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ModelDescription:
        """Return the preset ``name`` (``'imagenet'``, ``'unit'``) with ``overrides``."""
        return cls.from_mapping({**preset_values(name), **overrides})

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str = 'description'
                     ) -> ModelDescription:
        """
        Build a description from a mapping of field names (unknown keys are refused).

        :param values: field -> value; lists are accepted for tuples.
        :param source: where the values come from, for the error message.
        :raises ModelError: naming the key or field at fault.
        """
        return cls(**_known_fields(values, source))

    def replaced(self, **values: Any) -> ModelDescription:
        """Return a copy with some fields changed (validated again)."""
        return replace(self, **values)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as plain JSON-serialisable values."""
        return {spec.name: _plain(getattr(self, spec.name)) for spec in fields(self)}

    def to_json(self) -> str:
        """Return the description as the JSON object a sidecar or ``seg_ros.description`` holds."""
        return json.dumps(self.to_dict())

    # ---- what the pre-processing computes -----------------------------------------------------
    def network_mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Return (mean, std) in the network's channel order (``channel_order``)."""
        if self.channel_order == 'BGR':
            return self.image_mean[::-1], self.image_std[::-1]
        return self.image_mean, self.image_std


FIELD_NAMES = tuple(spec.name for spec in fields(ModelDescription))


def preset_values(name: str) -> dict[str, Any]:
    """Return the fields a preset sets; ModelError naming ``preset`` if it is unknown."""
    if name not in PRESETS:
        raise ModelError('preset', name,
                         f'preset must be one of {", ".join(PRESETS)}, got {name!r}')
    return dict(PRESETS[name])


def describe_model(model_path: str, metadata: Mapping[str, str] | None = None,
                   overrides: Mapping[str, Any] | None = None, preset: str = '',
                   defaults: Mapping[str, Any] | None = None
                   ) -> tuple[ModelDescription, list[str]]:
    """
    Put together a model's description from its metadata, sidecar, a preset and overrides.

    :param model_path: the network file (its folder is searched for a sidecar).
    :param metadata: the model's ONNX ``metadata_props``.
    :param overrides: fields set by the user (node parameters, CLI flags); they win.
    :param preset: a preset name, '' for none.
    :param defaults: values under everything else (e.g. BGR for seg_ros's fused models).
    :return: the description and one-line notes saying where values came from.
    :raises ModelError: naming the parameter, sidecar key or metadata entry at fault.
    """
    notes: list[str] = []
    values: dict[str, Any] = dict(defaults or {})
    from_metadata = metadata_values(metadata or {})
    if from_metadata:
        values.update(from_metadata)
        notes.append(f'description: {", ".join(sorted(from_metadata))} from the model metadata')
    sidecar_path = find_sidecar(model_path)
    if sidecar_path:
        from_sidecar = read_sidecar(sidecar_path)
        sidecar_preset = from_sidecar.pop('preset', '')
        if sidecar_preset:  # under the sidecar's own values
            values.update(preset_values(sidecar_preset))
        values.update(from_sidecar)
        notes.append(f'description: {", ".join(sorted(from_sidecar)) or "nothing"}'
                     + (f' and preset {sidecar_preset}' if sidecar_preset else '')
                     + f' from {os.path.basename(sidecar_path)}')
    if preset:
        values.update(preset_values(preset))
        notes.append(f'description: preset {preset}')
    values.update(overrides or {})
    return ModelDescription.from_mapping(values, 'overrides'), notes


def find_sidecar(model_path: str) -> str:
    """Return the description file beside ``model_path``, or '' if there is none."""
    stem = os.path.splitext(model_path)[0]
    for suffix in SIDECAR_SUFFIXES:
        if os.path.isfile(stem + suffix):
            return stem + suffix
    hf_config = os.path.join(os.path.dirname(os.path.abspath(model_path)),
                             HF_PREPROCESSOR_CONFIG)
    return hf_config if os.path.isfile(hf_config) else ''


def read_sidecar(path: str) -> dict[str, Any]:
    """
    Read a sidecar description (YAML or JSON object of field names, plus ``preset``).

    A HuggingFace ``preprocessor_config.json`` is read for ``do_rescale``, ``rescale_factor``,
    ``do_normalize``, ``image_mean``, ``image_std``, ``size`` and ``resample``; its other keys
    are ignored. Such a model is run as HuggingFace runs it: ``resize: pil`` with its
    ``resample`` and ``postprocess: logits``.

    :raises ModelError: naming ``path`` and the key at fault.
    """
    try:
        with open(path, encoding='utf-8') as sidecar:
            text = sidecar.read()
    except OSError as error:
        raise ModelError('model_path', path, f'description {path!r} cannot be read: '
                                             f'{error.strerror}') from error
    try:
        if path.endswith('.json'):
            data = json.loads(text)
        else:
            try:
                import yaml
            except ImportError as error:
                raise ModelError('model_path', path,
                                 f'description {path!r} is YAML but PyYAML is not installed '
                                 f'({install_hint("yaml")}); or write it as .seg_ros.json'
                                 ) from error
            data = yaml.safe_load(text)
    except ModelError:
        raise
    except Exception as error:  # json.JSONDecodeError, yaml.YAMLError
        raise ModelError('model_path', path,
                         f'description {path!r} is not valid: {error}') from error
    if not isinstance(data, dict):
        raise ModelError('model_path', path,
                         f'description {path!r} must hold a mapping of keys, got '
                         f'{type(data).__name__}')
    if os.path.basename(path) == HF_PREPROCESSOR_CONFIG:
        return _huggingface_values(data)
    unknown = sorted(set(data) - set(FIELD_NAMES) - {'preset'})
    if unknown:
        raise ModelError('model_path', path,
                         f'description {path!r}: unknown key {unknown[0]!r} (known: preset, '
                         f'{", ".join(FIELD_NAMES)})')
    return dict(data)


def metadata_values(metadata: Mapping[str, str]) -> dict[str, Any]:
    """
    Return the description fields an ONNX model's ``metadata_props`` set.

    :raises ModelError: naming the metadata entry that cannot be read.
    """
    values: dict[str, Any] = {}
    if metadata.get('task') == 'segment':  # ultralytics YOLO-seg exports
        values['task'] = 'yolo_seg'
        if 'imgsz' in metadata:
            size = _literal(metadata, 'imgsz')
            if isinstance(size, (list, tuple)) and len(size) == 2:
                values['input_height'], values['input_width'] = int(size[0]), int(size[1])
        if 'names' in metadata:
            names = _literal(metadata, 'names')
            if isinstance(names, dict):
                values['class_names'] = tuple(names[key] for key in sorted(names))
    for legacy, name in (('seg_ros.num_classes', 'num_classes'),
                         ('seg_ros.input_width', 'input_width'),
                         ('seg_ros.input_height', 'input_height')):
        if legacy in metadata:
            try:
                values[name] = int(metadata[legacy])
            except ValueError as error:
                raise ModelError('model_path', metadata[legacy],
                                 f'metadata {legacy!r} is {metadata[legacy]!r}, not an integer'
                                 ) from error
    for key, text in metadata.items():
        name = key[len(META_PREFIX):] if key.startswith(META_PREFIX) else ''
        if name in FIELD_NAMES and name not in ('num_classes', 'input_width', 'input_height'):
            values[name] = _metadata_value(key, text)
    if META_DESCRIPTION in metadata:
        try:
            described = json.loads(metadata[META_DESCRIPTION])
        except ValueError as error:
            raise ModelError('model_path', META_DESCRIPTION,
                             f'metadata {META_DESCRIPTION!r} is not JSON: {error}') from error
        if not isinstance(described, dict):
            raise ModelError('model_path', META_DESCRIPTION,
                             f'metadata {META_DESCRIPTION!r} must be a JSON object')
        values.update(described)
    return values


def description_metadata(description: ModelDescription) -> dict[str, str]:
    """Return the ``metadata_props`` entry that carries ``description`` inside an ONNX file."""
    return {META_DESCRIPTION: description.to_json()}


# ---- helpers -----------------------------------------------------------------------------------

def _known_fields(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    unknown = sorted(set(values) - set(FIELD_NAMES))
    if unknown:
        raise ModelError(unknown[0], values[unknown[0]],
                         f'{source}: unknown model description key {unknown[0]!r} (known: '
                         f'{", ".join(FIELD_NAMES)})')
    result = dict(values)
    for name in ('image_mean', 'image_std', 'class_names', 'colors'):
        if isinstance(result.get(name), list):
            result[name] = tuple(result[name])
    return result


def _huggingface_values(data: Mapping[str, Any]) -> dict[str, Any]:
    # HF's image processors resize with PIL (antialiased) and post-process the logits at the
    # target size: seg_ros does the same for a model described by one.
    values: dict[str, Any] = {'channel_order': 'RGB', 'resize': 'pil', 'postprocess': 'logits',
                              'resample': data.get('resample', 2)}
    values['rescale_factor'] = (float(data.get('rescale_factor', 1 / 255))
                                if data.get('do_rescale', True) else 1.0)
    if data.get('do_normalize', True) and 'image_mean' in data:
        values['image_mean'] = tuple(data['image_mean'])
        values['image_std'] = tuple(data.get('image_std', (1.0, 1.0, 1.0)))
    size = data.get('size')
    if isinstance(size, dict) and 'height' in size and 'width' in size:
        values['input_width'], values['input_height'] = int(size['width']), int(size['height'])
    if isinstance(data.get('size_divisor'), int):
        values['size_divisor'] = data['size_divisor']
    return values


def _literal(metadata: Mapping[str, str], key: str) -> Any:
    try:
        return ast.literal_eval(metadata[key])
    except (ValueError, SyntaxError) as error:
        raise ModelError('model_path', key,
                         f'metadata {key!r} is {metadata[key]!r}: not readable') from error


def _metadata_value(key: str, text: str) -> Any:
    """Return a ``seg_ros.<field>`` entry's value: JSON where it parses, else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        shown = ', '.join(repr(choice) if not choice else choice for choice in choices)
        raise ModelError(name, value, f'{name} must be one of {shown}, got {value!r}')


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ModelError(name, value, f'{name} must be a number, got {value!r}') from None
    if value != value or value in (float('inf'), float('-inf')):
        raise ModelError(name, value, f'{name} must be finite, got {value!r}')
    return float(value)


def _triple(name: str, value: Any) -> tuple[float, float, float]:
    try:
        numbers = tuple(value)
    except TypeError:
        numbers = ()
    if len(numbers) == 1:
        numbers = numbers * 3
    if len(numbers) != 3:
        raise ModelError(name, value, f'{name} must be 3 numbers (R, G, B) or 1, got {value!r}')
    return tuple(_number(name, number) for number in numbers)


def _colors(value: Any) -> tuple[tuple[int, int, int], ...]:
    colors = []
    for color in value:
        color = tuple(color)
        if len(color) != 3 or not all(isinstance(c, int) and 0 <= c <= 255 for c in color):
            raise ModelError('colors', value, f'colors: {color!r} is not R, G, B in 0-255')
        colors.append(color)
    return tuple(colors)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value
