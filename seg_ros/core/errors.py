"""Errors of the segmentation core: each names the configuration field at fault and its value."""

from __future__ import annotations

from typing import Any


class ModelError(ValueError):
    """
    The model or what goes with it (backend, target, sizes, labels) cannot be used.

    ``parameter`` names the configuration field at fault and ``value`` is the value it had.
    """

    def __init__(self, parameter: str, value: Any, message: str) -> None:
        """
        Build the error.

        :param parameter: name of the parameter at fault, e.g. ``'model_path'``.
        :param value: the value it had.
        :param message: the whole human-readable message (it should name both).
        """
        super().__init__(message)
        self.parameter = parameter
        self.value = value


class FrameError(ValueError):
    """
    One frame cannot be segmented: the model's output for it is unusable.

    NaN or Inf in it, or a shape other than at start-up. The next frame may be fine; callers
    skip this one and say why.
    """
