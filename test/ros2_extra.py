"""
The ROS 2 parts PyPI lacks (vision_msgs, tf2_ros, launch, the ``ros2`` command line) for tests.

``../shared/ros2-extra`` builds them from source into a cached prefix (default
``~/.cache/seg_ros/ros2-extra``, ``SEG_ROS_ROS2_EXTRA_PREFIX`` to change it; about 95 s the first
time, about a second after). Two ways to use them:

* **vision_msgs, tf2_ros, tf2_msgs, sensor_msgs_py in the project's .venv**: ``make test`` runs
  ``python test/ros2_extra.py --link-venv``, which builds the prefix and makes its packages
  importable by every process of the venv (a ``.pth`` for their Python modules, their libraries,
  ``libtf2.so`` among them, linked into ``.venv/lib``, which the venv's start-up hook puts on
  ``LD_LIBRARY_PATH``). A process started
  with ``SEG_ROS_HIDE_ROS2_EXTRA=1`` does not get them (:data:`HIDE_VARIABLE`): that is how the
  "vision_msgs missing" and "tf2_ros missing" paths are tested for real. A test that needs
  vision_msgs in-process calls :func:`vision_msgs_or_skip`; one that needs tf2_ros skips with
  ``pytest.importorskip`` naming the package.
* **The ros2 command line, colcon and a robot-like Python**: :func:`prefix` (skips the test with
  the reason where ``../shared/ros2-extra`` is absent) and :func:`robot_environment` (the
  variables of ``PREFIX/env.sh`` plus the loopback DDS settings), then run ``ros2 ...`` or
  ``colcon ...`` with that environment. :func:`robot_python` adds seg_ros' own runtime
  dependencies (numpy, OpenCV) to the prefix's venv, as rosdep would on a robot.
"""

import fcntl
import os
from pathlib import Path
import subprocess
import sys

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCE = REPO_ROOT.parent / 'shared' / 'ros2-extra'
PREFIX_VARIABLE = 'SEG_ROS_ROS2_EXTRA_PREFIX'
HIDE_VARIABLE = 'SEG_ROS_HIDE_ROS2_EXTRA'
PTH_NAME = 'seg_ros_ros2_extra.pth'
# What rosdep installs on a robot for seg_ros' exec_depend and test_depend keys (python3-numpy,
# python3-opencv, python3-pytest, python3-hypothesis, ament_flake8 and its plugins ...).
ROBOT_REQUIREMENTS = ('numpy', 'opencv-python<5', 'pytest', 'hypothesis', 'pyyaml', 'flake8',
                      'flake8-quotes', 'flake8-import-order', 'flake8-builtins',
                      'flake8-comprehensions', 'flake8-docstrings', 'pydocstyle')
PYTHON_VERSION = f'python{sys.version_info.major}.{sys.version_info.minor}'


def prefix_path() -> Path:
    """Return where the prefix is (or would be) built."""
    default = Path.home() / '.cache' / 'seg_ros' / 'ros2-extra'
    return Path(os.environ.get(PREFIX_VARIABLE) or default)


def skip_reason() -> str | None:
    """Return why the prefix cannot be built here, or None when it can."""
    if not (SOURCE / 'build.sh').is_file():
        return (f'{SOURCE} is absent: vision_msgs, launch and the ros2 command line are not on '
                'PyPI (on a robot they come with ROS 2)')
    return None


def build() -> Path:
    """
    Build the prefix (idempotent, locked: seconds once built) and return it.

    :raises RuntimeError: with the end of the build log when the build fails.
    """
    path = prefix_path()
    result = subprocess.run(['bash', str(SOURCE / 'build.sh'), str(path)],
                            capture_output=True, text=True, env=_clean_environment())
    if result.returncode != 0:
        raise RuntimeError(f'ros2-extra build into {path} failed:\n'
                           f'{result.stdout[-3000:]}{result.stderr[-3000:]}')
    return path


def prefix() -> Path:
    """Return the built prefix, or skip the calling test with the reason it cannot be built."""
    import pytest

    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    return build()


def site_packages(path: Path) -> Path:
    """Return the prefix's Python packages folder."""
    return path / 'install' / 'lib' / PYTHON_VERSION / 'site-packages'


def vision_msgs_or_skip():
    """Return the ``vision_msgs.msg`` module, or skip the test saying how to get it."""
    import pytest

    try:
        import vision_msgs.msg
    except ImportError as error:
        pytest.skip(f'vision_msgs cannot be imported ({error}): run make test, or '
                    f'{sys.executable} test/ros2_extra.py --link-venv'
                    + (f' ({skip_reason()})' if skip_reason() else ''))
    return vision_msgs.msg


def skip_unless_hidden(module: str, environment: dict[str, str]) -> None:
    """
    Skip the test unless a process started with :data:`HIDE_VARIABLE` really lacks ``module``.

    In a ROS install (colcon test) the ROS packages are on the path of every process: only the
    venv's link (``--link-venv``) can be hidden from one.
    """
    import pytest

    result = subprocess.run([sys.executable, '-c', f'import {module}'],
                            env={**environment, HIDE_VARIABLE: '1'}, capture_output=True,
                            timeout=60)
    if result.returncode == 0:
        pytest.skip(f'{module} is importable from every process here (a ROS install on '
                    f'PYTHONPATH); {HIDE_VARIABLE} only hides the venv link of make test')


def _clean_environment() -> dict[str, str]:
    """Return os.environ without what this venv's start-up hook set for its own libraries."""
    environment = dict(os.environ)
    # Set by the venv's start-up hook: another venv's Python must set its own.
    environment.pop('_ROS_WHEELS_BOOTSTRAP_COMPLETE', None)
    environment.pop('VIRTUAL_ENV', None)
    own_lib = os.path.join(sys.prefix, 'lib')
    parts = [part for part in environment.get('LD_LIBRARY_PATH', '').split(os.pathsep)
             if part and not part.startswith(sys.prefix)]
    if parts:
        environment['LD_LIBRARY_PATH'] = os.pathsep.join(parts)
    else:
        environment.pop('LD_LIBRARY_PATH', None)
    assert own_lib not in environment.get('LD_LIBRARY_PATH', '')
    return environment


def robot_environment(path: Path, domain_id: int, *, workspace: Path | None = None,
                      **loopback) -> dict[str, str]:
    """
    Return the environment of ``source PREFIX/env.sh`` (and a workspace), DDS kept on loopback.

    :param path: the prefix from :func:`prefix`.
    :param domain_id: ROS_DOMAIN_ID.
    :param workspace: a colcon workspace whose ``install`` is put in front (merged or not).
    :param loopback: keyword flags of ``ros_env.ros_variables``.
    :return: the variables for ``subprocess``.
    """
    from ros_env import ros_variables

    environment = _clean_environment()
    environment.pop('PYTHONPATH', None)
    install, venv = path / 'install', path / 'venv'
    ament = [str(install), str(venv)]
    python_path = [str(site_packages(path))]
    library_path = [str(install / 'lib')]
    binaries = [str(install / 'bin'), str(venv / 'bin')]
    if workspace is not None:
        for package in sorted((workspace / 'install').iterdir()):
            if (package / 'share' / 'ament_index').is_dir():
                ament.insert(0, str(package))
                python_path.insert(0, str(package / 'lib' / PYTHON_VERSION / 'site-packages'))
                binaries.insert(0, str(package / 'bin'))
    environment.update({
        'AMENT_PREFIX_PATH': os.pathsep.join(ament),
        'CMAKE_PREFIX_PATH': os.pathsep.join(ament),
        'PYTHONPATH': os.pathsep.join(python_path),
        'LD_LIBRARY_PATH': os.pathsep.join(
            library_path + [p for p in environment.get('LD_LIBRARY_PATH', '').split(os.pathsep)
                            if p]),
        'PATH': os.pathsep.join(binaries + [environment.get('PATH', '/usr/bin:/bin')]),
        'VIRTUAL_ENV': str(venv),
        'PYTHONUNBUFFERED': '1',
    })
    environment.update(ros_variables(domain_id, **loopback))
    return environment


def robot_python(path: Path) -> Path:
    """
    Install seg_ros' runtime and test dependencies into the prefix's venv once; return its Python.

    A robot gets them from rosdep; the optional ones (onnxruntime, openvino, onnx, torch) are
    left out, as on a robot that did not ask for them.
    """
    python = path / 'venv' / 'bin' / 'python'
    import hashlib

    key = hashlib.sha256(' '.join(ROBOT_REQUIREMENTS).encode()).hexdigest()[:12]
    stamp = path / f'.seg_ros-robot-{key}'
    with open(path / '.seg_ros-robot.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.is_file():
            subprocess.run([str(python), '-m', 'pip', 'install', '-q',
                            '--disable-pip-version-check', *ROBOT_REQUIREMENTS],
                           check=True, env=_clean_environment())
            stamp.touch()
    return python


def copy_package(destination: Path) -> Path:
    """
    Copy this checkout's package files (tracked and untracked, not ignored) to ``destination``.

    :return: ``destination``, e.g. ``ws/src/seg_ros`` of a colcon workspace.
    """
    import shutil

    listing = subprocess.run(
        ['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
        cwd=REPO_ROOT, capture_output=True)
    if listing.returncode != 0:
        # Not a git checkout (the package copied into a colcon workspace): copy its files as
        # they are, without what a build or a test run writes.
        shutil.copytree(REPO_ROOT, destination, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
            '.git', '.venv', 'build', 'install', 'log', '*.egg-info', '__pycache__',
            '.pytest_cache', '.hypothesis', 'demo_output'))
        return destination
    listing = listing.stdout.decode()
    for name in filter(None, listing.split('\0')):
        source = REPO_ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is left out
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def link_venv() -> str:
    """Build the prefix and expose its message packages to this venv; return what was done."""
    reason = skip_reason()
    if reason:
        return f'ros2-extra: not linked into {sys.prefix}: {reason}'
    path = build()
    packages = site_packages(path)
    own_site = Path(sys.prefix) / 'lib' / PYTHON_VERSION / 'site-packages'
    # Appended (not prepended): the venv's own packages win; a process that sets the hide
    # variable does not get these modules at all.
    line = (f'import os, sys; os.environ.get({HIDE_VARIABLE!r}) or '
            f'sys.path.append({str(packages)!r})\n')
    (own_site / PTH_NAME).write_text(line)
    own_lib = Path(sys.prefix) / 'lib'
    linked = 0
    for library in sorted((path / 'install' / 'lib').glob('lib*.so')):
        target = own_lib / library.name
        if target.is_symlink() or not target.exists():
            if target.is_symlink():
                target.unlink()
            target.symlink_to(library)
            linked += 1
    return (f'ros2-extra: {packages} importable from {sys.prefix} ({PTH_NAME}), {linked} '
            f'libraries linked into {own_lib}')


if __name__ == '__main__':
    if sys.argv[1:] != ['--link-venv']:
        sys.exit(f'usage: {sys.argv[0]} --link-venv')
    print(link_venv())
