"""Shared pytest configuration: paths to the repository and to ../shared."""

import os

import pytest

from ros_env import remove_dead_segments

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO_ROOT), 'shared')
ENET_DIR = os.path.join(SHARED, 'models', 'enet-cityscapes')
IMAGES_DIR = os.path.join(SHARED, 'images')


def pytest_sessionfinish(session, exitstatus) -> None:
    """Remove the Fast DDS segments of processes killed during the run (tests kill some)."""
    remove_dead_segments()


@pytest.fixture(scope='session')
def enet_dir() -> str:
    """Return the folder of the real ENet Cityscapes model, or skip when it is not there."""
    if not os.path.isfile(os.path.join(ENET_DIR, 'enet-model.net')):
        pytest.skip(f'real ENet Cityscapes weights not found in {ENET_DIR} (they are not '
                    'redistributable with seg_ros)')
    return ENET_DIR


@pytest.fixture(scope='session')
def mask_rcnn_export() -> str:
    """Return a random-weight torchvision Mask R-CNN export (cached), or skip."""
    torch_exports = pytest.importorskip('torch_exports')
    try:
        return torch_exports.mask_rcnn_onnx()
    except ImportError as error:
        pytest.skip(f'torch or torchvision cannot be imported: {error}')


@pytest.fixture(scope='session')
def yolo_export() -> str:
    """Return a random-weight YOLO-seg-format export (cached), or skip."""
    torch_exports = pytest.importorskip('torch_exports')
    try:
        return torch_exports.yolo_seg_onnx()
    except ImportError as error:
        pytest.skip(f'torch cannot be imported: {error}')
