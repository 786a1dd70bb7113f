"""
The package installs what ROS needs: a wheel built from this checkout holds the share folder.

A colcon ament_python build runs the same setup.py ``data_files``, so a wheel shows what a
robot's ``install/share/seg_ros`` will hold: package.xml, launch files, config, rviz config,
models, the ament index marker, and the console scripts ``ros2 run`` finds.
"""

import configparser
import importlib
import importlib.util
from pathlib import Path
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
import zipfile

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARE_FOLDERS = ('launch', 'config', 'rviz', 'models')
# What a build never needs; the rest of the checkout is copied so the build sees what git would.
NOT_COPIED = ('.git', '.venv', 'build', 'install', 'log', '*.egg-info', '__pycache__',
              '.pytest_cache', '.hypothesis', 'demo_output', 'results', '*.whl', '.whl', '.gl')
CONSOLE_SCRIPTS = ('segmentation_node', 'camera_source', 'seg-ros')
EXEC_DEPENDS = ('rclpy', 'sensor_msgs', 'std_msgs', 'diagnostic_msgs', 'vision_msgs')


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    """Build a wheel from a copy of the checkout (an in-tree build would write build/ here)."""
    if importlib.util.find_spec('wheel') is None:
        try:
            importlib.import_module('setuptools.command.bdist_wheel')
        except ImportError:
            import setuptools
            # rosdep installs it on a robot (test_depend python3-wheel); a bare venv may lack it.
            pytest.skip('building a wheel needs the wheel package (rosdep key python3-wheel) or '
                        f'setuptools >= 70.1; this Python has setuptools {setuptools.__version__}')
    source = tmp_path_factory.mktemp('source') / 'seg_ros'
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(*NOT_COPIED))
    output = tmp_path_factory.mktemp('wheel')
    result = subprocess.run(
        [sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
         '--disable-pip-version-check', '-q', '-w', str(output), str(source)],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    wheels = list(output.glob('seg_ros-*.whl'))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as archive:
        yield archive


def _data(wheel: zipfile.ZipFile) -> set[str]:
    """Paths the wheel installs under the prefix (<prefix>/share/...)."""
    names = set()
    for name in wheel.namelist():
        parts = name.split('/', 3)
        if len(parts) == 4 and parts[0].endswith('.data') and parts[1] == 'data':
            names.add(parts[2] + '/' + parts[3])
    return names


def _dist_info(wheel: zipfile.ZipFile, file_name: str) -> str:
    name = next(name for name in wheel.namelist()
                if name.split('/')[0].endswith('.dist-info') and name.endswith('/' + file_name))
    return wheel.read(name).decode()


def test_share_folder_holds_the_ros_files(wheel):
    data = _data(wheel)
    assert {
        'share/seg_ros/package.xml',
        'share/seg_ros/launch/segment.launch.py',
        'share/seg_ros/launch/multi_camera.launch.py',
        'share/seg_ros/config/segment.yaml',
        'share/seg_ros/config/fastdds_loopback.xml',
        'share/seg_ros/rviz/segment.rviz',
    } <= data
    assert 'share/ament_index/resource_index/packages/seg_ros' in data, (
        'without the marker, ros2 launch / ros2 run cannot find the package')


def test_share_folder_mirrors_the_checkout(wheel):
    data = _data(wheel)
    for folder in SHARE_FOLDERS:
        for path in (REPO_ROOT / folder).rglob('*'):
            if path.is_file() and '__pycache__' not in path.parts:
                relative = path.relative_to(REPO_ROOT).as_posix()
                assert 'share/seg_ros/' + relative in data, f'{relative} is not installed'


def test_share_folder_ships_a_model(wheel):
    models = [path for path in (REPO_ROOT / 'models').rglob('*') if path.is_file()]
    if not models:
        pytest.skip('models/ is empty in this checkout')
    assert any(name.startswith('share/seg_ros/models/') for name in _data(wheel))


def test_console_scripts_exist_and_resolve(wheel):
    entry_points = configparser.ConfigParser()
    entry_points.read_string(_dist_info(wheel, 'entry_points.txt'))
    scripts = dict(entry_points['console_scripts'])
    assert set(CONSOLE_SCRIPTS) <= set(scripts)
    for name in CONSOLE_SCRIPTS:
        module_name, _, function = scripts[name].partition(':')
        module = importlib.import_module(module_name.strip())
        assert callable(getattr(module, function.strip())), scripts[name]


def test_wheel_holds_no_tests_or_benchmarks(wheel):
    top_levels = {name.split('/')[0] for name in wheel.namelist()}
    assert 'seg_ros' in top_levels
    assert not top_levels & {'test', 'bench', 'launch', 'config'}


def test_package_xml_is_format_3_with_the_runtime_dependencies(wheel):
    root = ElementTree.fromstring(
        wheel.read(next(name for name in wheel.namelist()
                        if name.endswith('/share/seg_ros/package.xml'))))
    assert root.tag == 'package'
    assert root.get('format') == '3'
    assert root.findtext('name') == 'seg_ros'
    metadata = _dist_info(wheel, 'METADATA')
    assert f'Version: {root.findtext("version")}' in metadata.splitlines()
    assert root.findtext('license')
    assert root.find('maintainer') is not None and root.find('maintainer').get('email')
    exec_depends = {element.text for tag in ('exec_depend', 'depend')
                    for element in root.iter(tag)}
    assert set(EXEC_DEPENDS) <= exec_depends
    # A robot that only segments must not get Qt and OGRE with rosdep.
    assert 'rviz2' not in exec_depends
    assert root.findtext('export/build_type') == 'ament_python'
