"""
The launch files, the parameters file and the rviz config agree with the parameter table.

What the real ``ros2 launch`` shows is tested in ``test_ros2_launch.py`` (arguments reaching
the node typed, bad values refused, installed files found). These checks need no ROS install:
every argument is described and matches the parameter table, the params file lists every
parameter with its default, the pure helpers of the launch files (compiled from the file), the
rviz config's QoS.
"""

import ast
import math
from pathlib import Path

import pytest
import yaml

from seg_ros.ros.parameters import PARAMETERS, PARAMETERS_BY_NAME

REPO_ROOT = Path(__file__).resolve().parent.parent
LAUNCH_DIR = REPO_ROOT / 'launch'
LAUNCH_FILES = sorted(LAUNCH_DIR.glob('*.launch.py'))
SEGMENT_LAUNCH = LAUNCH_DIR / 'segment.launch.py'
MULTI_CAMERA_LAUNCH = LAUNCH_DIR / 'multi_camera.launch.py'
PARAMS_FILE = REPO_ROOT / 'config' / 'segment.yaml'
RVIZ_FILE = REPO_ROOT / 'rviz' / 'segment.rviz'


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _constants(tree: ast.Module) -> dict:
    """Module-level NAME = <literal> assignments."""
    constants = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
            if isinstance(target, ast.Name):
                try:
                    constants[target.id] = ast.literal_eval(statement.value)
                except ValueError:
                    pass
    return constants


def _value(node: ast.AST, constants: dict):
    """Literal value of ``node``, resolving module constants; ``...`` when not a literal."""
    if isinstance(node, ast.Name):
        return constants.get(node.id, ...)
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ...


def _calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call) and (
        getattr(node.func, 'id', None) == name or getattr(node.func, 'attr', None) == name)]


def _declared_arguments(path: Path) -> dict[str, dict]:
    """Name to {keyword: literal value or ...} of every DeclareLaunchArgument of a file."""
    tree = _tree(path)
    constants = _constants(tree)
    arguments = {}
    for call in _calls(tree, 'DeclareLaunchArgument'):
        assert call.args and isinstance(call.args[0], ast.Constant), (
            f'{path.name}:{call.lineno}: the argument name must be a literal string')
        name = call.args[0].value
        assert name not in arguments, f'{path.name}: argument {name} declared twice'
        arguments[name] = {keyword.arg: _value(keyword.value, constants)
                           for keyword in call.keywords}
    return arguments


def _function(path: Path, *names: str) -> dict:
    """Compile only the named top-level functions of a launch file and return them."""
    tree = _tree(path)
    module = ast.Module(body=[node for node in tree.body
                              if isinstance(node, ast.FunctionDef) and node.name in names],
                        type_ignores=[])
    namespace = {}
    exec(compile(module, str(path), 'exec'), namespace)
    assert set(names) <= set(namespace), f'{path.name} lacks {set(names) - set(namespace)}'
    return namespace


def test_there_are_the_two_launch_files():
    assert {path.name for path in LAUNCH_FILES} >= {
        'segment.launch.py', 'multi_camera.launch.py'}


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda path: path.name)
def test_every_argument_is_described_and_its_default_is_a_choice(path):
    arguments = _declared_arguments(path)
    assert arguments
    for name, keywords in arguments.items():
        description = keywords.get('description')
        assert isinstance(description, str) and len(description) > 10, (
            f'{path.name}: argument {name} needs a description')
        assert 'default_value' in keywords, f'{path.name}: argument {name} has no default'
        choices, default = keywords.get('choices'), keywords['default_value']
        if choices is not None:
            assert isinstance(choices, list) and choices, f'{name}: choices must be a list'
            if default is not ...:
                assert default in choices, f'{path.name}: {name} default {default!r}'


def test_parameter_arguments_match_the_parameter_table():
    path = SEGMENT_LAUNCH  # multi_camera.launch.py takes these declarations from it
    arguments = _declared_arguments(path)
    parameter_arguments = _constants(_tree(path))['PARAMETER_ARGUMENTS']
    # An argument named like a parameter must override it, or users would expect it to.
    assert {name for name in arguments if name in PARAMETERS_BY_NAME} == set(parameter_arguments)
    for name in parameter_arguments:
        spec = PARAMETERS_BY_NAME[name]
        keywords = arguments[name]
        # Empty = keep the params file's value.
        assert keywords['default_value'] == '', f'{path.name}: {name} must default to empty'
        if spec.choices:
            assert keywords.get('choices') == ['', *spec.choices], (
                f'{path.name}: {name} choices differ from the table {spec.choices}')
        else:
            assert keywords.get('choices') is None
        if spec.minimum is not None:
            description = keywords['description']
            assert f'{spec.minimum:g}-{spec.maximum:g}' in description, (
                f'{path.name}: describe the range of {name} as {spec.minimum:g}-{spec.maximum:g}')


def test_segment_launch_has_the_documented_arguments():
    arguments = _declared_arguments(SEGMENT_LAUNCH)
    assert set(arguments) >= {
        'image_topic', 'camera_info_topic', 'namespace', 'params_file', 'model_path',
        'input_width', 'input_height', 'alpha', 'target', 'backend', 'rviz', 'use_loopback_dds'}
    assert arguments['image_topic']['default_value'] == '/camera/image_raw'
    assert arguments['rviz']['default_value'] == 'false'
    assert arguments['use_loopback_dds']['default_value'] == 'false'
    assert arguments['node_name']['default_value'] == 'segmentation'


def test_multi_camera_passes_only_arguments_segment_launch_declares():
    segment_arguments = set(_declared_arguments(SEGMENT_LAUNCH))
    multi_arguments = _declared_arguments(MULTI_CAMERA_LAUNCH)
    multi_constants = _constants(_tree(MULTI_CAMERA_LAUNCH))
    forwarded = multi_constants['FORWARDED_ARGUMENTS']
    # Declared once, in segment.launch.py (multi_camera.launch.py reuses its declarations).
    assert set(forwarded) <= segment_arguments
    assert not set(forwarded) & set(multi_arguments)
    include = next(node for node in _tree(MULTI_CAMERA_LAUNCH).body
                   if isinstance(node, ast.FunctionDef) and node.name == 'include_cameras')
    passed = {key.value for node in ast.walk(include) if isinstance(node, ast.Dict)
              for key in node.keys if isinstance(key, ast.Constant)}
    assert passed >= {'namespace', 'image_topic', 'camera_info_topic'}
    assert passed <= segment_arguments
    # Every parameter override of segment.launch.py is forwarded, and only those are.
    segment_parameters = set(_constants(_tree(SEGMENT_LAUNCH))['PARAMETER_ARGUMENTS'])
    assert set(multi_constants['PARAMETER_ARGUMENTS']) == segment_parameters & set(forwarded)


@pytest.mark.parametrize('image_topic, camera_info_topic', [
    ('/camera/image_raw', '/camera/camera_info'),
    ('/front/color/image_rect', '/front/color/camera_info'),
    ('/image', '/camera_info'),
    ('image_raw', 'camera_info'),
    ('cam/image_raw', 'cam/camera_info')])
def test_camera_info_topic_defaults_beside_the_image(image_topic, camera_info_topic):
    sibling_topic = _function(SEGMENT_LAUNCH, 'sibling_topic')['sibling_topic']
    assert sibling_topic(image_topic, 'camera_info') == camera_info_topic


def test_rviz_topics_resolve_like_the_node():
    absolute = _function(SEGMENT_LAUNCH, 'absolute')['absolute']
    assert absolute('/camera/image_raw', 'front') == '/camera/image_raw'
    assert absolute('image_raw', 'front') == '/front/image_raw'
    assert absolute('image_raw', '') == '/image_raw'


@pytest.mark.parametrize('text, cameras', [
    ('front,rear', ['front', 'rear']), ('[front, rear]', ['front', 'rear']),
    ("['front', 'rear']", ['front', 'rear']), (' /left/ , right ', ['left', 'right']),
    ('robot1/front', ['robot1/front'])])
def test_cameras_argument(text, cameras):
    parse_cameras = _function(MULTI_CAMERA_LAUNCH, 'parse_cameras')['parse_cameras']
    assert parse_cameras(text) == cameras


@pytest.mark.parametrize('text', ['', '[]', ' , ', 'front,front'])
def test_bad_cameras_argument_fails_the_launch(text):
    parse_cameras = _function(MULTI_CAMERA_LAUNCH, 'parse_cameras')['parse_cameras']
    with pytest.raises(RuntimeError):
        parse_cameras(text)


def _params_file_entries() -> dict:
    document = yaml.safe_load(PARAMS_FILE.read_text())
    assert list(document) == ['/**'], 'one wildcard section, so any node name and namespace match'
    assert list(document['/**']) == ['ros__parameters']
    return document['/**']['ros__parameters']


def test_params_file_lists_every_parameter_with_its_default():
    entries = _params_file_entries()
    assert list(entries) == [spec.name for spec in PARAMETERS], 'same names, same order'
    for spec in PARAMETERS:
        value = entries[spec.name]
        # rclpy refuses an int for a double parameter, so the YAML type must be exact.
        assert type(value) is type(spec.default), f'{spec.name}: {value!r}'
        assert spec.check(value) is None
        if isinstance(value, float):
            assert math.isclose(value, spec.default, rel_tol=1e-12), spec.name
        else:
            assert value == spec.default, spec.name


def test_params_file_documents_every_parameter():
    lines = PARAMS_FILE.read_text().splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.split(':')[0] in PARAMETERS_BY_NAME:
            previous = [entry.strip() for entry in lines[max(0, index - 3):index]]
            assert any(entry.startswith('#') for entry in previous), (
                f'{stripped.split(":")[0]} has no comment above it')
    assert "model_path: ''" in PARAMS_FILE.read_text()
    assert 'embedded' in PARAMS_FILE.read_text()


def test_rviz_config_shows_the_outputs_with_matching_qos():
    config = yaml.safe_load(RVIZ_FILE.read_text())
    displays = {display['Topic']['Value']: display
                for display in config['Visualization Manager']['Displays']
                if display['Class'] == 'rviz_default_plugins/Image'}
    expected = {'/segmentation/overlay': 'Reliable', '/segmentation/color_mask': 'Reliable',
                '/camera/image_raw': 'Best Effort'}
    assert set(displays) == set(expected)
    for topic, reliability in expected.items():
        qos = displays[topic]['Topic']
        assert qos['Reliability Policy'] == reliability, topic
        assert qos['History Policy'] == 'Keep Last'
        assert qos['Durability Policy'] == 'Volatile'
        assert displays[topic]['Enabled'] is True
    assert set(_rviz_node('', False)['remappings']) == set(expected)


def _rviz_node(namespace: str, depth: bool) -> dict:
    """Return the options segment.launch.py gives rviz2's Node (launch_ros replaced by dicts)."""
    functions = _function(SEGMENT_LAUNCH, 'rviz_node', 'absolute')
    functions.update(Node=lambda **options: options, PathJoinSubstitution=lambda parts: parts,
                     FindPackageShare=lambda package: package, PACKAGE='seg_ros')
    options = functions['rviz_node'](namespace, 'segmentation', 'image_raw', depth)
    options['remappings'] = dict(options['remappings'])
    return options


def test_rviz_opens_the_depth_config_with_a_depth_topic_remapped_to_the_node():
    image = _rviz_node('front', False)
    assert image['arguments'][1][-1] == 'segment.rviz'
    assert image['remappings'] == {
        '/camera/image_raw': '/front/image_raw',
        '/segmentation/overlay': '/front/segmentation/overlay',
        '/segmentation/color_mask': '/front/segmentation/color_mask'}
    depth = _rviz_node('front', True)
    assert depth['arguments'][1][-1] == 'depth.rviz'
    config = yaml.safe_load((REPO_ROOT / 'rviz' / 'depth.rviz').read_text())
    topics = {display['Topic']['Value'] for display in config['Visualization Manager']['Displays']
              if 'Topic' in display}
    topics |= {'/segmentation/freespace_updates'}  # the Map display's update topic
    assert depth['remappings'] == {topic: '/front' + topic for topic in topics}


def test_depth_rviz_config_shows_the_cloud_by_class_and_the_grid():
    config = yaml.safe_load((REPO_ROOT / 'rviz' / 'depth.rviz').read_text())
    manager = config['Visualization Manager']
    displays = {display['Topic']['Value']: display for display in manager['Displays']
                if 'Topic' in display}
    points = displays['/segmentation/points']
    assert points['Class'] == 'rviz_default_plugins/PointCloud2'
    assert points['Color Transformer'] == 'RGB8' and points['Enabled'] is True
    assert displays['/segmentation/freespace']['Class'] == 'rviz_default_plugins/Map'
    for display in displays.values():
        assert display['Topic']['Reliability Policy'] == 'Reliable'
    assert manager['Global Options']['Fixed Frame'] == PARAMETERS_BY_NAME['grid_frame'].default
