"""
Build the robot's Python stack for ``make robot-test``: apt's OpenCV and NumPy, a venv on top.

Usage (run with the system Python, standard library only)::

    /usr/bin/python3 test/robot_stack.py VENV

1. The apt packages of package.xml's ``python3-*`` exec_depend keys (python3-opencv,
   python3-numpy, python3-pil, python3-yaml) and python3-venv: installed with apt-get
   (non-interactive, after ``apt-get update``) when missing and this runs as root, else the one
   command to run is printed and it stops.
2. ``/usr/bin/python3 -m venv --system-site-packages VENV``: the apt packages are visible in it,
   as they are to a robot's ``ros2 run``.
3. pip installs the ROS 2 wheels (the Makefile's ``ROS_PACKAGES``), the pip-only keys of
   package.xml (``python3-rosbags-pip``: rosbags) and the test tools (``ROBOT_TEST_TOOLS``),
   constrained so that it can neither replace apt's NumPy nor add opencv-python, ONNX Runtime,
   OpenVINO, onnx or torch; then seg_ros itself with ``--no-deps``.
4. It checks in the venv that ``cv2`` and ``numpy`` are apt's (same versions, from
   ``/usr/lib/python3/dist-packages``) and that none of the optional runtimes imports, and prints
   one line saying what the stack is.
"""

import json
import os
from pathlib import Path
import shlex
import shutil
import subprocess
import sys
import tempfile
from xml.etree import ElementTree

REPO_ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = '/usr/bin/python3'
# Never in the robot venv: the stack is what rosdep installs, nothing more.
ABSENT = ('onnxruntime', 'openvino', 'onnx', 'torch')
BLOCKED = ('opencv-python', 'opencv-python-headless', 'opencv-contrib-python',
           'opencv-contrib-python-headless', 'onnxruntime', 'openvino', 'onnx', 'torch')
CHECK = """
import importlib.util, json
import cv2, numpy
found = {name: importlib.util.find_spec(name) is not None for name in %r}
print(json.dumps({'cv2': [cv2.__version__, cv2.__file__],
                  'numpy': [numpy.__version__, numpy.__file__], 'present': found}))
"""


def package_keys() -> tuple[list[str], list[str]]:
    """Return package.xml's apt packages (python3-* keys) and its pip-only keys' pip names."""
    root = ElementTree.parse(REPO_ROOT / 'package.xml').getroot()
    keys = [element.text for tag in ('exec_depend', 'depend') for element in root.iter(tag)]
    python_keys = [key for key in keys if key.startswith('python3-')]
    apt = [key for key in python_keys if not key.endswith('-pip')]
    pip = [key.removeprefix('python3-').removesuffix('-pip') for key in python_keys
           if key.endswith('-pip')]
    return apt + ['python3-venv'], pip


def missing_apt(packages: list[str]) -> list[str]:
    missing = []
    for package in packages:
        status = subprocess.run(['dpkg-query', '-W', '-f=${Status}', package],
                                capture_output=True, text=True, check=False)
        if 'install ok installed' not in status.stdout:
            missing.append(package)
    return missing


def install_apt(packages: list[str]) -> None:
    """Install the missing apt packages as root, or stop saying the command to run."""
    if shutil.which('dpkg-query') is None:
        sys.exit('robot stack: this is not a Debian/Ubuntu system (no dpkg): apt packages '
                 f'{" ".join(packages)} are needed')
    missing = missing_apt(packages)
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f'robot stack: run: sudo apt-get install -y {" ".join(missing)}')
    environment = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
    print(f'robot stack: apt-get install {" ".join(missing)}', flush=True)
    subprocess.run(['apt-get', 'update', '-q'], check=True, env=environment)
    subprocess.run(['apt-get', 'install', '-y', '-q', '--no-install-recommends', *missing],
                   check=True, env=environment)


def system_versions() -> dict[str, str]:
    result = subprocess.run([SYSTEM_PYTHON, '-c', CHECK % (ABSENT,)], capture_output=True,
                            text=True, check=True)
    found = json.loads(result.stdout)
    return {'cv2': found['cv2'][0], 'numpy': found['numpy'][0]}


def make_venv(venv: Path) -> Path:
    """Create (or re-create, when it does not see the system packages) the venv; its Python."""
    config = venv / 'pyvenv.cfg'
    if config.is_file() and 'include-system-site-packages = true' not in config.read_text():
        shutil.rmtree(venv)
    if not (venv / 'bin' / 'python').exists():
        subprocess.run([SYSTEM_PYTHON, '-m', 'venv', '--system-site-packages', str(venv)],
                       check=True)
    return venv / 'bin' / 'python'


def pip_install(python: Path, requirements: list[str], numpy_version: str,
                blocked: tuple[str, ...] = BLOCKED, **run) -> subprocess.CompletedProcess:
    """
    Install ``requirements`` with pip, keeping apt's NumPy and never installing ``blocked``.

    :param run: keyword arguments of ``subprocess.run`` (e.g. ``capture_output``).
    """
    with tempfile.NamedTemporaryFile('w', suffix='.txt', delete=False) as constraints:
        constraints.write(f'numpy=={numpy_version}\n')
        # An impossible version: pip fails loudly if anything asks for one of these.
        constraints.writelines(f'{name}==0.0.0.0\n' for name in blocked)
    try:
        return subprocess.run([str(python), '-m', 'pip', 'install', '-q',
                               '--disable-pip-version-check', '-c', constraints.name,
                               *requirements], **{'check': True, **run})
    finally:
        os.unlink(constraints.name)


def makefile_list(name: str) -> list[str]:
    """Return the words of the Makefile variable ``name`` (continued lines joined)."""
    text = (REPO_ROOT / 'Makefile').read_text(encoding='utf-8').replace('\\\n', ' ')
    for line in text.splitlines():
        if line.startswith(f'{name} :='):
            return shlex.split(line.split(':=', 1)[1])
    raise ValueError(f'the Makefile has no {name}')


def check(python: Path, expected: dict[str, str]) -> str:
    """Return the one-line summary, or stop saying what is wrong with the venv."""
    result = subprocess.run([str(python), '-c', CHECK % (ABSENT,)], capture_output=True,
                            text=True, check=False)
    if result.returncode:
        sys.exit(f'robot stack: {python} cannot import cv2 and numpy: '
                 f'{result.stderr.strip().splitlines()[-1:]}')
    found = json.loads(result.stdout)
    problems = [f"{name} {found[name][0]} from {found[name][1]}, not apt's {expected[name]}"
                for name in ('cv2', 'numpy')
                if found[name][0] != expected[name]
                or not found[name][1].startswith('/usr/lib/python3/dist-packages')]
    problems += [f'{name} is installed' for name, present in found['present'].items()
                 if present]
    if problems:
        sys.exit(f'robot stack: {python.parent.parent} is not the robot stack: '
                 + '; '.join(problems))
    return (f'robot stack: {python.parent.parent}: OpenCV {expected["cv2"]} and NumPy '
            f'{expected["numpy"]} from apt; no {", ".join(ABSENT)}')


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    venv = Path(argv[0])
    ros_wheels, test_tools = makefile_list('ROS_PACKAGES'), makefile_list('ROBOT_TEST_TOOLS')
    apt, pip_keys = package_keys()
    install_apt(apt)
    expected = system_versions()
    python = make_venv(venv)
    pip_install(python, [*ros_wheels, *pip_keys, *test_tools], expected['numpy'])
    subprocess.run([str(python), '-m', 'pip', 'install', '-q', '--disable-pip-version-check',
                    '--no-deps', '--use-pep517', '-e', str(REPO_ROOT)], check=True)
    print(check(python, expected))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
