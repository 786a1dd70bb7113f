"""
``seg-ros segment`` as a new user meets it in the first hour at a desk.

Folders, clashing names, videos cut to a selection, Ctrl-C, bad output folders, sizes the
network cannot take, ``convert`` without torch or onnx.
"""

import os
import re
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from seg_ros.core.backends import cuda_problems
from seg_ros.core.segmenter import Segmenter, SegmenterConfig
from seg_ros.paths import executable_path

SEG_ROS = executable_path('seg-ros')
TINY = ('--width', '64', '--height', '48', '--backend', 'opencv')


@pytest.fixture(scope='module')
def model(tmp_path_factory) -> str:
    # Built with onnx: where it is missing (a robot's stack) the tests of this tiny model skip,
    # the embedded model's run.
    from models import make_scores_model

    folder = tmp_path_factory.mktemp('desk_model')
    return make_scores_model(str(folder / 'tiny.onnx'), num_classes=4, scale=1 / 255)


def make_frame(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Return a BGR picture of smooth random blobs (every seed another)."""
    coarse = np.random.default_rng(seed).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([SEG_ROS, *args], capture_output=True, text=True, timeout=timeout)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """Return the single stderr line of a refused run, checking it is one line, no traceback."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in result.stderr, result.stderr
    assert 'model:' not in result.stdout, 'refused only after the model loaded'
    return lines[0]


def test_inputs_of_one_name_from_two_folders_get_their_folder_in_front(model, tmp_path):
    frames = {}
    for folder, seed in (('left', 1), ('right', 2)):
        (tmp_path / folder).mkdir()
        frames[folder] = make_frame(80, 60, seed=seed)
        cv2.imwrite(str(tmp_path / folder / 'frame.png'), frames[folder])
    out = tmp_path / 'out'
    result = run_cli('segment', str(tmp_path / 'left' / 'frame.png'),
                     str(tmp_path / 'right' / 'frame.png'), '-o', str(out), '--model', model,
                     *TINY)
    assert result.returncode == 0, result.stderr
    assert '2 inputs are named frame: their outputs are named left_frame_*' in result.stderr
    assert not (out / 'frame_classmap.png').exists()
    segmenter = Segmenter(SegmenterConfig(model, input_width=64, input_height=48,
                                          backend='opencv'))
    maps = {}
    for folder, frame in frames.items():
        maps[folder] = cv2.imread(str(out / f'{folder}_frame_classmap.png'), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(maps[folder],
                                      segmenter.run(frame, encoding='bgr8').class_map_full)
    assert (maps['left'] != maps['right']).any(), 'one overwrote the other'


def test_a_folder_is_its_images_and_what_is_skipped_is_named(model, tmp_path):
    folder = tmp_path / 'shots'
    folder.mkdir()
    for name, seed in (('b.jpg', 3), ('a.png', 4)):
        cv2.imwrite(str(folder / name), make_frame(72, 40, seed=seed))
    (folder / 'notes.txt').write_text('not an image\n')
    (folder / 'older').mkdir()
    cv2.imwrite(str(folder / 'older' / 'c.png'), make_frame(72, 40, seed=5))
    out = tmp_path / 'out'
    result = run_cli('segment', str(folder), '-o', str(out), '--model', model, *TINY)
    assert result.returncode == 0, result.stderr
    assert re.search(r'skipped 2 .*: notes\.txt, older/', result.stderr), result.stderr
    written = re.findall(r'^wrote .*/(\w+)_classmap\.png$', result.stdout, re.MULTILINE)
    assert written == ['a', 'b'], 'in name order'
    assert not (out / 'c_classmap.png').exists(), 'subfolders are not read'
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert 'nothing to segment' in run_cli('segment', str(empty), '-o', str(out),
                                           '--model', model).stderr


@pytest.mark.parametrize('case', ['file', 'under_a_file', 'missing_inputs', 'alpha'])
def test_what_cannot_work_is_refused_in_one_line_before_the_model_loads(model, tmp_path, case):
    image = tmp_path / 'frame.png'
    cv2.imwrite(str(image), make_frame(32, 24))
    arguments = {
        'file': [str(image), '-o', str(image)],
        'under_a_file': [str(image), '-o', str(image / 'out')],
        'missing_inputs': [str(tmp_path / 'a.png'), str(tmp_path / 'b.mp4'), '-o',
                           str(tmp_path / 'out')],
        'alpha': [str(image), '-o', str(tmp_path / 'out'), '--alpha', '1.5'],
    }[case]
    result = run_cli('segment', *arguments, '--model', model)
    expected = {'file': f'-o {image}: is a file, not a folder',
                'under_a_file': f'-o {image / "out"}: cannot be made',
                'missing_inputs': 'nothing to segment',
                'alpha': '--alpha 1.5 is outside [0, 1]'}[case]
    if case == 'missing_inputs':  # one line an input, then why nothing runs
        assert result.returncode == 2 and 'Traceback' not in result.stderr
        assert result.stderr.count('no such file or folder') == 2
        assert expected in result.stderr and 'model:' not in result.stdout
        return
    assert expected in one_line_error(result)


def write_numbered_video(path, frames: int, fps: float) -> None:
    """Frame i is uniform grey 20 + 5 i, so a written frame tells which input frame it was."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), fps, (96, 64))
    for index in range(frames):
        writer.write(np.full((64, 96, 3), 20 + 5 * index, np.uint8))
    writer.release()


def frame_means(path) -> tuple[list[float], float]:
    """Return each frame's mean grey level and the frame rate of a video."""
    capture = cv2.VideoCapture(str(path))
    means = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        means.append(float(frame.mean()))
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return means, fps


def frame_numbers(path, source) -> tuple[list[int], float]:
    """Return which frame of ``source`` each frame of ``path`` is (the nearest grey level)."""
    levels = np.array(frame_means(source)[0])
    means, fps = frame_means(path)
    return [int(np.argmin(np.abs(levels - mean))) for mean in means], fps


@pytest.mark.parametrize('selection, expected', [
    ((), list(range(40))),
    (('--start', '1', '--end', '3', '--every', '2'), list(range(10, 31, 2))),
    (('--start', '1.05', '--every', '3', '--max-frames', '4'), [11, 14, 17, 20]),
    (('--end', '0.5'), [0, 1, 2, 3, 4, 5]),
])
def test_video_frames_are_chosen_as_bag_chooses_them(model, tmp_path, selection, expected):
    video = tmp_path / 'clip.avi'
    write_numbered_video(video, 40, 10.0)
    out = tmp_path / 'out'
    result = run_cli('segment', str(video), '-o', str(out), '--model', model, *TINY,
                     '--alpha', '0', '--no-legend', *selection)
    assert result.returncode == 0, result.stderr
    numbers, fps = frame_numbers(out / 'clip_overlay.mp4', video)
    assert numbers == expected
    every = int(selection[selection.index('--every') + 1]) if '--every' in selection else 1
    assert fps == pytest.approx(10.0 / every, abs=0.01), 'the selection plays in real time'
    assert f'{len(expected)}/{len(expected)} frames' in result.stderr
    assert sorted(os.listdir(out)) == ['clip_overlay.mp4'], 'no partial file left'


def test_a_selection_past_the_end_is_an_error_for_that_video(model, tmp_path):
    video = tmp_path / 'clip.avi'
    write_numbered_video(video, 10, 10.0)
    result = run_cli('segment', str(video), '-o', str(tmp_path / 'out'), '--model', model,
                     *TINY, '--start', '5')
    assert result.returncode == 1
    assert 'no frame in the selection (the video: 1.0 s at 10 frames/s)' in result.stderr
    assert os.listdir(tmp_path / 'out') == []


def test_ctrl_c_exits_130_and_leaves_no_cut_off_video(tmp_path):
    video = tmp_path / 'drive.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 10.0, (320, 240))
    for index in range(120):
        writer.write(make_frame(320, 240, seed=index % 7))
    writer.release()
    out = tmp_path / 'out'
    # The embedded model at 1024x512: a few frames a second here, so the run is mid-video.
    process = subprocess.Popen([SEG_ROS, 'segment', str(video), '-o', str(out), '--width',
                                '1024', '--height', '512'], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    partial = out / '.drive_overlay.partial.mp4'
    deadline = time.monotonic() + 120
    while not partial.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert partial.exists(), 'the video is written under its partial name'
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert 'Traceback' not in stderr
    assert f'interrupted at {video}' in stderr
    assert os.listdir(out) == [], 'neither the partial nor a cut-off video under its name'


def test_convert_needs_no_torch_and_says_what_to_install_without_onnx(tmp_path):
    def script(hidden: str) -> str:
        return (f'import sys; sys.modules["{hidden}"] = None; from seg_ros.cli import main; '
                'sys.exit(main(sys.argv[1:]))')

    helped = subprocess.run([sys.executable, '-c', script('torch'), 'convert', '--help'],
                            capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0, helped.stderr
    assert '--scores-only' in helped.stdout
    assert 'no torch needed' in ' '.join(helped.stdout.split())
    converted = subprocess.run([sys.executable, '-c', script('onnx'), 'convert',
                                'enet-model.net', '-o', str(tmp_path / 'enet.onnx')],
                               capture_output=True, text=True, timeout=120)
    assert converted.returncode == 2
    assert converted.stderr.startswith('seg-ros convert: needs onnx, which is not installed: '
                                       'apt install python3-onnx')
    assert 'Traceback' not in converted.stderr and len(converted.stderr.splitlines()) == 1


def test_the_embedded_model_runs_at_512x256_and_one_side_keeps_its_aspect(tmp_path):
    image = tmp_path / 'street.png'
    cv2.imwrite(str(image), make_frame(160, 120, seed=9))
    default = run_cli('segment', str(image), '-o', str(tmp_path / 'out'), '--quiet')
    assert default.returncode == 0, default.stderr
    assert 'input 512x256' in default.stdout
    wide = run_cli('segment', str(image), '-o', str(tmp_path / 'out'), '--width', '768')
    assert wide.returncode == 0, wide.stderr
    assert 'input 768x384' in wide.stdout
    assert "input 768x384: input_height 384 keeps the aspect ratio of the model's 512x256" \
        in wide.stdout


def test_a_size_the_network_cannot_take_names_the_nearest_that_work(tmp_path):
    image = tmp_path / 'street.png'
    cv2.imwrite(str(image), make_frame(160, 120, seed=9))
    line = one_line_error(run_cli('segment', str(image), '-o', str(tmp_path / 'out'),
                                  '--width', '100', '--height', '50'))
    assert line == ('seg-ros: --width x --height 100x50: enet-synth.onnx takes only multiples of '
                    "8 (its description's size_divisor); the nearest that work: 96x48 or 104x56")


def test_require_cuda_runs_on_cuda_or_refuses_in_one_line(tmp_path):
    image = tmp_path / 'street.png'
    cv2.imwrite(str(image), make_frame(64, 48, seed=9))
    result = run_cli('segment', str(image), '-o', str(tmp_path / 'out'), '--require-cuda')
    if any(problem is None for problem in cuda_problems().values()):
        assert result.returncode == 0, result.stderr
        assert 'cuda' in result.stdout.splitlines()[0].lower()
    else:
        line = result.stderr.strip().splitlines()[-1]
        assert result.returncode == 2 and 'Traceback' not in result.stderr
        assert line.startswith('seg-ros: --require-cuda is set but no backend can use CUDA')


def test_help_lists_every_exit_status():
    result = run_cli('segment', '--help')
    assert result.returncode == 0
    statuses = re.findall(r'^  (\d+)\s', result.stdout.split('exit status:')[1], re.MULTILINE)
    assert statuses == ['0', '1', '2', '130']
    for flag in ('--start', '--end', '--every', '--max-frames', '--require-cuda', '--width'):
        assert flag in result.stdout
