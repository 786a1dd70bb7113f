"""The inference runtimes usable on this machine, for the tests that run on each of them."""

import pytest

from seg_ros.core.backends import available_backends

#: Every backend seg_ros can use here: opencv always, onnxruntime and openvino where installed.
INSTALLED = [name for name, problem in available_backends().items() if problem is None]
#: The installed runtimes that run any ONNX file (OpenCV DNN lacks some operators), best first.
ONNX_RUNTIMES = [name for name in ('openvino', 'onnxruntime') if name in INSTALLED]


def runtimes_or_skip(names: list[str], what: str) -> list[str]:
    """
    Return ``names``, or skip the calling test when it is empty: a loop over none checks nothing.

    :param names: backends a test is about to loop over.
    :param what: what the loop checks, for the skip reason.
    """
    if not names:
        pytest.skip(f'no runtime here to check {what} on (pip install onnxruntime openvino)')
    return names
