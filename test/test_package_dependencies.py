"""
Every module seg_ros imports at run time is declared: package.xml for rosdep, the Makefile's venv.

On a robot, what the node, ``seg-ros`` and ``seg-ros bag`` can import is what ``rosdep install``
put there from package.xml's ``exec_depend`` keys. This reads every ``import`` of the package
(``seg_ros/tools/`` excepted: offline tools with torch, never run by the node) and checks each
third-party module against a table of rosdep keys, and the optional runtimes against a table of
reasons; a new import that is in neither fails here, naming itself.
"""

import ast
import os
from pathlib import Path
import re
import sys
from xml.etree import ElementTree

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE = REPO_ROOT / 'seg_ros'

# Import name -> the rosdep key that provides it on a robot.
ROSDEP_KEYS = {
    'cv2': 'python3-opencv',
    'numpy': 'python3-numpy',
    'PIL': 'python3-pil',
    'yaml': 'python3-yaml',
    'rosbags': 'python3-rosbags-pip',
    # rosbags' own dependencies, imported for MCAP chunks: they come with it.
    'lz4': 'python3-rosbags-pip',
    'backports': 'python3-rosbags-pip',
    'rclpy': 'rclpy',
    'rcl_interfaces': 'rcl_interfaces',
    'sensor_msgs': 'sensor_msgs',
    'std_msgs': 'std_msgs',
    'vision_msgs': 'vision_msgs',
    'diagnostic_msgs': 'diagnostic_msgs',
    'nav_msgs': 'nav_msgs',
    'geometry_msgs': 'geometry_msgs',
    'lifecycle_msgs': 'lifecycle_msgs',
    'tf2_ros': 'tf2_ros_py',
    'ament_index_python': 'ament_index_python',
}
# Imported only when asked for, and said so in one line when missing (seg_ros.core.install_hints).
OPTIONAL = {
    'onnxruntime': 'a faster runtime: the robot venv of docs/robot.md',
    'openvino': 'a faster runtime: the robot venv of docs/robot.md',
    'onnx': 'converting a .net for those runtimes, and OpenCV static input copies',
    'compression': 'compression.zstd is the standard library from Python 3.14',
    'ray': 'seg-ros fleet, many bags on a workstation or cluster: no rosdep key, pip install ray',
}
# The pip name of each rosdep key that is not a ROS package: what the Makefile's venv installs.
PIP_NAMES = {'python3-opencv': 'opencv-python', 'python3-numpy': 'numpy',
             'python3-pil': 'Pillow', 'python3-yaml': 'pyyaml', 'python3-rosbags-pip': 'rosbags'}


def imported_modules() -> dict[str, set[str]]:
    """Return the top-level third-party modules seg_ros imports (tools/ excepted), by file."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob('*.py'):
        if 'tools' in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split('.')[0]
                if top not in sys.stdlib_module_names and top not in ('seg_ros', '__future__'):
                    found.setdefault(top, set()).add(str(path.relative_to(REPO_ROOT)))
    return found


def exec_depends() -> set[str]:
    root = ElementTree.parse(REPO_ROOT / 'package.xml').getroot()
    return {element.text for tag in ('exec_depend', 'depend') for element in root.iter(tag)}


def test_every_run_time_import_is_a_declared_or_optional_module():
    unknown = {module: sorted(files) for module, files in imported_modules().items()
               if module not in ROSDEP_KEYS and module not in OPTIONAL}
    assert not unknown, (
        f'imports with no rosdep key here: {unknown}; add the key to package.xml and to '
        'ROSDEP_KEYS (or, for an optional module with a one-line hint, to OPTIONAL)')


def test_every_rosdep_key_of_an_import_is_an_exec_depend():
    declared = exec_depends()
    needed = {ROSDEP_KEYS[module] for module in imported_modules() if module in ROSDEP_KEYS}
    assert needed - declared == set(), f'package.xml lacks exec_depend {needed - declared}'


def test_optional_runtimes_are_not_rosdep_dependencies():
    # rosdep would pip-install them into the system Python, which PEP 668 refuses.
    assert not exec_depends() & {'python3-onnxruntime-pip', 'python3-onnx', 'python3-torch'}


def test_the_makefile_venv_installs_every_python_dependency():
    makefile = (REPO_ROOT / 'Makefile').read_text(encoding='utf-8')
    match = re.search(r'^RUNTIME_PIP :=(.*?)(?<!\\)\n', makefile, re.S | re.M)
    assert match, 'the Makefile names its runtime pip packages in RUNTIME_PIP'
    runtime = match.group(1)
    for key in exec_depends() & set(PIP_NAMES):
        assert re.search(rf"(^|[\s']){re.escape(PIP_NAMES[key])}\b", runtime), (
            f"make demo's venv lacks {PIP_NAMES[key]} ({key})")


def test_the_hints_name_the_declared_keys():
    from seg_ros.core.install_hints import install_hint

    for module in ('PIL', 'yaml', 'rosbags'):
        assert ROSDEP_KEYS[module] in install_hint(module), module
    for module in ('onnxruntime', 'openvino'):
        assert 'docs/robot.md' in install_hint(module)
        assert os.linesep not in install_hint(module)
