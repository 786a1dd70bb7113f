"""
Launch one segmentation node per camera, each in the camera's namespace, sharing one params file.

Example::

    ros2 launch seg_ros multi_camera.launch.py cameras:=front,rear

runs /front/segmentation on /front/image_raw (+ /front/camera_info), publishing
/front/segmentation/overlay ..., and the same under /rear.  ``cameras`` also takes a YAML-style
list: ``cameras:='[front, rear]'``.  Each camera is an include of segment.launch.py;
``managed:=true`` (with ``autostart:=true``) makes every node a lifecycle node.
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
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'seg_ros'

# Forwarded unchanged to every camera's segment.launch.py (same names, same meaning).
FORWARDED_ARGUMENTS = ('params_file', 'model_path', 'input_width', 'input_height', 'alpha',
                       'target', 'backend', 'class_masks', 'input_transport', 'log_level',
                       'tune_malloc', 'managed', 'autostart')
# The subset that are node parameters ('' keeps the params file value).
PARAMETER_ARGUMENTS = ('model_path', 'input_width', 'input_height', 'alpha', 'target', 'backend',
                       'class_masks', 'input_transport')

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


def segment_declarations(names):
    """
    Return segment.launch.py's own declarations of the launch arguments ``names``.

    :param names: argument names segment.launch.py declares.
    :return: its DeclareLaunchArgument actions for them, in its order.
    """
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'segment.launch.py')
    spec = importlib.util.spec_from_file_location('seg_ros_segment_launch', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
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
    segment_launch = PathJoinSubstitution([ThisLaunchFileDir(), 'segment.launch.py'])
    groups = []
    for camera in cameras:
        arguments = {name: LaunchConfiguration(name) for name in FORWARDED_ARGUMENTS}
        arguments.update({
            'namespace': camera,
            'image_topic': f'/{camera}/{image}',
            'camera_info_topic': f'/{camera}/{camera_info}',
            'rviz': 'false',
            # Set once above for all cameras.
            'use_loopback_dds': 'false',
        })
        # scoped: the launch configurations set by one include do not leak into the next.
        groups.append(GroupAction(scoped=True, actions=[IncludeLaunchDescription(
            PythonLaunchDescriptionSource(segment_launch),
            launch_arguments=arguments.items())]))
    return groups


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
