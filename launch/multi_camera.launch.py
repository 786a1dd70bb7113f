"""
Launch one segmentation node per camera, each in the camera's namespace, sharing one params file.

Example::

    ros2 launch seg_ros multi_camera.launch.py cameras:=front,rear

runs /front/segmentation on /front/image_raw (+ /front/camera_info), publishing
/front/segmentation/overlay ..., and the same under /rear.  ``cameras`` also takes a YAML-style
list: ``cameras:='[front, rear]'``.  With ``depth:=aligned_depth_to_color/image_raw`` each node
also reads /<camera>/aligned_depth_to_color/image_raw (~/points ...).  Each camera is an include
of segment.launch.py; ``managed:=true`` (with ``autostart:=true``) makes every node a lifecycle
node.

``one_process:=true`` runs every camera in one process (``multi_camera_segmentation``) with one
network in memory, publishing the same topics; the cameras share the network parameters (and
run unmanaged: ``managed`` does not apply).
"""

import importlib.util
import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.actions import GroupAction
from launch.actions import IncludeLaunchDescription
from launch.actions import OpaqueFunction
from launch.actions import SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch.substitutions import PathJoinSubstitution
from launch.substitutions import ThisLaunchFileDir
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'seg_ros'

# Forwarded unchanged to every camera's segment.launch.py (same names, same meaning).
FORWARDED_ARGUMENTS = ('params_file', 'model_path', 'input_width', 'input_height', 'alpha',
                       'target', 'backend', 'confidence', 'class_masks', 'input_transport',
                       'tracking', 'depth_max_skew', 'depth_range', 'cloud_stride',
                       'cloud_organized', 'min_object_points', 'obstacle_classes',
                       'freespace_classes', 'grid_frame', 'grid_resolution', 'grid_size',
                       'log_level', 'tune_malloc', 'managed', 'autostart')
# The subset that are node parameters ('' keeps the params file value); depth_topic is set per
# camera from the depth argument.
PARAMETER_ARGUMENTS = ('model_path', 'input_width', 'input_height', 'alpha', 'target', 'backend',
                       'confidence', 'class_masks', 'input_transport', 'tracking',
                       'depth_max_skew', 'depth_range', 'cloud_stride', 'cloud_organized',
                       'min_object_points', 'obstacle_classes', 'freespace_classes',
                       'grid_frame', 'grid_resolution', 'grid_size')

LOOPBACK_DDS_ENVIRONMENT = (
    ('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp'),
    # The profile confines every socket to 127.0.0.1; LOCALHOST would add two that are not.
    ('ROS_AUTOMATIC_DISCOVERY_RANGE', 'SYSTEM_DEFAULT'),
)
BOOLEAN_CHOICES = ['true', 'false']


def generate_launch_description():
    """Declare the arguments; the per-camera includes are built at launch time."""
    share = FindPackageShare(PACKAGE)
    loopback = IfCondition(LaunchConfiguration('use_loopback_dds'))
    profile = PathJoinSubstitution([share, 'config', 'fastdds_loopback.xml'])
    return LaunchDescription([
        DeclareLaunchArgument(
            'cameras', default_value='front,rear',
            description="Camera namespaces, comma-separated ('front,rear') or a YAML-style list "
                        "('[front, rear]'); one segmentation node in each."),
        DeclareLaunchArgument(
            'image', default_value='image_raw',
            description='Image topic inside each camera namespace (/<camera>/<image>).'),
        DeclareLaunchArgument(
            'camera_info', default_value='camera_info',
            description='CameraInfo topic inside each camera namespace.'),
        DeclareLaunchArgument(
            'depth', default_value='',
            description='Depth topic inside each camera namespace (/<camera>/<depth>), e.g. '
                        "aligned_depth_to_color/image_raw; '' = the params file's depth_topic "
                        '(default: none).'),
        DeclareLaunchArgument(
            'one_process', default_value='false', choices=BOOLEAN_CHOICES,
            description='Run every camera in one process with one network in memory '
                        '(multi_camera_segmentation), publishing the same topics; false: one '
                        'node process per camera.'),
        DeclareLaunchArgument(
            'workers', default_value='2',
            description='With one_process: threads serving the cameras with the one network '
                        '(1 to 8; while one is in the network another renders and publishes).'),
        # The forwarded ones as segment.launch.py declares them (defaults, choices, meaning).
        *segment_declarations(FORWARDED_ARGUMENTS),
        DeclareLaunchArgument(
            'use_loopback_dds', default_value='false', choices=BOOLEAN_CHOICES,
            description='Run the nodes with the Fast DDS loopback profile '
                        '(config/fastdds_loopback.xml); single machine only, and the camera '
                        'drivers need it too.'),
        SetEnvironmentVariable('FASTRTPS_DEFAULT_PROFILES_FILE', profile, condition=loopback),
        SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', profile, condition=loopback),
        *[SetEnvironmentVariable(name, value, condition=loopback)
          for name, value in LOOPBACK_DDS_ENVIRONMENT],
        OpaqueFunction(function=include_cameras),
    ])


def segment_launch_module():
    """Return segment.launch.py loaded as a module (its declarations and value conversion)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'segment.launch.py')
    spec = importlib.util.spec_from_file_location('seg_ros_segment_launch', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def segment_declarations(names):
    """
    Return segment.launch.py's own declarations of the launch arguments ``names``.

    :param names: argument names segment.launch.py declares.
    :return: its DeclareLaunchArgument actions for them, in its order.
    """
    module = segment_launch_module()
    declarations = [entity for entity in module.generate_launch_description().entities
                    if isinstance(entity, DeclareLaunchArgument) and entity.name in names]
    missing = set(names) - {declaration.name for declaration in declarations}
    if missing:
        raise RuntimeError(f'segment.launch.py does not declare {sorted(missing)}')
    return declarations


def include_cameras(context):
    """
    Include segment.launch.py once per camera, each in a scope of its own.

    :param context: the launch context.
    :return: one group action a camera.
    """
    cameras = parse_cameras(LaunchConfiguration('cameras').perform(context))
    image = LaunchConfiguration('image').perform(context).strip('/')
    camera_info = LaunchConfiguration('camera_info').perform(context).strip('/')
    depth = LaunchConfiguration('depth').perform(context).strip().strip('/')
    if LaunchConfiguration('one_process').perform(context) == 'true':
        return one_process(context, cameras, image, camera_info, depth)
    segment_launch = PathJoinSubstitution([ThisLaunchFileDir(), 'segment.launch.py'])
    groups = []
    for camera in cameras:
        arguments = {name: LaunchConfiguration(name) for name in FORWARDED_ARGUMENTS}
        arguments.update({
            'namespace': camera,
            'image_topic': f'/{camera}/{image}',
            'camera_info_topic': f'/{camera}/{camera_info}',
            'depth_topic': f'/{camera}/{depth}' if depth else '',
            'rviz': 'false',
            # Set once above for all cameras.
            'use_loopback_dds': 'false',
        })
        # scoped: the launch configurations set by one include do not leak into the next.
        groups.append(GroupAction(scoped=True, actions=[IncludeLaunchDescription(
            PythonLaunchDescriptionSource(segment_launch),
            launch_arguments=arguments.items())]))
    return groups


def one_process(context, cameras, image, camera_info, depth):
    """
    Return the one multi_camera_segmentation process that serves every camera.

    With the malloc tuning segment.launch.py sets. Its parameters (the params file, then the
    parameter arguments given) reach every camera's node in it; ``depth`` is a name inside each
    camera's namespace.

    :param context: the launch context.
    :return: the actions.
    """
    def argument(name):
        return LaunchConfiguration(name).perform(context).strip()

    module = segment_launch_module()
    parameters = [argument('params_file')] if argument('params_file') else []
    overrides = {name: module.parameter_value(name, argument(name))
                 for name in PARAMETER_ARGUMENTS if argument(name)}
    if depth:
        overrides['depth_topic'] = depth  # relative: each camera's node resolves it
    parameters.append({**overrides, 'cameras': cameras, 'image': image,
                       'camera_info': camera_info, 'workers': parse_workers(argument('workers'))})
    return [
        SetEnvironmentVariable('GLIBC_TUNABLES', module.MALLOC_TUNABLES,
                               condition=IfCondition(LaunchConfiguration('tune_malloc'))),
        Node(package=PACKAGE, executable='multi_camera_segmentation', parameters=parameters,
             arguments=['--ros-args', '--log-level', argument('log_level')],
             output='screen', emulate_tty=True)]


def parse_workers(text):
    """
    Return the workers argument as an int.

    :raises RuntimeError: for text that is not a whole number (the node checks the range).
    """
    try:
        return int(text)
    except ValueError:
        raise RuntimeError(f"launch argument workers must be a whole number, got '{text}'") \
            from None


def parse_cameras(text):
    """
    Split the cameras argument into namespaces.

    :param text: 'front,rear', '[front, rear]' or "['front', 'rear']".
    :return: the namespaces, without leading or trailing slashes, in order.
    :raises RuntimeError: when no camera is named or one is named twice.
    """
    items = text.strip().removeprefix('[').removesuffix(']').split(',')
    cameras = [item.strip().strip('\'"').strip('/') for item in items]
    cameras = [camera for camera in cameras if camera]
    if not cameras:
        raise RuntimeError(f'cameras:={text!r} names no camera')
    if len(set(cameras)) != len(cameras):
        raise RuntimeError(f'cameras:={text!r} names a camera twice')
    return cameras
