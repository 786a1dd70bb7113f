"""Where seg_ros finds its installed files (models, config) and a model's label files."""

import glob
import os
import sys

PACKAGE_NAME = 'seg_ros'
EMBEDDED_MODEL = os.path.join('models', 'enet-synth', 'enet-synth.onnx')


def share_directory() -> str:
    """
    Return the folder holding seg_ros's ``models/``, ``config/``, ``launch/`` and ``rviz/``.

    On a robot that is the ament share directory (``share/seg_ros`` of the colcon
    install); in a virtual environment with an editable install it is the source tree; a
    plain pip install puts the files under ``<prefix>/share/seg_ros``.
    """
    try:
        from ament_index_python.packages import get_package_share_directory, PackageNotFoundError
        try:
            return get_package_share_directory(PACKAGE_NAME)
        except (PackageNotFoundError, OSError, KeyError):
            pass  # not in an ament index (a virtual environment): look beside the sources
    except ImportError:
        pass
    source_tree = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    candidates = [source_tree, os.path.join(sys.prefix, 'share', PACKAGE_NAME)]
    for candidate in candidates:
        if os.path.isfile(os.path.join(candidate, EMBEDDED_MODEL)):
            return candidate
    return source_tree


def executable_path(executable: str) -> str:
    """
    Return the path of one of seg_ros's executables (``camera_source``, ``segmentation_node``...).

    In a virtual environment the console scripts sit beside its Python; in a colcon install they
    are in ``<prefix>/lib/seg_ros`` (where ``ros2 run`` finds them), found through the ament index.
    """
    beside = os.path.join(os.path.dirname(sys.executable), executable)
    if os.path.exists(beside):
        return beside
    try:
        from ament_index_python.packages import get_package_prefix, PackageNotFoundError
        try:
            return os.path.join(get_package_prefix(PACKAGE_NAME), 'lib', PACKAGE_NAME, executable)
        except (PackageNotFoundError, OSError, KeyError):
            pass
    except ImportError:
        pass
    return beside


def embedded_model_path() -> str:
    """Return the path of the ENet model trained by seg_ros on synthetic street scenes."""
    return os.path.join(share_directory(), EMBEDDED_MODEL)


def default_label_paths(model_path: str) -> tuple[str, str]:
    """
    Find the class-name and colour files that sit beside a model.

    A file is taken when it is the only ``*classes.txt`` (or ``*colors.txt``) in the
    model's folder, which covers both ``classes.txt`` and the classic ENet tutorial's
    ``enet-classes.txt``.

    :param model_path: the network file.
    :return: (classes_path, colors_path); an entry is '' where no single such file exists.
    """
    folder = os.path.dirname(os.path.abspath(model_path))
    found = []
    for suffix in ('classes.txt', 'colors.txt'):
        matches = sorted(glob.glob(os.path.join(glob.escape(folder), '*' + suffix)))
        found.append(matches[0] if len(matches) == 1 else '')
    return found[0], found[1]
