"""
Launch seg_ros' segmentation node on one camera stream, optionally with rviz2.

Examples::

    ros2 launch seg_ros segment.launch.py image_topic:=/camera/color/image_raw
    ros2 launch seg_ros segment.launch.py backend:=onnxruntime input_width:=512 rviz:=true
    ros2 launch seg_ros segment.launch.py namespace:=front use_loopback_dds:=true
    ros2 launch seg_ros segment.launch.py managed:=true autostart:=true

Node parameters come from ``params_file`` (default: the package's ``config/segment.yaml``); the
parameter arguments below (``model_path``, ``input_width`` ...) override it only when given:
their empty default keeps the file's value.  multi_camera.launch.py includes this file once per
camera.

``managed:=true`` runs the lifecycle node (managed_segmentation_node): it waits unconfigured for
a lifecycle manager, or with ``autostart:=true`` this launch configures and activates it through
launch's lifecycle events.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.actions import EmitEvent
from launch.actions import LogInfo
from launch.actions import OpaqueFunction
from launch.actions import RegisterEventHandler
from launch.actions import SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch.substitutions import PathJoinSubstitution
from launch_ros.actions import LifecycleNode
from launch_ros.actions import Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition

PACKAGE = 'seg_ros'
NODE_EXECUTABLE = 'segmentation_node'
MANAGED_NODE_EXECUTABLE = 'managed_segmentation_node'

# Launch arguments that set the node parameter of the same name; '' leaves the params file's.
PARAMETER_ARGUMENTS = ('model_path', 'input_width', 'input_height', 'alpha', 'target', 'backend',
                       'confidence', 'class_masks', 'input_transport', 'tracking',
                       'depth_topic', 'depth_max_skew', 'depth_range', 'cloud_stride',
                       'cloud_organized', 'min_object_points', 'obstacle_classes',
                       'freespace_classes', 'grid_frame', 'grid_resolution', 'grid_size')

# The loopback Fast DDS setup measured by bench/dds_transport.py (see the profile's header).
LOOPBACK_DDS_ENVIRONMENT = (
    ('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp'),
    # The profile confines every socket to 127.0.0.1; LOCALHOST would add two that are not.
    ('ROS_AUTOMATIC_DISCOVERY_RANGE', 'SYSTEM_DEFAULT'),
)
MALLOC_TUNABLES = 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456'
BOOLEAN_CHOICES = ['true', 'false']


def generate_launch_description():
    """Declare the arguments and the actions; the node itself is built at launch time."""
    share = FindPackageShare(PACKAGE)
    loopback = IfCondition(LaunchConfiguration('use_loopback_dds'))
    profile = PathJoinSubstitution([share, 'config', 'fastdds_loopback.xml'])
    return LaunchDescription([
        DeclareLaunchArgument(
            'image_topic', default_value='/camera/image_raw',
            description='sensor_msgs/Image topic to segment (the node subscribes it with '
                        'sensor-data QoS: best effort, keep last 1).'),
        DeclareLaunchArgument(
            'camera_info_topic', default_value='',
            description="CameraInfo of the images; '' = camera_info beside image_topic "
                        '(/camera/image_raw -> /camera/camera_info).'),
        DeclareLaunchArgument(
            'namespace', default_value='',
            description='Namespace of the node (outputs: <namespace>/<node_name>/overlay ...); '
                        "'' = global."),
        DeclareLaunchArgument(
            'node_name', default_value='segmentation',
            description='Name of the segmentation node.'),
        DeclareLaunchArgument(
            'params_file', default_value=PathJoinSubstitution([share, 'config', 'segment.yaml']),
            description="YAML file of node parameters ('/**: ros__parameters:'); '' = none, "
                        'the built-in defaults.'),
        DeclareLaunchArgument(
            'model_path', default_value='',
            description="Network file (ONNX, Torch7 .net, Caffe, TensorFlow); '' keeps the "
                        'params file value, whose default is the embedded ENet.'),
        DeclareLaunchArgument(
            'input_width', default_value='',
            description="Network input width in pixels (0-8192, 0: the model's); '' keeps the "
                        'params file value.'),
        DeclareLaunchArgument(
            'input_height', default_value='',
            description="Network input height in pixels (0-8192); '' keeps the params file "
                        'value.'),
        DeclareLaunchArgument(
            'alpha', default_value='',
            description="Overlay weight of the mask (0-1); '' keeps the params file value."),
        DeclareLaunchArgument(
            'backend', default_value='', choices=['', 'auto', 'opencv', 'onnxruntime', 'openvino'],
            description="Inference runtime; '' keeps the params file value."),
        DeclareLaunchArgument(
            'target', default_value='', choices=['', 'auto', 'cuda', 'cpu'],
            description="Inference device; '' keeps the params file value."),
        DeclareLaunchArgument(
            'confidence', default_value='',
            description='true: a class-id model (the argmax in the network, e.g. the Torch7 '
                        'ENet) gets the confidence output that ~/confidence needs (computed '
                        "every frame); '' keeps the params file value (false)."),
        DeclareLaunchArgument(
            'class_masks', default_value='',
            description='Classes to publish as binary masks on ~/mask/<name>, comma-separated '
                        "(Road,Sidewalk) or '[Road, Sidewalk]'; '' keeps the params file value."),
        DeclareLaunchArgument(
            'input_transport', default_value='', choices=['', 'raw', 'compressed'],
            description='raw: sensor_msgs/Image on the image topic; compressed: '
                        "sensor_msgs/CompressedImage on <image topic>/compressed; '' keeps the "
                        'params file value.'),
        DeclareLaunchArgument(
            'tracking', default_value='',
            description="Instance ids are track ids lasting across frames (true/false); '' "
                        'keeps the params file value (true).'),
        DeclareLaunchArgument(
            'depth_topic', default_value='',
            description='Depth image registered to the colour camera (16UC1 mm or 32FC1 m), '
                        'e.g. /camera/aligned_depth_to_color/image_raw: ~/points, '
                        "~/obstacle_points; '' keeps the params file value (none)."),
        DeclareLaunchArgument(
            'depth_max_skew', default_value='',
            description='Largest colour/depth stamp difference in seconds (0-1, 0: equal '
                        "stamps); '' keeps the params file value."),
        DeclareLaunchArgument(
            'depth_range', default_value='',
            description="Valid depth '[min, max]' in metres (0.1,20); '' keeps the params "
                        'file value.'),
        DeclareLaunchArgument(
            'cloud_stride', default_value='',
            description="One point every N columns and rows (1-64); '' keeps the params file "
                        'value.'),
        DeclareLaunchArgument(
            'cloud_organized', default_value='',
            description="true: ~/points organized and pixel-aligned with ~/class_map (Nav2's "
                        "semantic segmentation layer); '' keeps the params file value (false)."),
        DeclareLaunchArgument(
            'min_object_points', default_value='',
            description='Valid depth points an instance needs for its ~/objects entry '
                        "(1-100000); '' keeps the params file value (10)."),
        DeclareLaunchArgument(
            'obstacle_classes', default_value='',
            description='Classes of ~/obstacle_points, comma-separated (car,person) or '
                        "'[car, person]'; '' keeps the params file value."),
        DeclareLaunchArgument(
            'freespace_classes', default_value='',
            description='Free classes of ~/freespace (road,sidewalk), the others are occupied; '
                        "'' keeps the params file value ([]: no grid)."),
        DeclareLaunchArgument(
            'grid_frame', default_value='',
            description="Frame of ~/freespace, ground at z = 0 (base_link); '' keeps the params "
                        'file value.'),
        DeclareLaunchArgument(
            'grid_resolution', default_value='',
            description="Metres a cell of ~/freespace (0.01-10); '' keeps the params file "
                        'value.'),
        DeclareLaunchArgument(
            'grid_size', default_value='',
            description="Extent '[x, y]' of ~/freespace in metres (10,10); '' keeps the params "
                        'file value.'),
        DeclareLaunchArgument(
            'log_level', default_value='info',
            choices=['debug', 'info', 'warn', 'error', 'fatal'],
            description='Log level of the segmentation node.'),
        DeclareLaunchArgument(
            'managed', default_value='false', choices=BOOLEAN_CHOICES,
            description='Run the node as a lifecycle (managed) node: no model, input or output '
                        'until a lifecycle manager configures and activates it through '
                        '~/change_state (see docs/robot-bringup.md); false: the plain node, '
                        'running from start.'),
        DeclareLaunchArgument(
            'autostart', default_value='false', choices=BOOLEAN_CHOICES,
            description='With managed:=true, configure and then activate the node from this '
                        'launch (lifecycle events); leave false when a lifecycle manager '
                        '(nav2_lifecycle_manager) drives it.'),
        DeclareLaunchArgument(
            'rviz', default_value='false', choices=BOOLEAN_CHOICES,
            description='Also start rviz2 with rviz/segment.rviz (input, overlay and colour '
                        'mask); with depth_topic given, rviz/depth.rviz (the labelled cloud, '
                        'the obstacle cloud and the freespace grid).'),
        DeclareLaunchArgument(
            'use_loopback_dds', default_value='false', choices=BOOLEAN_CHOICES,
            description='Run the processes of this launch with the Fast DDS loopback profile '
                        '(config/fastdds_loopback.xml: 64 MiB shared memory, discovery on '
                        '127.0.0.1 only). For a single machine; every other process of the '
                        'graph (camera driver, viewers) needs the same profile.'),
        DeclareLaunchArgument(
            'tune_malloc', default_value='true', choices=BOOLEAN_CHOICES,
            description='Set GLIBC_TUNABLES so that multi-megabyte image buffers stay on the '
                        'heap instead of one mmap a message (about 2x lower transport latency).'),
        SetEnvironmentVariable('FASTRTPS_DEFAULT_PROFILES_FILE', profile, condition=loopback),
        SetEnvironmentVariable('FASTDDS_DEFAULT_PROFILES_FILE', profile, condition=loopback),
        *[SetEnvironmentVariable(name, value, condition=loopback)
          for name, value in LOOPBACK_DDS_ENVIRONMENT],
        SetEnvironmentVariable('GLIBC_TUNABLES', MALLOC_TUNABLES,
                               condition=IfCondition(LaunchConfiguration('tune_malloc'))),
        OpaqueFunction(function=launch_nodes),
    ])


def launch_nodes(context):
    """
    Build the segmentation node (and rviz2) from the launch arguments' values.

    Done at launch time because a parameter argument must reach the node only when it is
    not empty, and typed (an int for input_width, a double for alpha), not as a string.

    :param context: the launch context.
    :return: the actions to run.
    """
    def argument(name):
        return LaunchConfiguration(name).perform(context).strip()

    image_topic = argument('image_topic')
    camera_info_topic = argument('camera_info_topic') or sibling_topic(image_topic, 'camera_info')
    parameters = []
    if argument('params_file'):
        parameters.append(argument('params_file'))
    overrides = {name: parameter_value(name, argument(name))
                 for name in PARAMETER_ARGUMENTS if argument(name)}
    if overrides:
        # Later entries win, so these override the params file.
        parameters.append(overrides)
    namespace = argument('namespace').strip('/')
    node_name = argument('node_name')
    node_options = {
        'package': PACKAGE, 'name': node_name, 'namespace': namespace,
        'parameters': parameters,
        'remappings': [('image', image_topic), ('camera_info', camera_info_topic)],
        'arguments': ['--ros-args', '--log-level', argument('log_level')],
        'output': 'screen', 'emulate_tty': True}
    if argument('managed') == 'true':
        node = LifecycleNode(executable=MANAGED_NODE_EXECUTABLE, **node_options)
        actions = [node, *autostart_actions(node)] if argument('autostart') == 'true' else [node]
    else:
        actions = [Node(executable=NODE_EXECUTABLE, **node_options)]
    if argument('rviz') == 'true':
        actions.append(rviz_node(namespace, node_name, image_topic, bool(argument('depth_topic'))))
    return actions


def rviz_node(namespace, node_name, image_topic, depth):
    """
    Return rviz2 with segment.rviz, or depth.rviz when the node has a depth topic.

    The configs show the default topics; they are remapped to this launch's.
    """
    outputs = '/' + '/'.join(part for part in (namespace.strip('/'), node_name) if part)
    if depth:
        config = 'depth.rviz'
        remappings = [(f'/segmentation/{name}', f'{outputs}/{name}')
                      for name in ('points', 'obstacle_points', 'freespace',
                                   'freespace_updates')]
    else:
        config = 'segment.rviz'
        remappings = [('/camera/image_raw', absolute(image_topic, namespace)),
                      ('/segmentation/overlay', outputs + '/overlay'),
                      ('/segmentation/color_mask', outputs + '/color_mask')]
    return Node(package='rviz2', executable='rviz2', name='segmentation_rviz',
                arguments=['-d', PathJoinSubstitution([FindPackageShare(PACKAGE), 'rviz',
                                                       config])],
                remappings=remappings, output='screen')


def autostart_actions(node):
    """
    Return the actions that take the lifecycle node ``node`` to active: configure, then activate.

    Activate follows the end of configure only (not a deactivate), so that a manual deactivate
    holds; a failed configure leaves the node unconfigured, and the launch says so.

    :param node: the LifecycleNode action.
    :return: the event handler and the configure request.
    """
    def change_state(transition_id):
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                           transition_id=transition_id))

    return [
        RegisterEventHandler(OnStateTransition(
            target_lifecycle_node=node, start_state='configuring', goal_state='inactive',
            entities=[LogInfo(msg='segmentation node configured, activating'),
                      change_state(Transition.TRANSITION_ACTIVATE)])),
        change_state(Transition.TRANSITION_CONFIGURE),
    ]


def parameter_value(name, text):
    """
    Convert a launch argument to the type of the node parameter and check its range.

    :param name: the parameter, an entry of seg_ros.ros.parameters.PARAMETERS.
    :param text: the argument's value.
    :return: the value as bool, int, float or str.
    :raises RuntimeError: when the value does not fit the parameter.
    """
    # Imported here so that listing the arguments (ros2 launch -s) needs no seg_ros import.
    from seg_ros.ros.parameters import PARAMETERS_BY_NAME

    spec = PARAMETERS_BY_NAME[name]
    try:
        if spec.item_type is str:
            items = text.strip().removeprefix('[').removesuffix(']').split(',')
            value = [item.strip().strip('\'"') for item in items if item.strip()]
        elif spec.item_type is float:
            items = text.strip().removeprefix('[').removesuffix(']').split(',')
            value = [float(item) for item in items if item.strip()]
        elif isinstance(spec.default, bool):
            if text.lower() not in ('true', 'false'):
                raise ValueError(text)
            value = text.lower() == 'true'
        elif isinstance(spec.default, int):
            value = int(text)
        elif isinstance(spec.default, float):
            value = float(text)
        else:
            value = text
    except ValueError:
        kind = 'list of numbers' if spec.item_type is float else type(spec.default).__name__
        raise RuntimeError(f'{name}:={text!r} is not a {kind}') from None
    problem = spec.check(value)
    if problem:
        raise RuntimeError(problem)
    return value


def sibling_topic(topic, name):
    """
    Return the topic ``name`` in the same namespace as ``topic`` (image_transport's rule).

    :param topic: e.g. /camera/image_raw.
    :param name: e.g. camera_info.
    :return: e.g. /camera/camera_info.
    """
    head, _, _ = topic.rpartition('/')
    return f'{head}/{name}' if head or topic.startswith('/') else name


def absolute(topic, namespace):
    """
    Resolve a topic the way the node in ``namespace`` does (no ~ or substitutions).

    :param topic: absolute or relative topic name.
    :param namespace: the node's namespace without leading or trailing slash.
    :return: the absolute name.
    """
    if topic.startswith('/'):
        return topic
    return '/' + '/'.join(part for part in (namespace, topic) if part)
