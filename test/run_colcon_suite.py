"""
``make colcon-test``: the whole suite as a robot's CI runs it, ``colcon build && colcon test``.

This checkout's package is copied into a fresh workspace (``src/seg_ros``, beside a link to
``../shared`` so the tests that read it run), built with colcon against the ros2-extra prefix
(test/ros2_extra.py) in that prefix's Python with seg_ros' rosdep dependencies added, then every
test module runs under ``colcon test`` and ``colcon test-result --verbose`` must show 0 failures
and 0 errors. ``--with-tools`` adds onnx, onnxruntime and xmlschema (no rosdep keys) on
PYTHONPATH so the modules with test models run instead of skipping.
"""

import os
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ros2_extra  # noqa: E402

DOMAIN_ID = 69
TOOLS = ('onnx', 'onnxruntime', 'xmlschema')


def tools_folder(prefix: Path) -> Path:
    """Install the optional test tools once into a folder of their own; return it."""
    folder = prefix.parent / 'colcon-test-tools'
    stamp = folder / '.seg_ros-tools'
    if not stamp.is_file():
        subprocess.run([str(prefix / 'venv' / 'bin' / 'python'), '-m', 'pip', 'install', '-q',
                        '--disable-pip-version-check', '--target', str(folder), *TOOLS],
                       check=True)
        # The prefix venv's own NumPy (which OpenCV was installed against) must stay the one used.
        for path in folder.glob('numpy*'):
            shutil.rmtree(path)
        stamp.touch()
    return folder


def main() -> int:
    """Build, test, print the result summary; return 0 only for 0 failures and 0 errors."""
    reason = ros2_extra.skip_reason()
    if reason:
        print(f'colcon-test: not run: {reason}')
        return 0
    prefix = ros2_extra.build()
    ros2_extra.robot_python(prefix)
    root = Path(tempfile.mkdtemp(prefix='seg_ros_colcon_'))
    ros2_extra.copy_package(root / 'src' / 'seg_ros')
    (root / 'src' / 'shared').symlink_to(ros2_extra.SOURCE.parent)
    environment = ros2_extra.robot_environment(prefix, DOMAIN_ID)
    if '--with-tools' in sys.argv[1:]:
        environment['PYTHONPATH'] += os.pathsep + str(tools_folder(prefix))
    environment['SEG_ROS_TEST_DOMAIN_OFFSET'] = os.environ.get('SEG_ROS_TEST_DOMAIN_OFFSET', '0')
    paths = ['--base-paths', 'src/seg_ros', '--packages-select', 'seg_ros']
    subprocess.run(['colcon', 'build', *paths], cwd=root, env=environment, check=True)
    subprocess.run(['colcon', 'test', *paths, '--event-handlers', 'console_direct+',
                    '--pytest-args', '-rs'], cwd=root, env=environment)
    result = subprocess.run(['colcon', 'test-result', '--test-result-base', 'build/seg_ros',
                             '--verbose'], cwd=root, env=environment, capture_output=True,
                            text=True)
    print(result.stdout[-6000:])
    return 0 if ' 0 errors, 0 failures' in result.stdout else 1


if __name__ == '__main__':
    sys.exit(main())
