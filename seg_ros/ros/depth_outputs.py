"""
The segmentation node's 3-D outputs: labelled points, an obstacle cloud, objects, a freespace grid.

``~/points`` (sensor_msgs/PointCloud2, the colour image's header: its optical frame) holds one
point per valid depth pixel of a ``cloud_stride`` grid: ``x y z`` float32 metres, ``rgb`` float32
carrying 0x00RRGGBB (the class colour), ``label`` uint16 and, with instances, ``instance``
uint16; unorganised, little-endian, dense. With ``cloud_organized`` it is instead organized and
pixel-aligned with ``~/class_map`` (height x width of the class map, point (r, c) from its pixel
(c, r), ``x y z`` NaN where there is no valid depth, not dense: what Nav2's semantic
segmentation layer walks beside the class map). ``~/obstacle_points`` is the stride cloud
restricted to ``obstacle_classes``. ``~/objects`` (vision_msgs/Detection3DArray, the image's
header) holds one Detection3D per instance with at least ``min_object_points`` valid depth
points: their median x y z and 5th-95th percentile extent, the instance's class, score and
(track) id. ``~/freespace`` (nav_msgs/OccupancyGrid in ``grid_frame``, the image's
stamp) bins the points, transformed with the camera pose from tf2 at the image stamp; without a
depth topic each pixel's ray is intersected with the ground z = 0 instead (flat ground).

Depth (``depth_topic``) and colour are paired by header stamp, exactly or within
``depth_max_skew``; the depth of a colour frame is held from the moment the frame is taken for
segmentation, so a slow network cannot lose it to newer depth images; a frame without its depth
gets no points and no grid from depth. Every fault
(unpaired frame, bad depth, missing camera_info or transform) is counted in /diagnostics and
warned about with a throttle; the node's other outputs still go out. The geometry itself is
:mod:`seg_ros.core.geometry`.
"""

import array
from collections import deque
import threading
import time

import numpy as np
from rclpy.duration import Duration
from rclpy.time import Time
from sensor_msgs.msg import Image, PointCloud2, PointField

from seg_ros.core.geometry.camera import Intrinsics
from seg_ros.core.geometry.depth import DEPTH_ENCODINGS, depth_to_metres
from seg_ros.core.geometry.grid import GridSpec, GroundProjection, points_occupancy, \
    RigidTransform
from seg_ros.core.geometry.points import labelled_points, LabelledPoints
from seg_ros.frame_outputs import frame_objects, frame_points
from seg_ros.ros import messages
from seg_ros.ros.image_conversion import image_to_array, ImageConversionError
from seg_ros.ros.node_parameters import class_ids, CLASS_LIST_VALUES, unknown_classes_reason
from seg_ros.ros.runner import StartupError
from seg_ros.ros.throttle import ThrottledWarnings

try:  # nav_msgs: apt install ros-jazzy-nav-msgs (pip: ros-jazzy-nav-msgs)
    from nav_msgs.msg import OccupancyGrid
    NAV_MSGS_ERROR = ''
except ImportError as error:
    OccupancyGrid = None
    NAV_MSGS_ERROR = str(error)

try:  # tf2_ros: apt install ros-jazzy-tf2-ros-py
    from tf2_ros import Buffer, TransformException, TransformListener
    TF2_ERROR = ''
except ImportError as error:
    Buffer = TransformListener = None
    TransformException = Exception
    TF2_ERROR = str(error)

# Depth images kept for pairing, newest last (a 30 Hz camera: about a quarter of a second).
DEPTH_HISTORY = 8
# How long a processed colour frame waits for a depth image with its stamp that is not there yet.
DEPTH_WAIT_S = 0.1
# A camera pose that moves more than this between two frames is taken for a fault, not motion:
# the camera is fixed on the robot, grid_frame moves with it.
POSE_JUMP_M, POSE_JUMP_RAD = 0.25, 0.35
_FLOAT32, _UINT16 = PointField.FLOAT32, PointField.UINT16
_POINT_FIELD_TYPES = {'<f4': _FLOAT32, '<u2': _UINT16}


def stamp_ns(stamp) -> int:
    """Return a builtin_interfaces/Time as integer nanoseconds."""
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def point_cloud(header, cloud: np.ndarray) -> PointCloud2:
    """
    Return a PointCloud2 holding a structured array (its fields and offsets).

    :param cloud: little-endian structured array of float32 / uint16 fields: 1-D, an
        unorganised dense cloud, or (h, w), an organized one (NaN ``x y z`` where no point,
        ``is_dense`` false).
    """
    fields = [PointField(name=name, offset=offset, datatype=_POINT_FIELD_TYPES[kind.str], count=1)
              for name, (kind, offset) in cloud.dtype.fields.items()]
    data = array.array('B')
    data.frombytes(np.ascontiguousarray(cloud).view(np.uint8).reshape(-1))
    height, width = cloud.shape if cloud.ndim == 2 else (1, len(cloud))
    msg = PointCloud2(header=header, height=height, width=width, fields=fields,
                      is_bigendian=False, point_step=cloud.dtype.itemsize,
                      row_step=cloud.dtype.itemsize * width, is_dense=cloud.ndim != 2)
    # Set after construction: the constructor copies its data argument (2 ms for 0.4 million
    # points), the setter keeps an array('B') as it is.
    msg.data = data
    return msg


def occupancy_grid(header, frame_id: str, spec: GridSpec, cells: np.ndarray) -> 'OccupancyGrid':
    """Return the cells as an OccupancyGrid: the image's stamp, identity orientation."""
    grid = OccupancyGrid()
    grid.header.stamp = header.stamp
    grid.header.frame_id = frame_id
    grid.info.map_load_time = header.stamp
    grid.info.resolution = float(spec.resolution)
    grid.info.width, grid.info.height = spec.width, spec.height
    grid.info.origin.position.x, grid.info.origin.position.y = spec.origin
    grid.info.origin.orientation.w = 1.0
    grid.data = array.array('b', cells.astype(np.int8).tobytes())
    return grid


class DepthPairing:
    """
    The newest depth images, and the one whose stamp pairs with a colour frame's.

    A colour frame is held for (:meth:`hold`) when the worker takes it: its depth image, here
    already or arriving while the network runs, is kept aside, so that however long the network
    takes, newer depth images cannot push it out of the history before :meth:`take`.
    """

    def __init__(self, history: int = DEPTH_HISTORY) -> None:
        self._frames: deque = deque(maxlen=history)
        self._condition = threading.Condition()
        self._wanted: tuple[int, int] | None = None  # (colour stamp, skew), ns
        self._held: tuple[int, Image] | None = None

    def add(self, msg: Image) -> None:
        """Keep a depth image (called from the subscription)."""
        entry = (stamp_ns(msg.header.stamp), msg)
        with self._condition:
            self._frames.append(entry)
            if self._wanted is not None and self._held is None and \
                    abs(entry[0] - self._wanted[0]) <= self._wanted[1]:
                self._held = entry
            self._condition.notify_all()

    def hold(self, colour_ns: int, max_skew_s: float) -> None:
        """Keep the depth image of the colour frame now in hand, here already or still to come."""
        skew_ns = int(round(max_skew_s * 1e9))
        with self._condition:
            self._wanted = (colour_ns, skew_ns)
            self._held = self._nearest(colour_ns, skew_ns, self._frames)

    @staticmethod
    def _nearest(colour_ns: int, skew_ns: int, entries) -> tuple[int, Image] | None:
        best = min(entries, default=None, key=lambda entry: abs(entry[0] - colour_ns))
        return best if best is not None and abs(best[0] - colour_ns) <= skew_ns else None

    def take(self, colour_ns: int, max_skew_s: float, wait_s: float = DEPTH_WAIT_S):
        """
        Return the depth image nearest in stamp within ``max_skew_s`` of ``colour_ns``, or None.

        Waits up to ``wait_s`` while none matches and no newer depth image has arrived yet (the
        depth of this frame may still be on its way).
        """
        skew_ns = int(round(max_skew_s * 1e9))
        deadline = time.monotonic() + wait_s
        with self._condition:
            held = [self._held] if self._held is not None and \
                self._wanted == (colour_ns, skew_ns) else []
            self._wanted = self._held = None
            while True:
                best = self._nearest(colour_ns, skew_ns, [*held, *self._frames])
                if best is not None:
                    return best[1]
                newest = self._frames[-1][0] if self._frames else None
                remaining = deadline - time.monotonic()
                if (newest is not None and newest > colour_ns + skew_ns) or remaining <= 0:
                    return None
                self._condition.wait(remaining)


class DepthOutputs:
    """The ~/points, ~/obstacle_points, ~/objects, ~/freespace publishers and their work."""

    def __init__(self, node, values: dict, output_qos, input_qos, camera_info,
                 class_names: tuple[str, ...]) -> None:
        """
        Create the publishers, the depth subscription and the tf listener the values ask for.

        :param node: the segmentation node.
        :param values: the node's parameter values (read at every frame: runtime changes apply).
        :param camera_info: returns the newest colour CameraInfo, or None.
        :param class_names: the model's classes, to check obstacle_classes and freespace_classes.
        :raises StartupError: naming a class the model does not have.
        """
        for parameter in CLASS_LIST_VALUES:
            reason = unknown_classes_reason(parameter, values[parameter], class_names)
            if reason:
                raise StartupError(reason)
        self._node = node
        self._values = values
        self._camera_info = camera_info
        self._warnings = ThrottledWarnings(node.get_logger().warning)
        self.counts = {'depth images received': 0, 'frames without paired depth': 0,
                       'depth images rejected': 0, 'depth frames without a valid point': 0,
                       'frames without camera_info': 0, 'frames without a transform': 0,
                       'camera pose jumps': 0, '3-D output failures': 0}
        self._last_pose: dict[str, RigidTransform] = {}
        self._last_stamp_ns = 0
        self.last_problem = ''
        self._points_publisher = node.create_publisher(PointCloud2, '~/points', output_qos)
        self._obstacles_publisher = node.create_publisher(PointCloud2, '~/obstacle_points',
                                                          output_qos)
        self._objects_publisher = None
        if messages.Detection3DArray is not None:
            self._objects_publisher = node.create_publisher(messages.Detection3DArray,
                                                            '~/objects', output_qos)
        self._pairing = DepthPairing()
        self._depth_topic = values['depth_topic']
        if self._depth_topic:
            node.create_subscription(Image, self._depth_topic, self.depth_callback, input_qos)
            node.get_logger().info(f'Depth from {self._depth_topic}: ~/points, '
                                   '~/obstacle_points, ~/objects and ~/freespace from depth')
            if self._objects_publisher is None:
                node.get_logger().warning(
                    f'~/objects is not published: vision_msgs cannot be imported '
                    f'({messages.VISION_MSGS_ERROR}); install ros-$ROS_DISTRO-vision-msgs')
        self._grid_publisher = self._tf_buffer = self._projection = None
        self.grid_off_reason = ''
        if OccupancyGrid is None:
            self.grid_off_reason = (f'nav_msgs cannot be imported ({NAV_MSGS_ERROR}); install '
                                    'ros-$ROS_DISTRO-nav-msgs')
        elif Buffer is None:
            self.grid_off_reason = (f'tf2_ros cannot be imported ({TF2_ERROR}): the camera '
                                    'pose is unknown; install ros-$ROS_DISTRO-tf2-ros-py')
        else:
            self._grid_publisher = node.create_publisher(OccupancyGrid, '~/freespace',
                                                         output_qos)
            self._tf_buffer = Buffer(node=node)
            self._tf_listener = TransformListener(self._tf_buffer, node)
        if self.grid_off_reason:
            node.get_logger().warning(f'~/freespace is not published: {self.grid_off_reason}; '
                                      '~/points and ~/obstacle_points still are')

    # ---- callbacks ----------------------------------------------------------------------------
    def depth_callback(self, msg: Image) -> None:
        """Keep the depth image for the colour frame with its stamp."""
        self.counts['depth images received'] += 1
        self._pairing.add(msg)

    def diagnostics(self) -> dict[str, str]:
        """Return the counters and state for /diagnostics."""
        values = {key: str(count) for key, count in self.counts.items()}
        values['depth topic'] = self._depth_topic or '(none: ground-plane rays)'
        values['freespace grid'] = self.grid_off_reason or (
            'on' if self._values['freespace_classes'] else 'off (freespace_classes is [])')
        values['points'] = "organized, the class map's grid" if self._values['cloud_organized'] \
            else f'every {self._values["cloud_stride"]} pixels, valid depth only'
        values['last 3-D output problem'] = self.last_problem or 'none'
        return values

    # ---- per frame ----------------------------------------------------------------------------
    def wanted(self) -> bool:
        """Return True when a subscriber waits for one of the 3-D outputs."""
        return any(self._wanted())

    def _wanted(self) -> tuple[bool, bool, bool, bool]:
        depth = bool(self._depth_topic)
        points = depth and self._points_publisher.get_subscription_count() > 0
        obstacles = (depth and bool(self._values['obstacle_classes']) and
                     self._obstacles_publisher.get_subscription_count() > 0)
        grid = (self._grid_publisher is not None and bool(self._values['freespace_classes']) and
                self._grid_publisher.get_subscription_count() > 0)
        objects = (depth and self._objects_publisher is not None and
                   self._objects_publisher.get_subscription_count() > 0)
        return points, obstacles, grid, objects

    def frame_taken(self, header) -> None:
        """Hold the depth image of a colour frame about to be segmented (see DepthPairing)."""
        if self._depth_topic:
            self._pairing.hold(stamp_ns(header.stamp), self._values['depth_max_skew'])

    def process(self, header, result, labels, output_class_map=None) -> None:
        """
        Publish the 3-D outputs of one segmented frame that have subscribers.

        A fault of this frame's 3-D outputs (depth, camera_info, tf, or an error in their
        computation) is counted and warned about; it never reaches the frame's other outputs.

        :param header: the colour image's header.
        :param result: its :class:`~seg_ros.core.segmenter.SegmentationResult` (with track ids).
        :param labels: the segmenter's :class:`~seg_ros.core.model.labels.Labels`.
        :param output_class_map: ``~/class_map``'s pixels (at ``output_resolution``), the grid
            of the organized cloud; None: the frame-size class map.
        """
        wanted = self._wanted()
        if not any(wanted):
            return
        try:
            self._process(header, result, labels, output_class_map, *wanted)
        except Exception as error:  # never let one frame's 3-D outputs stop the others
            self._problem('3-D output failures',
                          f'3-D outputs failed for this frame: {type(error).__name__}: {error}')

    def _process(self, header, result, labels, output_class_map, want_points: bool,
                 want_obstacles: bool, want_grid: bool, want_objects: bool) -> None:
        info = self._camera_info()
        if info is None or not info.width or not info.height:
            self._problem('frames without camera_info',
                          'no camera_info received for the colour camera: no 3-D outputs')
            return
        class_map = result.class_map_full if result.class_map_full is not None \
            else result.class_map
        try:
            camera = Intrinsics.from_k(info.k, info.width, info.height)
        except ValueError as error:
            self._problem('frames without camera_info', f'camera_info unusable: {error}')
            return
        points = None
        if self._depth_topic:
            depth = self._depth(header, camera)
            if depth is None:
                return
            metres, intrinsics = depth
            organized = want_points and self._values['cloud_organized']
            if want_obstacles or want_grid or (want_points and not organized):
                points = self._points(metres, intrinsics, class_map, result.instance_map,
                                      labels.colors_rgb)
            if organized:
                self._points_publisher.publish(point_cloud(header, frame_points(
                    metres, camera, result, labels.colors_rgb, stride=1, organized=True,
                    output_class_map=output_class_map)))
            elif want_points:
                self._points_publisher.publish(point_cloud(header, points.cloud(
                    labels.colors_rgb)))
            if want_obstacles:
                obstacle_ids, _ = self._class_ids('obstacle_classes', labels.names)
                obstacles = points.select(np.isin(points.labels, obstacle_ids))
                self._obstacles_publisher.publish(point_cloud(header, obstacles.cloud(
                    labels.colors_rgb)))
            if want_objects:
                self._objects_publisher.publish(messages.objects(frame_objects(
                    metres, camera, result, self._values['min_object_points']), header))
        if want_grid:
            self._publish_grid(header, camera, class_map, points, labels.names)

    def _depth(self, header, camera: Intrinsics) -> tuple[np.ndarray, Intrinsics] | None:
        """Return the paired depth in metres and its intrinsics, or None (counted, warned)."""
        values = self._values
        depth_msg = self._pairing.take(stamp_ns(header.stamp), values['depth_max_skew'])
        if depth_msg is None:
            self._problem('frames without paired depth',
                          f'no depth image on {self._depth_topic} within '
                          f'{values["depth_max_skew"]} s of the colour stamp '
                          f'{header.stamp.sec}.{header.stamp.nanosec:09d}: no points')
            return None
        encoding = depth_msg.encoding
        try:
            if encoding not in DEPTH_ENCODINGS:
                raise ImageConversionError(f'encoding {encoding!r} is not a depth encoding '
                                           f'({", ".join(DEPTH_ENCODINGS)})')
            depth = image_to_array(depth_msg)
            intrinsics = camera.scaled_to(depth.shape[1], depth.shape[0])
            metres = depth_to_metres(depth, tuple(values['depth_range']), encoding)
        except ValueError as error:  # ImageConversionError is one
            self._problem('depth images rejected', f'depth image rejected: {error}')
            return None
        if not np.isfinite(metres).any():
            self._problem('depth frames without a valid point',
                          f'no valid depth in the frame (0, NaN or outside depth_range '
                          f'{list(values["depth_range"])}): empty clouds')
        return metres, intrinsics

    def _points(self, metres: np.ndarray, intrinsics: Intrinsics, class_map, instance_map,
                colors_rgb) -> LabelledPoints:
        return labelled_points(metres, intrinsics, class_map, self._values['cloud_stride'],
                               instance_map, colors_rgb)

    def _publish_grid(self, header, camera: Intrinsics, class_map, points, class_names) -> None:
        values = self._values
        free_ids, _ = self._class_ids('freespace_classes', class_names)
        try:
            spec = GridSpec(values['grid_resolution'], *values['grid_size'])
        except ValueError as error:  # a size the parameter checks let through: too many cells
            self.last_problem = f'~/freespace: {error}'
            self._warnings.warn(self.last_problem, kind='grid')
            return
        pose = self._camera_pose(header)
        if pose is None:
            return
        if points is not None:
            cells = points_occupancy(points.xyz_columns, pose, points.labels, free_ids, spec)
        else:
            cells = self._ground_projection(camera, pose, class_map.shape, spec).cells(
                class_map, free_ids)
        self._grid_publisher.publish(occupancy_grid(header, values['grid_frame'], spec, cells))

    def _ground_projection(self, camera: Intrinsics, pose: RigidTransform, map_shape,
                           spec: GridSpec) -> GroundProjection:
        # Rebuilt only when the camera, its pose, the grid or the stride change.
        stride = self._values['cloud_stride']
        key = GroundProjection.key_of(camera, pose, map_shape, stride, spec)
        if self._projection is None or self._projection.key != key:
            self._projection = GroundProjection.build(camera, pose, map_shape, stride, spec)
        return self._projection

    def _camera_pose(self, header) -> RigidTransform | None:
        target, source = self._values['grid_frame'], header.frame_id
        now_ns = stamp_ns(header.stamp)
        if now_ns < self._last_stamp_ns - 1_000_000_000:
            # Time went back (a bag played again, a simulator reset): tf's history is stale.
            self._node.get_logger().warning('image stamps jumped back in time: tf buffer cleared')
            self._tf_buffer.clear()
            self._last_pose.clear()
        self._last_stamp_ns = now_ns
        try:
            stamped = self._tf_buffer.lookup_transform(
                target, source, Time.from_msg(header.stamp),
                timeout=Duration(seconds=self._values['tf_timeout']))
            transform = stamped.transform
            pose = RigidTransform.from_quaternion(
                (transform.translation.x, transform.translation.y, transform.translation.z),
                (transform.rotation.x, transform.rotation.y, transform.rotation.z,
                 transform.rotation.w))
        except (TransformException, ValueError) as error:
            self._problem('frames without a transform',
                          f'no usable transform {target} <- {source!r} at the image stamp '
                          f'({type(error).__name__}: {error}): no ~/freespace for this frame')
            return None
        previous = self._last_pose.get(source)
        self._last_pose[source] = pose
        if previous is not None:
            moved = float(np.linalg.norm(pose.translation - previous.translation))
            cosine = (np.trace(previous.rotation.T @ pose.rotation) - 1.0) / 2.0
            turned = float(np.arccos(np.clip(cosine, -1.0, 1.0)))
            if moved > POSE_JUMP_M or turned > POSE_JUMP_RAD:
                self._problem('camera pose jumps',
                              f'camera pose {target} <- {source!r} jumped by {moved:.2f} m, '
                              f'{np.degrees(turned):.0f} deg since the last frame: no '
                              '~/freespace for this frame (the new pose is used from the next)')
                return None
        return pose

    def _class_ids(self, parameter: str,
                   class_names: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
        ids, unknown = class_ids(list(self._values[parameter] or ()), class_names)
        if unknown:
            self._warnings.warn(f'{parameter}: {", ".join(map(repr, unknown))} not a class of '
                                f'the model (classes: {", ".join(class_names)}); ignored',
                                kind=parameter)
        return ids, unknown

    def _problem(self, counter: str, message: str) -> None:
        self.counts[counter] += 1
        self.last_problem = message
        self._warnings.warn(message)
