"""Linters as tests, with ament's settings (ament_flake8 configuration, pep257 ignores)."""

import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINTED = ['seg_ros', 'test', 'launch', 'bench', 'setup.py']
# ament_pep257's default ignore list.
PEP257_IGNORE = 'D100,D101,D102,D103,D104,D105,D106,D107,D203,D212,D404'


def _existing(paths: list[str]) -> list[str]:
    return [path for path in paths if os.path.exists(os.path.join(REPO_ROOT, path))]


@pytest.mark.linter
def test_flake8() -> None:
    result = subprocess.run(
        [sys.executable, '-m', 'flake8', '--config', 'setup.cfg', *_existing(LINTED)],
        cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, 'flake8 found problems:\n' + result.stdout + result.stderr


@pytest.mark.linter
def test_pep257() -> None:
    result = subprocess.run(
        [sys.executable, '-m', 'pydocstyle', '--convention=pep257',
         f'--add-ignore={PEP257_IGNORE}', *_existing(LINTED)],
        cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, 'pep257 found problems:\n' + result.stdout + result.stderr
