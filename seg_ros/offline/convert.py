"""
``seg-ros convert``: the conversion, kept apart from its flags (:mod:`.convert_options`).

The conversion itself is :func:`seg_ros.tools.convert.convert_command` (NumPy and onnx, no torch);
only :func:`run_convert` imports it, so a missing package is one line saying what to install.
"""

from __future__ import annotations

import argparse
import sys

from seg_ros.offline.convert_options import INSTALL_HINT

_CONVERTER_MODULES = ('onnx',)


def run_convert(args: argparse.Namespace) -> int:
    """Run the conversion; without its packages, say what to install (exit status 2)."""
    try:
        from seg_ros.tools.convert import convert_command
        return convert_command(args)
    except ImportError as error:
        missing = (getattr(error, 'name', None) or '').split('.')[0]
        if missing not in _CONVERTER_MODULES:
            raise
        print(f'seg-ros convert: needs {missing}, which is not installed: {INSTALL_HINT}',
              file=sys.stderr)
        return 2
