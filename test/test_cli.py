"""The offline ``seg-ros`` command: images, a short generated video, bad inputs, class shares."""

import re
import subprocess

import cv2
import numpy as np
import pytest

from models import (ambiguous_pixels, make_frame, make_scores_model, reference_normalised_scores,
                    reference_scores)
from seg_ros.core.model.description import IMAGENET_MEAN, IMAGENET_STD
from seg_ros.core.segmenter import Segmenter, SegmenterConfig
from seg_ros.paths import executable_path

# Beside the venv's Python, or in the colcon install's lib/seg_ros (colcon test).
SEG_ROS = executable_path('seg-ros')
CLASSES = ['road', 'car', 'person', 'sky']


@pytest.fixture(scope='module')
def model(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp('cli_model')
    path = make_scores_model(str(folder / 'tiny.onnx'), num_classes=4, scale=1 / 255)
    (folder / 'classes.txt').write_text('\n'.join(CLASSES) + '\n')
    (folder / 'colors.txt').write_text('128,64,128\n0,0,142\n220,20,60\n70,130,180\n')
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SEG_ROS, *args], capture_output=True, text=True, timeout=300)


def class_shares(stdout: str) -> dict[str, dict[str, float]]:
    """Return each input's class shares table: input -> class -> share."""
    tables = {}
    for table in re.split(r'^class shares of ', stdout, flags=re.MULTILINE)[1:]:
        heading, _, rows = table.partition('\n')
        tables[heading.removesuffix(' (% of pixels):')] = {
            name: float(share)
            for name, share in re.findall(r'^\s+(\S+)\s+([\d.]+) %$', rows, re.MULTILINE)}
    return tables


def test_images_write_overlay_mask_and_class_map(model, tmp_path):
    inputs = []
    for index, (width, height) in enumerate([(160, 96), (75, 41)]):
        path = tmp_path / f'frame{index}.png'
        cv2.imwrite(str(path), make_frame(width, height, seed=index))
        inputs.append((str(path), width, height))
    out = tmp_path / 'out'
    result = run_cli('segment', *[path for path, _, _ in inputs], '-o', str(out),
                     '--model', model, '--width', '64', '--height', '48', '--backend', 'opencv')
    assert result.returncode == 0, result.stderr
    for index, (_, width, height) in enumerate(inputs):
        class_map = cv2.imread(str(out / f'frame{index}_classmap.png'), cv2.IMREAD_UNCHANGED)
        mask = cv2.imread(str(out / f'frame{index}_mask.png'))
        overlay = cv2.imread(str(out / f'frame{index}_overlay.png'))
        assert class_map.shape == (height, width) and class_map.dtype == np.uint8
        assert class_map.max() < len(CLASSES)
        assert mask.shape == (height, width, 3)
        assert overlay.shape[0] == height and overlay.shape[1] > width, 'legend panel missing'
    tables = class_shares(result.stdout)
    assert list(tables) == [path for path, _, _ in inputs], 'one table an input, in order'
    for shares in tables.values():
        assert set(shares) <= set(CLASSES) and len(shares) >= 2
        assert sum(shares.values()) == pytest.approx(100.0, abs=0.05)
    assert tables[inputs[0][0]] != tables[inputs[1][0]]


def test_images_write_the_confidence_of_each_pixels_class(model, tmp_path):
    """<stem>_confidence.png: round(255 * softmax of the winning class), the class map's size."""
    frame = make_frame(64, 48, seed=3)
    cv2.imwrite(str(tmp_path / 'frame.png'), frame)
    result = run_cli('segment', str(tmp_path / 'frame.png'), '-o', str(tmp_path / 'out'),
                     '--model', model, '--width', '64', '--height', '48', '--backend', 'opencv')
    assert result.returncode == 0, result.stderr
    assert 'frame_confidence.png' in result.stdout
    confidence = cv2.imread(str(tmp_path / 'out' / 'frame_confidence.png'), cv2.IMREAD_UNCHANGED)
    assert confidence.shape == (48, 64) and confidence.dtype == np.uint8
    scores = reference_scores(frame, 4, width=64, height=48, scale=1 / 255)
    exponentials = np.exp(scores - scores.max(axis=0))
    expected = np.rint(255 * exponentials.max(axis=0) / exponentials.sum(axis=0))
    difference = np.abs(confidence.astype(int) - expected.astype(int))
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01


def test_no_legend_keeps_the_image_size(model, tmp_path):
    path = tmp_path / 'frame.png'
    cv2.imwrite(str(path), make_frame(80, 60, seed=5))
    result = run_cli('segment', str(path), '-o', str(tmp_path), '--model', model,
                     '--width', '64', '--height', '48', '--no-legend', '--backend', 'opencv')
    assert result.returncode == 0, result.stderr
    assert cv2.imread(str(tmp_path / 'frame_overlay.png')).shape == (60, 80, 3)


def test_video_writes_an_overlay_video_at_the_input_rate(model, tmp_path):
    video = tmp_path / 'clip.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 12.0, (96, 64))
    for index in range(10):
        writer.write(make_frame(96, 64, seed=index))
    writer.release()
    out = tmp_path / 'out'
    result = run_cli('segment', str(video), '-o', str(out), '--model', model,
                     '--width', '64', '--height', '48', '--backend', 'opencv', '--no-legend')
    assert result.returncode == 0, result.stderr
    capture = cv2.VideoCapture(str(out / 'clip_overlay.mp4'))
    assert capture.isOpened()
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0, abs=0.01)
    frames = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        assert frame.shape == (64, 96, 3)
        frames += 1
    assert frames == 10
    assert '10/10 frames' in result.stderr
    assert '\r' not in result.stderr, 'a progress bar in a log'
    assert sum(class_shares(result.stdout)[str(video)].values()) == pytest.approx(100.0, abs=0.05)


def test_bad_inputs_are_reported_and_the_others_still_processed(model, tmp_path):
    good = tmp_path / 'good.png'
    cv2.imwrite(str(good), make_frame(64, 48, seed=1))
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'not a jpeg at all')
    not_video = tmp_path / 'notes.txt'
    not_video.write_text('hello\n')
    missing = tmp_path / 'missing.png'
    result = run_cli('segment', str(missing), str(broken), str(good), str(not_video),
                     '-o', str(tmp_path / 'out'), '--model', model, '--width', '64',
                     '--height', '48', '--backend', 'opencv')
    assert result.returncode == 1
    assert f'{missing}: no such file or folder' in result.stderr
    assert f'{broken}: not a readable image' in result.stderr
    assert f'{not_video}: not a readable image or video' in result.stderr
    assert (tmp_path / 'out' / 'good_overlay.png').is_file()


def test_missing_model_is_a_clear_error(tmp_path):
    path = tmp_path / 'frame.png'
    cv2.imwrite(str(path), make_frame(32, 32))
    result = run_cli('segment', str(path), '--model', str(tmp_path / 'nope.onnx'))
    assert result.returncode == 2
    assert f'--model {tmp_path / "nope.onnx"}: no such file' in result.stderr
    assert 'model_path' not in result.stderr and 'Traceback' not in result.stderr
    assert 'model:' not in result.stdout, 'checked before any model loads'


@pytest.mark.parametrize('backend', ['opencv', 'onnxruntime', 'openvino'])
def test_preset_imagenet_gives_the_reference_and_the_segmenter_class_map(tmp_path, backend):
    pytest.importorskip(backend if backend != 'opencv' else 'cv2')
    bias_scale = 1 / 255 / 0.225
    model_path = make_scores_model(str(tmp_path / 'imagenet.onnx'), num_classes=6,
                                   width=64, height=48, scale=bias_scale)
    frame = make_frame(128, 96, seed=31)
    cv2.imwrite(str(tmp_path / 'street.png'), frame)
    # No --width/--height: the model declares 64x48.
    result = run_cli('segment', str(tmp_path / 'street.png'), '-o', str(tmp_path / 'out'),
                     '--model', model_path, '--preset', 'imagenet', '--backend', backend)
    assert result.returncode == 0, result.stderr
    assert 'input 64x48' in result.stdout
    class_map = cv2.imread(str(tmp_path / 'out' / 'street_classmap.png'), cv2.IMREAD_UNCHANGED)
    segmenter = Segmenter(SegmenterConfig(model_path, preset='imagenet', backend=backend))
    node_map = segmenter.run(frame, encoding='bgr8').class_map_full
    np.testing.assert_array_equal(class_map, node_map)
    scores = reference_normalised_scores(frame, 6, width=64, height=48, rescale=1 / 255,
                                         mean=IMAGENET_MEAN, std=IMAGENET_STD, scale=bias_scale)
    expected = cv2.resize(np.argmax(scores, axis=0).astype(np.uint8), (128, 96),
                          interpolation=cv2.INTER_NEAREST_EXACT)
    near_tie = cv2.resize(ambiguous_pixels(scores, 1e-2).astype(np.uint8), (128, 96),
                          interpolation=cv2.INTER_NEAREST_EXACT).astype(bool)
    assert len(np.unique(expected)) >= 3
    assert not ((class_map != expected) & ~near_tie).any()
    if backend != 'opencv':
        return  # the flags are the same on every backend: checked once
    # The mean and std as flags give the same map; without the std it differs.
    flags = run_cli('segment', str(tmp_path / 'street.png'), '-o', str(tmp_path / 'flags'),
                    '--model', model_path, '--mean', *map(str, IMAGENET_MEAN),
                    '--std', *map(str, IMAGENET_STD), '--backend', backend)
    assert flags.returncode == 0, flags.stderr
    np.testing.assert_array_equal(
        cv2.imread(str(tmp_path / 'flags' / 'street_classmap.png'), cv2.IMREAD_UNCHANGED),
        class_map)
    plain = run_cli('segment', str(tmp_path / 'street.png'), '-o', str(tmp_path / 'plain'),
                    '--model', model_path, '--mean', *map(str, IMAGENET_MEAN),
                    '--backend', backend)
    assert plain.returncode == 0, plain.stderr
    assert (cv2.imread(str(tmp_path / 'plain' / 'street_classmap.png'),
                       cv2.IMREAD_UNCHANGED) != expected).mean() > 0.01


def test_bad_model_option_names_the_flag_value(model, tmp_path):
    path = tmp_path / 'frame.png'
    cv2.imwrite(str(path), make_frame(32, 24))
    result = run_cli('segment', str(path), '-o', str(tmp_path / 'out'), '--model', model,
                     '--output-name', 'logits')
    assert result.returncode == 2
    assert "--output-name 'logits' is not an output" in result.stderr
    assert 'output_name' not in result.stderr
    assert 'scores' in result.stderr  # the outputs the model has
    assert len(result.stderr.splitlines()) == 1
