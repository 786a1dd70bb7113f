"""
``seg-ros segment --depth``: a depth file beside an image to ``<name>_points.ply``.

The PLY is checked point by point (position, class colour, label) against the per-pixel
reference of ``depth_scene``.
"""

import subprocess

import cv2
import numpy as np
import pytest

import depth_scene as scene
from models import class_weights, make_scores_model
from seg_ros.paths import executable_path

SEG_ROS = executable_path('seg-ros')
COLORS_RGB = scene.COLORS_RGB
INTRINSICS = f'{scene.FX},{scene.FY},{scene.CX},{scene.CY}'


@pytest.fixture(scope='module')
def model(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp('depth_model')
    path = make_scores_model(str(folder / 'tiny.onnx'), num_classes=4, scale=1 / 255)
    (folder / 'classes.txt').write_text('\n'.join(scene.CLASS_NAMES) + '\n')
    (folder / 'colors.txt').write_text(
        '\n'.join(','.join(str(v) for v in color) for color in COLORS_RGB) + '\n')
    return path


@pytest.fixture(scope='module')
def image(tmp_path_factory) -> str:
    weights, _ = class_weights(4)
    path = tmp_path_factory.mktemp('depth_image') / 'scene.png'
    cv2.imwrite(str(path), scene.scene_image_bgr(weights / 2))
    return str(path)


def run_cli(model: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SEG_ROS, 'segment', '--model', model, '--width', str(scene.WIDTH),
                           '--height', str(scene.HEIGHT), '--backend', 'opencv', '--quiet',
                           *args], capture_output=True, text=True, timeout=300)


def write_depth(folder, encoding: str, suffix: str) -> str:
    raw = scene.encoded_depth(encoding)
    path = str(folder / f'depth{suffix}')
    if suffix == '.npy':
        np.save(path, raw)
    else:
        assert cv2.imwrite(path, raw)
    return path


@pytest.mark.parametrize('encoding,suffix', [('16UC1', '.png'), ('16UC1', '.tiff'),
                                             ('32FC1', '.tiff'), ('32FC1', '.npy')])
def test_depth_file_gives_the_reference_points(model, image, tmp_path, encoding, suffix):
    depth = write_depth(tmp_path, encoding, suffix)
    out = tmp_path / 'out'
    result = run_cli(model, image, '--depth', depth, '--intrinsics', INTRINSICS,
                     '--depth-range', *map(str, scene.DEPTH_RANGE), '--cloud-stride', '2',
                     '-o', str(out))
    assert result.returncode == 0, result.stderr
    assert f'wrote {out / "scene_points.ply"}' in result.stdout
    class_map = cv2.imread(str(out / 'scene_classmap.png'), cv2.IMREAD_UNCHANGED)
    _, classes = scene.scene()
    assert np.array_equal(class_map, classes), 'the scene is painted in prototype colours'
    lines, vertices = scene.read_ply((out / 'scene_points.ply').read_bytes())
    assert lines[1] == 'format binary_little_endian 1.0'
    assert list(vertices.dtype.names) == \
        ['x', 'y', 'z', 'red', 'green', 'blue', 'label']
    expected = scene.reference_points(scene.encoded_depth(encoding), classes, 2, COLORS_RGB)
    assert len(vertices) == len(expected)
    np.testing.assert_allclose(np.stack([vertices['x'], vertices['y'], vertices['z']], axis=1),
                               np.array([row[:3] for row in expected]), rtol=1e-6, atol=1e-6)
    colours = (vertices['red'].astype(int) << 16) | (vertices['green'].astype(int) << 8) | \
        vertices['blue']
    assert colours.tolist() == [row[3] for row in expected]
    assert vertices['label'].tolist() == [row[4] for row in expected]


@pytest.mark.parametrize('layout', ['calibration', 'message'])
def test_camera_info_yaml_gives_the_same_points(model, image, tmp_path, layout):
    depth = write_depth(tmp_path, '16UC1', '.png')
    k = [scene.FX, 0, scene.CX, 0, scene.FY, scene.CY, 0, 0, 1]
    if layout == 'calibration':
        # camera_calibration's file, at twice the resolution: the intrinsics are scaled.
        k2 = [value * 2 if index in (0, 2, 4, 5) else value for index, value in enumerate(k)]
        text = (f'image_width: {scene.WIDTH * 2}\nimage_height: {scene.HEIGHT * 2}\n'
                f'camera_name: test\ncamera_matrix:\n  rows: 3\n  cols: 3\n  data: {k2}\n'
                'distortion_model: plumb_bob\n')
    else:
        text = f'width: {scene.WIDTH}\nheight: {scene.HEIGHT}\nk: {k}\n'
    info = tmp_path / 'camera_info.yaml'
    info.write_text(text)
    out = tmp_path / 'out'
    result = run_cli(model, image, '--depth', depth, '--camera-info', str(info), '-o', str(out),
                     '--depth-range', *map(str, scene.DEPTH_RANGE))
    assert result.returncode == 0, result.stderr
    _, vertices = scene.read_ply((out / 'scene_points.ply').read_bytes())
    expected = scene.reference_points(scene.encoded_depth('16UC1'), scene.scene()[1], 1,
                                      COLORS_RGB)
    np.testing.assert_allclose(np.stack([vertices['x'], vertices['y'], vertices['z']], axis=1),
                               np.array([row[:3] for row in expected]), rtol=1e-5, atol=1e-6)


def test_bad_depth_inputs_say_why(model, image, tmp_path):
    depth = write_depth(tmp_path, '16UC1', '.png')
    eight_bit = tmp_path / 'eight.png'
    cv2.imwrite(str(eight_bit), np.zeros((48, 64), np.uint8))
    cases = [
        ((image, '--depth', depth), 2, '--depth needs the camera'),
        ((image, '--depth', depth, depth, '--intrinsics', INTRINSICS), 2,
         'give one depth file per image'),
        ((image, '--depth', depth, '--intrinsics', '40,42'), 1, 'four numbers'),
        ((image, '--depth', str(eight_bit), '--intrinsics', INTRINSICS), 1,
         'an 8-bit PNG is not depth'),
        ((image, '--depth', str(tmp_path / 'missing.png'), '--intrinsics', INTRINSICS), 1,
         'not a readable image'),
        ((image, '--depth', depth, '--intrinsics', INTRINSICS, '--depth-range', '5', '1'), 2,
         'depth-range'),
        ((image, '--depth', depth, '--camera-info', str(tmp_path / 'none.yaml')), 1,
         'not a readable YAML file'),
    ]
    for args, status, message in cases:
        result = run_cli(model, *args, '-o', str(tmp_path / 'bad'))
        assert result.returncode == status, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert 'Traceback' not in result.stderr
    wide = tmp_path / 'wide.png'
    cv2.imwrite(str(wide), np.zeros((48, 100), np.uint16))
    result = run_cli(model, image, '--depth', str(wide), '--intrinsics', INTRINSICS,
                     '-o', str(tmp_path / 'bad'))
    assert result.returncode == 1 and 'is not the 64x48 camera' in result.stderr, result.stderr
