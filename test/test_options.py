"""
One source for each choice and each model option: the core's table, the node, the CLI agree.

Also the rules the table's options follow in the core (input size: ``size_divisor``, one side
keeping the aspect ratio) and the CLI's helpers (flags in errors, unique output names,
progress lines).
"""

import argparse
from dataclasses import fields
import io
import json

import pytest

from seg_ros.core import options
from seg_ros.core.backends import opening
from seg_ros.core.backends.opening import plan_model
from seg_ros.core.errors import ModelError
from seg_ros.core.model.description import ModelDescription
from seg_ros.core.segmenter import DESCRIPTION_FIELDS, SegmenterConfig
from seg_ros.offline.inputs import unique_stems
from seg_ros.offline.model_options import add_model_arguments, flag_text, segmenter_config
from seg_ros.offline.progress import Progress
from seg_ros.paths import embedded_model_path


def test_every_description_key_is_an_option_or_sidecar_only():
    keys = {spec.name for spec in fields(ModelDescription)}
    described = {option.name for option in options.MODEL_OPTIONS if option.describes}
    assert described | set(options.DESCRIPTION_ONLY_KEYS) == keys
    assert not described & set(options.DESCRIPTION_ONLY_KEYS)
    assert set(DESCRIPTION_FIELDS) == described


def test_every_option_is_a_segmenter_config_field_with_its_default():
    config = {spec.name: spec.default for spec in fields(SegmenterConfig)}
    for option in options.MODEL_OPTIONS:
        assert option.name in config, option.name
        if option.name != 'model_path':  # required in the configuration
            assert config[option.name] == option.default, option.name


def test_the_node_parameters_follow_the_table():
    parameters = pytest.importorskip('seg_ros.ros.parameters',
                                     reason='needs rcl_interfaces (ROS 2)')
    for option in options.MODEL_OPTIONS:
        spec = parameters.PARAMETERS_BY_NAME.get(option.name)
        if not option.node:
            assert spec is None, option.name
            continue
        assert spec is not None, option.name
        assert list(spec.default) == list(option.default) if option.many else \
            spec.default == option.default, option.name
        assert type(spec.default) is (list if option.many else option.kind), option.name
        expected = (('',) + option.choices) if option.choices and not option.default else \
            option.choices
        assert tuple(spec.choices) == expected, option.name
    assert parameters.BACKENDS is options.BACKENDS
    assert parameters.TARGETS is options.TARGETS
    assert parameters.PRECISIONS is options.PRECISIONS


def test_the_choices_are_defined_once():
    assert opening.BACKENDS is options.BACKENDS
    assert opening.TARGETS is options.TARGETS
    assert opening.PRECISIONS is options.PRECISIONS


def test_the_cli_flags_come_from_the_table():
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    flags = {action.dest: action.option_strings[0] for action in parser._actions
             if action.option_strings and action.dest != 'help'}
    table = {option.name: option.flag for option in options.MODEL_OPTIONS if option.flag}
    assert flags == {**table, 'alpha': '--alpha'}
    args = parser.parse_args(['--width', '640', '--mean', '0.5', '--require-cuda', '--task',
                              'maskrcnn', '--instance-classes', 'car', 'person'])
    config = segmenter_config(args)
    assert (config.input_width, config.image_mean, config.require_cuda, config.task,
            config.instance_classes) == (640, (0.5,), True, 'maskrcnn', ('car', 'person'))
    assert config.model_path == embedded_model_path()
    with pytest.raises(SystemExit):
        parser.parse_args(['--target', 'tpu'])


@pytest.mark.parametrize('message, shown', [
    ("output_name 'logits' is not an output of 'm.onnx'",
     "--output-name 'logits' is not an output of 'm.onnx'"),
    ('input_width=5 is outside [16, 8192]', '--width 5 is outside [16, 8192]'),
    ('target is cpu but require_cuda is set', '--target is cpu but --require-cuda is set'),
    ("backend 'openvino' cannot be used; use backend opencv",
     "--backend 'openvino' cannot be used; use --backend opencv"),
    ('no backend can run x', 'no backend can run x'),
    ("unknown key 'x' (known: task, input_width, preset)",
     "unknown key 'x' (known: task, input_width, preset)"),
    ("model_path '/data/model_path.onnx': no such file",
     "--model '/data/model_path.onnx': no such file"),
])
def test_errors_name_the_flags(message, shown):
    assert flag_text(message) == shown


@pytest.fixture(scope='module')
def dynamic_model(tmp_path_factory) -> str:
    """Write a model of any input size whose sidecar says 320x160 and multiples of 16."""
    from models import make_scores_model  # onnx: skips where it is missing

    folder = tmp_path_factory.mktemp('divisor')
    path = make_scores_model(str(folder / 'net.onnx'), num_classes=3)
    (folder / 'net.seg_ros.json').write_text(json.dumps(
        {'input_width': 320, 'input_height': 160, 'size_divisor': 16}))
    return path


@pytest.mark.parametrize('asked, size', [
    ({}, (320, 160)), ({'input_width': 640}, (640, 320)), ({'input_height': 96}, (192, 96)),
    ({'input_width': 224}, (224, 112)),
    ({'input_width': 64, 'input_height': 64}, (64, 64))])
def test_one_side_keeps_the_aspect_ratio_in_multiples_of_the_divisor(dynamic_model, asked,
                                                                     size):
    plan = plan_model(dynamic_model, asked)
    assert (plan.description.input_width, plan.description.input_height) == size
    assert plan.shape == (1, 3, size[1], size[0])
    if len(asked) == 1:
        assert any('keeps the aspect ratio' in note for note in plan.notes)


@pytest.mark.parametrize('asked, parameter, nearest', [
    ({'input_width': 100, 'input_height': 50}, 'input_width', '96x48 or 112x64'),
    ({'input_width': 320, 'input_height': 170}, 'input_height', '320x160 or 320x176'),
    ({'input_width': 100}, 'input_width', '96x48 or 112x48'),
])
def test_a_size_off_the_divisor_is_refused_with_the_nearest(dynamic_model, asked, parameter,
                                                            nearest):
    with pytest.raises(ModelError) as error:
        plan_model(dynamic_model, asked)
    assert error.value.parameter == parameter
    assert str(error.value).endswith("takes only multiples of 16 (its description's "
                                     f'size_divisor); the nearest that work: {nearest}')


def test_one_side_of_a_model_that_states_no_size_is_refused(tmp_path):
    from models import make_scores_model  # onnx: skips where it is missing

    path = make_scores_model(str(tmp_path / 'free.onnx'), num_classes=3)
    with pytest.raises(ModelError) as error:
        plan_model(path, {'input_height': 120})
    assert error.value.parameter == 'input_width'
    assert 'input_height 120 without input_width' in str(error.value)
    assert plan_model(path, {}).description.input_width == opening.DEFAULT_INPUT_SIZE[0]


def test_the_embedded_model_is_described_at_512x256_in_multiples_of_8():
    plan = plan_model(embedded_model_path())
    assert (plan.description.input_width, plan.description.input_height) == (512, 256)
    assert plan.description.size_divisor == 8


def test_output_names_are_unique():
    notes = []
    stems = unique_stems(['a/frame.png', 'b/frame.png', 'c/x.png', 'c/x.jpg', 'a_frame.png',
                          'd/y.png'], notes)
    assert stems['a/frame.png'] == 'a_frame' and stems['b/frame.png'] == 'b_frame'
    assert stems['c/x.png'] == 'x_png' and stems['c/x.jpg'] == 'x_jpg'
    assert stems['d/y.png'] == 'y'
    assert len(set(stems.values())) == len(stems), stems
    assert stems['a_frame.png'] == 'a_frame-2'
    assert any('2 inputs are named frame' in note for note in notes)
    assert any('a_frame.png: its outputs are named a_frame-2_*' in note for note in notes)


def test_progress_in_a_log_is_lines_with_the_time_left():
    stream = io.StringIO()
    progress = Progress(4, stream=stream, terminal=False, started=0.0)
    for _ in range(3):
        progress.tick()
    progress.finish()
    text = stream.getvalue()
    assert '\r' not in text
    lines = text.splitlines()
    assert lines[0].startswith('  1/4 frames') and lines[0].endswith(' left')
    assert lines[-1].startswith('  3/4 frames')


def test_progress_on_a_terminal_is_one_bar():
    stream = io.StringIO()
    progress = Progress(2, stream=stream, terminal=True)
    progress.tick()
    progress.tick()
    progress.finish()
    text = stream.getvalue()
    assert text.count('\r') == 3 and text.endswith('\n')
    assert '[' + '#' * 30 + '] 2/2 frames' in text


def test_the_tracking_options_are_defined_once():
    """TRACK_OPTIONS: the node's parameters, TrackSettings' fields and seg-ros bag's flags."""
    from seg_ros.bag.options import add_track_arguments
    from seg_ros.core.track.settings import TRACK_OPTIONS, TrackSettings
    assert {spec.name: spec.default for spec in fields(TrackSettings)} == {
        option.name: option.default for option in TRACK_OPTIONS}
    parameters = pytest.importorskip('seg_ros.ros.parameters',
                                     reason='needs rcl_interfaces (ROS 2)')
    for option in TRACK_OPTIONS:
        spec = parameters.PARAMETERS_BY_NAME[option.name]
        assert spec.default == option.default and spec.change == parameters.TRACKS
    parser = argparse.ArgumentParser()
    add_track_arguments(parser)
    defaults = parser.parse_args([])
    assert TrackSettings.from_values(vars(defaults)) == TrackSettings()
    changed = parser.parse_args(['--no-tracking', '--track-buffer', '5',
                                 '--minimum-consecutive-frames', '3'])
    assert TrackSettings.from_values(vars(changed)) == TrackSettings(
        tracking=False, track_buffer=5, minimum_consecutive_frames=3)
    with pytest.raises(SystemExit):
        parser.parse_args(['--track-activation-threshold', '1.5'])
