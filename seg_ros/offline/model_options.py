"""
The model options of ``seg-ros segment`` and ``seg-ros bag``: flags, checks, the segmenter.

The flags come from :data:`seg_ros.core.options.MODEL_OPTIONS`, the table the node's parameters
follow too; an error of the core names the node's parameter (``input_width``) and is shown with
the flag instead (``--width``, :func:`flag_text`).
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from seg_ros.core.errors import ModelError
from seg_ros.core.options import MODEL_OPTIONS, ModelOption
from seg_ros.core.segmenter import Segmenter, SegmenterConfig
from seg_ros.paths import default_label_paths, embedded_model_path

# Options whose value is a file that must exist (checked before the model loads).
_FILE_OPTIONS = ('model_path', 'config_path', 'classes_path', 'colors_path')
# A name that is one word (backend, task...) is also a word of a sentence: it is the option only
# where a value or a verdict follows it ("backend 'x'", "target is cpu"), not in "no backend can".
_VALUE_AFTER = r"(?=\s*=|\s+'|\s+must\b|\s+is\b|\s+and\b|\s+-?\d|\s+(?:{choices})\b)"


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the model, device, instance and overlay options, one flag a table entry."""
    group = parser.add_argument_group('model options (the node parameter of the same name)')
    for option in MODEL_OPTIONS:
        if option.flag:
            _add_option(group, option)
    group.add_argument('--alpha', type=float, default=0.5,
                       help='mask weight in the overlay, 0-1 (default %(default)s)')


def _add_option(group, option: ModelOption) -> None:
    help_text = f'{option.help_text} [{option.name}]'
    if option.kind is bool:
        group.add_argument(option.flag, dest=option.name, action='store_true', help=help_text)
        return
    extra = {'metavar': option.metavar} if option.metavar else {}
    if option.many:
        extra['nargs'] = '+'
    if option.choices:
        extra['choices'] = option.choices
        if option.default:
            help_text += ' (default: %(default)s)'
    group.add_argument(option.flag, dest=option.name, type=option.kind, default=option.default,
                       help=help_text, **extra)


def flag_text(text: str) -> str:
    """
    Return a message with the options' names written as the command line's flags.

    ``input_width 100`` becomes ``--width 100``, ``output_name='x'`` ``--output-name 'x'``,
    ``backend 'openvino'`` ``--backend 'openvino'``; "no backend can run" stays as it is, and
    so does a list of description keys ``(known: ...)``.
    """
    parts = re.split(r'(\(known: [^)]*\))', text)
    parts[::2] = [_flags_in(part) for part in parts[::2]]
    return ''.join(parts)


def _flags_in(text: str) -> str:
    for option in sorted(MODEL_OPTIONS, key=lambda item: -len(item.name)):
        if not option.flag:
            continue
        pattern = rf'(?<![\w\-./]){option.name}'
        if '_' in option.name:
            pattern += r'(?![\w\-])'
        else:
            choices = '|'.join(re.escape(choice) for choice in option.choices) or '(?!)'
            pattern += _VALUE_AFTER.format(choices=choices)
        text = re.sub(pattern + r'(?P<equals>=)?',
                      lambda match, flag=option.flag: flag + (' ' if match['equals'] else ''),
                      text)
    return text


def check_model_arguments(args: argparse.Namespace) -> str | None:
    """Return why the model options cannot work (before anything loads), or None."""
    for name in _FILE_OPTIONS:
        path = getattr(args, name)
        if path and not os.path.isfile(path):
            flag = next(option.flag for option in MODEL_OPTIONS if option.name == name)
            what = 'a folder, not a file' if os.path.isdir(path) else 'no such file'
            return f'{flag} {path}: {what}'
    if not 0.0 <= args.alpha <= 1.0:
        return f'--alpha {args.alpha} is outside [0, 1]'
    for name, flag in (('input_width', '--width'), ('input_height', '--height')):
        if getattr(args, name) < 0:
            return f"{flag} {getattr(args, name)} is below 0 (0: the model's size)"
    if args.require_cuda and args.target == 'cpu':
        return '--require-cuda with --target cpu: leave one out'
    return None


def segmenter_config(args: argparse.Namespace) -> SegmenterConfig:
    """Return the configuration the model options give (the embedded ENet by default)."""
    values = {option.name: getattr(args, option.name) for option in MODEL_OPTIONS
              if option.flag}
    values = {name: tuple(value) if isinstance(value, list) else value
              for name, value in values.items()}
    # Not a flag: the command sets it where it writes confidence maps (a class-id model on
    # OpenVINO then gets the graph's confidence output).
    values['confidence'] = bool(getattr(args, 'confidence', False))
    values['model_path'] = values['model_path'] or embedded_model_path()
    default_classes, default_colors = default_label_paths(values['model_path'])
    values['classes_path'] = values['classes_path'] or default_classes
    values['colors_path'] = values['colors_path'] or default_colors
    return SegmenterConfig(**values)


def make_segmenter(args: argparse.Namespace) -> Segmenter:
    """
    Check the model options, then load the model on its backend.

    :raises ModelError: naming the flag at fault (``--width``, not ``input_width``).
    """
    reason = check_model_arguments(args)
    if reason:
        raise ModelError('', None, reason)
    try:
        return Segmenter(segmenter_config(args))
    except ModelError as error:
        raise ModelError(error.parameter, error.value, flag_text(str(error))) from None


def print_model(segmenter: Segmenter) -> None:
    """Print what runs: the model, its backend, notes and warnings."""
    print(f'model: {segmenter.config.model_path} ({segmenter.backend.describe()})')
    for note in segmenter.notes:
        print(f'  {note}')
    if segmenter.model_file != segmenter.config.model_path:
        print(f'running its conversion {segmenter.model_file}')
    for warning in segmenter.warnings:
        print(f'seg-ros: warning: {flag_text(warning)}', file=sys.stderr)
    if segmenter.verification:
        print(f'output check: {segmenter.verification}')
    if segmenter.fast_agreement is not None:
        print(f'precision fast ({segmenter.backend.precision}): '
              f'{100 * segmenter.fast_agreement:.2f} % of the warm-up frame agrees with f32')
