"""
What to install for each optional module, said the same way by every error and warning.

A robot's Python is what rosdep installs from package.xml (apt packages) and refuses ``pip
install`` (PEP 668: Ubuntu 24.04, Debian 12). Each hint names the apt package or rosdep key
where one exists, the robot venv of docs/robot.md (a venv made with
``--system-site-packages`` that colcon builds into) for what only pip has, and the pip name.

API::

    install_hint(module) -> str     # e.g. install_hint('onnxruntime'): one line, no newline
    RUNTIME_MODULES                 # the optional inference runtimes, by backend name
"""

from __future__ import annotations

ROBOT_VENV = 'the robot venv of docs/robot.md (python3 -m venv --system-site-packages)'

_HINTS = {
    'onnxruntime': f'ONNX Runtime: pip install onnxruntime (on a robot: in {ROBOT_VENV}; '
                   'rosdep key python3-onnxruntime-pip)',
    'openvino': f'OpenVINO: pip install openvino (on a robot: in {ROBOT_VENV}; no rosdep key)',
    'onnx': f'onnx: pip install onnx (on a robot: apt install python3-onnx, or in {ROBOT_VENV})',
    'PIL': 'Pillow: apt install python3-pil (rosdep key python3-pil, in package.xml; '
           'pip install Pillow)',
    'yaml': 'PyYAML: apt install python3-yaml (rosdep key python3-yaml, in package.xml; '
            'pip install pyyaml)',
    'rosbags': f'rosbags: rosdep key python3-rosbags-pip (in package.xml), or pip install '
               f'rosbags in {ROBOT_VENV}',
    'torch': f'torch: pip install torch (a tool, never needed by the node: on a robot in '
             f'{ROBOT_VENV})',
}
# Backend name -> the module it imports.
RUNTIME_MODULES = {'onnxruntime': 'onnxruntime', 'openvino': 'openvino'}


def install_hint(module: str) -> str:
    """
    Return one line saying how to install ``module`` (its import name) here and on a robot.

    :param module: ``'onnxruntime'``, ``'openvino'``, ``'onnx'``, ``'PIL'``, ``'yaml'``,
        ``'rosbags'``, ``'torch'``; any other name gets ``pip install <name>``.
    """
    return _HINTS.get(module, f'{module}: pip install {module}')
