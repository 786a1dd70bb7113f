"""``make gpu-check`` on a machine without an NVIDIA GPU: it says so and exits 2, doing nothing."""

import os
import shutil
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO_ROOT, 'bench', 'gpu_check.py')
GPU_VENV = os.path.join(REPO_ROOT, '.venv-gpu')


def without_nvidia_smi(tmp_path) -> dict:
    """Return an environment whose PATH holds no nvidia-smi (an empty folder)."""
    empty = tmp_path / 'bin'
    empty.mkdir()
    return dict(os.environ, PATH=str(empty))


def test_gpu_check_without_gpu_exits_2_and_measures_nothing(tmp_path):
    venv_existed = os.path.exists(GPU_VENV)
    result = subprocess.run([sys.executable, SCRIPT], cwd=REPO_ROOT,
                            env=without_nvidia_smi(tmp_path), capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2, result.stderr
    assert 'no NVIDIA GPU here' in result.stderr and 'nothing measured' in result.stderr
    assert result.stdout == ''  # no table
    assert os.path.exists(GPU_VENV) == venv_existed  # nothing installed


@pytest.mark.skipif(shutil.which('make') is None, reason='make is not installed')
def test_make_gpu_check_target_runs_the_script(tmp_path):
    make = shutil.which('make')
    result = subprocess.run([make, '-s', 'gpu-check', f'PYTHON={sys.executable}'],
                            cwd=REPO_ROOT, env=without_nvidia_smi(tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert 'gpu-check: no NVIDIA GPU here' in result.stderr


def test_onnxruntime_build_follows_the_driver_cuda_major():
    sys.path.insert(0, os.path.dirname(SCRIPT))
    try:
        import gpu_check
    finally:
        sys.path.pop(0)
    assert gpu_check.runtime_requirements((12, 4)) == (['onnxruntime-gpu[cuda,cudnn]'],
                                                       ['tensorrt-cu12'])
    assert gpu_check.runtime_requirements((13, 0))[0] == ['onnxruntime-gpu[cuda,cudnn]']
    assert gpu_check.runtime_requirements((11, 8)) == (['onnxruntime-gpu==1.18.1'], [])
