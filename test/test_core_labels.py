"""Tests of seg_ros.core.model.labels: class name and colour files, Labels."""

import json

import numpy as np
import pytest

from seg_ros.core.errors import ModelError
from seg_ros.core.model.labels import (default_colors, Labels, read_class_names, read_colors)


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding='utf-8')
    return str(path)


def test_read_class_names_ignores_blank_lines_and_spaces(tmp_path):
    path = write(tmp_path, 'classes.txt', 'Road  \n\n  Sky\nTraffic Light\n\n')
    assert read_class_names(path) == ('Road', 'Sky', 'Traffic Light')


def test_read_class_names_rejects_an_empty_file(tmp_path):
    with pytest.raises(ValueError, match='no class name'):
        read_class_names(write(tmp_path, 'classes.txt', '\n  \n'))


def test_read_colors_parses_rgb_lines(tmp_path):
    path = write(tmp_path, 'colors.txt', '0,0,0\n81, 0 ,81\n\n255,255,255  \n')
    colors = read_colors(path)
    assert colors.dtype == np.uint8
    np.testing.assert_array_equal(colors, [[0, 0, 0], [81, 0, 81], [255, 255, 255]])


@pytest.mark.parametrize('line', ['1,2', '1,2,3,4', '1,2,256', 'a,b,c', '-1,0,0', '1.5,2,3'])
def test_read_colors_rejects_bad_lines_naming_them(tmp_path, line):
    path = write(tmp_path, 'colors.txt', f'0,0,0\n{line}\n')
    with pytest.raises(ValueError, match='colour 2') as raised:
        read_colors(path)
    assert repr(line) in str(raised.value)


def test_from_files_reads_both_files(tmp_path):
    classes = write(tmp_path, 'classes.txt', 'Road\nSky\n')
    colors = write(tmp_path, 'colors.txt', '81,0,81\n70,130,180\n')
    labels = Labels.from_files(classes, colors, 2)
    assert labels.names == ('Road', 'Sky')
    np.testing.assert_array_equal(labels.colors_rgb, [[81, 0, 81], [70, 130, 180]])
    assert labels.num_classes == 2


@pytest.mark.parametrize('missing', [None, ''])
def test_from_files_generates_names_and_palette(missing):
    labels = Labels.from_files(missing, missing, 5)
    assert labels.names == ('class_0', 'class_1', 'class_2', 'class_3', 'class_4')
    np.testing.assert_array_equal(labels.colors_rgb, default_colors(5))


def test_default_palette_is_distinct_for_all_256_ids():
    colors = default_colors(256)
    assert colors.shape == (256, 3) and colors.dtype == np.uint8
    assert len({tuple(color) for color in colors.tolist()}) == 256
    np.testing.assert_array_equal(colors[0], [0, 0, 0])


@pytest.mark.parametrize('parameter, names, colors', [
    ('classes_path', 'a\nb\nc\n', '1,1,1\n2,2,2\n'),
    ('colors_path', 'a\nb\n', '1,1,1\n2,2,2\n3,3,3\n'),
])
def test_from_files_count_mismatch_names_the_parameter_path_and_counts(
        tmp_path, parameter, names, colors):
    paths = {'classes_path': write(tmp_path, 'classes.txt', names),
             'colors_path': write(tmp_path, 'colors.txt', colors)}
    with pytest.raises(ModelError) as raised:
        Labels.from_files(paths['classes_path'], paths['colors_path'], 2)
    error = raised.value
    assert isinstance(error, ValueError)
    assert error.parameter == parameter and error.value == paths[parameter]
    assert parameter in str(error) and paths[parameter] in str(error)
    assert '3' in str(error) and '2 classes' in str(error)


def test_from_files_unreadable_or_bad_file_names_the_parameter(tmp_path):
    with pytest.raises(ModelError) as raised:
        Labels.from_files(str(tmp_path / 'absent.txt'), None, 2)
    assert raised.value.parameter == 'classes_path'
    with pytest.raises(ModelError) as raised:
        Labels.from_files(None, write(tmp_path, 'colors.txt', 'red\ngreen\n'), 2)
    assert raised.value.parameter == 'colors_path'
    with pytest.raises(ModelError) as raised:
        Labels.from_files(str(tmp_path), None, 2)
    assert raised.value.parameter == 'classes_path'


def test_labels_are_immutable_and_checked():
    labels = Labels(('a', 'b'), np.array([[1, 2, 3], [4, 5, 6]], np.uint8))
    with pytest.raises(ValueError):
        labels.colors_rgb[0, 0] = 9
    with pytest.raises(ValueError, match='2 entries'):
        Labels(('a', 'b'), np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match='shape'):
        Labels(('a',), np.zeros((1, 4), np.uint8))


def test_to_json_lists_id_name_and_colour():
    labels = Labels(('Road', 'Sky'), np.array([[81, 0, 81], [70, 130, 180]], np.uint8))
    text = labels.to_json()
    assert text.startswith('[{"id": 0, "name": "Road", "color": [81, 0, 81]}')
    assert json.loads(text) == [{'id': 0, 'name': 'Road', 'color': [81, 0, 81]},
                                {'id': 1, 'name': 'Sky', 'color': [70, 130, 180]}]
