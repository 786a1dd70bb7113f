"""Class names and colours of a segmentation model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
import json
import re
from typing import Any

import numpy as np

from seg_ros.core.errors import ModelError

MAX_CLASSES = 256  # class maps are uint8

_COLOR_SEPARATOR = re.compile(r'\s*,\s*|\s+')


def _read_lines(path: str) -> list[str]:
    """Return the non-blank lines of a UTF-8 text file, stripped."""
    with open(path, encoding='utf-8') as text_file:
        return [line.strip() for line in text_file if line.strip()]


def read_class_names(path: str) -> tuple[str, ...]:
    """
    Read class names, one a line; blank lines and surrounding spaces are ignored.

    :param path: text file.
    :return: the names in class-id order.
    :raises OSError: the file cannot be read.
    :raises ValueError: it holds no name, or is not UTF-8 text.
    """
    names = tuple(_read_lines(path))
    if not names:
        raise ValueError(f'{path!r} holds no class name')
    return names


def read_colors(path: str) -> np.ndarray:
    """
    Read class colours, one ``R,G,B`` line per class (spaces around the commas are allowed).

    :param path: text file.
    :return: (N, 3) uint8 RGB colours in class-id order.
    :raises OSError: the file cannot be read.
    :raises ValueError: a line is not three integers 0-255, or the file is empty.
    """
    colors = []
    for number, line in enumerate(_read_lines(path), start=1):
        fields = _COLOR_SEPARATOR.split(line)
        if len(fields) != 3 or not all(field.isdigit() and int(field) <= 255
                                       for field in fields):
            raise ValueError(f'{path!r} colour {number} is {line!r}: expected R,G,B with each '
                             'an integer 0-255')
        colors.append([int(field) for field in fields])
    if not colors:
        raise ValueError(f'{path!r} holds no colour')
    return np.array(colors, dtype=np.uint8)


def default_names(num_classes: int) -> tuple[str, ...]:
    """Return generated names ``class_0``, ``class_1``, ..."""
    return tuple(f'class_{index}' for index in range(num_classes))


def default_colors(num_classes: int) -> np.ndarray:
    """
    Return a fixed palette of distinct colours, class 0 black.

    The bits of the class id are spread over the high bits of R, G and B in turn, so nearby ids
    get very different colours and all 256 ids get distinct ones.

    :param num_classes: 1 to 256.
    :return: (num_classes, 3) uint8 RGB.
    """
    ids = np.arange(num_classes, dtype=np.int64)
    colors = np.zeros((num_classes, 3), dtype=np.int64)
    for bit in range(8):
        for channel in range(3):
            colors[:, channel] |= ((ids >> (3 * bit + channel)) & 1) << (7 - bit)
    return colors.astype(np.uint8)


@dataclass(frozen=True)
class Labels:
    """Names and RGB colours of the classes, indexed by class id."""

    names: tuple[str, ...]
    colors_rgb: np.ndarray

    def __post_init__(self) -> None:
        """Check the counts and freeze the colour array."""
        colors = np.array(self.colors_rgb, dtype=np.uint8)
        if colors.ndim != 2 or colors.shape[1] != 3:
            raise ValueError(f'colors_rgb must be (N, 3), got shape {colors.shape}')
        if not 1 <= len(self.names) <= MAX_CLASSES:
            raise ValueError(f'names must hold 1 to {MAX_CLASSES} names, got {len(self.names)}')
        if len(self.names) != len(colors):
            raise ValueError(f'names has {len(self.names)} entries but colors_rgb has '
                             f'{len(colors)}')
        colors.flags.writeable = False
        object.__setattr__(self, 'names', tuple(str(name) for name in self.names))
        object.__setattr__(self, 'colors_rgb', colors)

    @property
    def num_classes(self) -> int:
        """Return the number of classes."""
        return len(self.names)

    @classmethod
    def from_files(cls, classes_path: str | None, colors_path: str | None,
                   num_classes: int, description: Any = None) -> Labels:
        """
        Load names and colours for a model with ``num_classes`` classes.

        :param classes_path: names file, or None/'' for the description's names, else
            ``class_<i>`` names.
        :param colors_path: ``R,G,B`` file, or None/'' for the description's colours, else
            :func:`default_colors`.
        :param num_classes: classes the model outputs; each file must hold exactly that many.
        :param description: the model's :class:`~seg_ros.core.model.description.ModelDescription`.
        :return: the labels.
        :raises ModelError: (a ValueError) naming ``classes_path`` or ``colors_path``: the file
            cannot be read or parsed, or its count differs from ``num_classes``.
        """
        if not 1 <= num_classes <= MAX_CLASSES:
            raise ModelError('num_classes', num_classes,
                             f'num_classes must be 1 to {MAX_CLASSES}, got {num_classes}')
        names = _load('classes_path', classes_path, read_class_names, num_classes, 'names')
        colors = _load('colors_path', colors_path, read_colors, num_classes, 'colours')
        if names is None and getattr(description, 'class_names', ()):
            names = _described('class_names', description.class_names, num_classes)
        if colors is None and getattr(description, 'colors', ()):
            colors = np.array(_described('colors', description.colors, num_classes), np.uint8)
        return cls(default_names(num_classes) if names is None else names,
                   default_colors(num_classes) if colors is None else colors)

    def to_json(self) -> str:
        """Return ``[{"id": 0, "name": ..., "color": [r, g, b]}, ...]`` as a JSON string."""
        return json.dumps([{'id': class_id, 'name': name, 'color': color}
                           for class_id, (name, color)
                           in enumerate(zip(self.names, self.colors_rgb.tolist()))])


def _load(parameter: str, path: str | None, reader: Callable[[str], Sequence],
          num_classes: int, what: str) -> Sequence | None:
    """Read ``path`` with ``reader``, check it holds ``num_classes`` entries; None if no path."""
    if not path:
        return None
    try:
        entries = reader(path)
    except (OSError, ValueError) as error:
        raise ModelError(parameter, path, f'{parameter} {path!r}: {error}') from error
    if len(entries) != num_classes:
        raise ModelError(parameter, path,
                         f'{parameter} {path!r} holds {len(entries)} {what} but the model '
                         f'outputs {num_classes} classes')
    return entries


def _described(name: str, entries: Sequence, num_classes: int) -> Sequence:
    """Check that the description's ``name`` holds ``num_classes`` entries."""
    if len(entries) != num_classes:
        raise ModelError(name, len(entries),
                         f'{name} of the model description holds {len(entries)} entries but the '
                         f'model outputs {num_classes} classes')
    return entries
