"""
A camera for testing and demos: publishes ``image_raw`` and ``camera_info`` from a source.

The ``source`` parameter picks it: ``synthetic`` (animated generated street scenes, the default), a
video file, an image file, a folder of images, or a camera device (``0``, ``/dev/video0``). Frames
go out at ``rate`` Hz with ``header.stamp`` = capture time and ``header.frame_id`` = ``frame_id``.
"""

import glob
import os
import sys
import time

import cv2
import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from seg_ros.ros import qos
from seg_ros.ros.image_conversion import array_to_image
from seg_ros.ros.parameter_table import ParameterTable, ParameterWatch
from seg_ros.ros.parameters import ParamSpec
from seg_ros.ros.runner import run_node, StartupError

# A looping folder source keeps at most this many bytes of decoded images.
KEEP_DECODED_BYTES = 512 * 1024 * 1024
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm')


class SourceError(StartupError):
    """The source cannot be opened or read: a message naming it."""


class FrameSource:
    """Frames from one kind of source; ``read`` returns a BGR frame or None at the end."""

    description = ''

    def read(self, elapsed_s: float) -> np.ndarray | None:
        raise NotImplementedError

    def rewind(self) -> None:
        """Start again from the first frame (sources that cannot rewind ignore it)."""

    def close(self) -> None:
        """Release the source."""


class SyntheticSource(FrameSource):
    """Animated generated street scenes; time drives the animation, so it never ends."""

    def __init__(self, width: int, height: int, seed: int, loop_frames: int = 0,
                 rate: float = 30.0) -> None:
        """
        Render scenes as time passes, or ``loop_frames`` of them once, replayed in a loop.

        Rendering a 720p scene costs most of a core at 30 Hz; a replayed loop costs what a
        camera driver does (a copy and a publish), for benchmarks that run beside the camera.
        """
        from seg_ros.data.synthetic import SceneAnimation
        self._animation = SceneAnimation(width, height, seed=seed)
        self.description = f'synthetic street scenes {width}x{height} (seed {seed})'
        self._rate = rate
        self._loop = [self._animation.frame(index / rate)[0] for index in range(loop_frames)]
        if loop_frames:
            self.description += f', {loop_frames} frames rendered once and replayed'

    def read(self, elapsed_s: float) -> np.ndarray | None:
        if self._loop:
            return self._loop[int(elapsed_s * self._rate) % len(self._loop)]
        frame, _ = self._animation.frame(elapsed_s)
        return frame


class CaptureSource(FrameSource):
    """A video file or a camera device through ``cv2.VideoCapture``."""

    def __init__(self, source: str) -> None:
        device = source[len('/dev/video'):] if source.startswith('/dev/video') else source
        target = int(device) if device.isdigit() else source
        self._capture = cv2.VideoCapture(target)
        self._is_device = isinstance(target, int)
        if not self._capture.isOpened():
            raise SourceError(f'source={source!r}: cannot open it as a video or camera device')
        first = self._capture.read()[1]
        if first is None:
            raise SourceError(f'source={source!r}: opened, but no frame could be read')
        self._first = first
        kind = 'camera device' if self._is_device else 'video file'
        self.description = f'{kind} {source}'

    def read(self, elapsed_s: float) -> np.ndarray | None:
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        ok, frame = self._capture.read()
        return frame if ok else None

    def rewind(self) -> None:
        if not self._is_device:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)

    def close(self) -> None:
        self._capture.release()


class FolderSource(FrameSource):
    """
    The images of a folder (or one image file), in name order.

    With ``keep_decoded`` (a looping source) the decoded images are kept, up to
    ``KEEP_DECODED_BYTES`` in all, and replayed without decoding them again: what a camera
    driver costs (a copy and a publish), not a JPEG decode a frame (about 6 ms of CPU for a
    0.4-megapixel photo), for benchmarks that run beside the camera.
    """

    def __init__(self, source: str, keep_decoded: bool = False) -> None:
        if os.path.isdir(source):
            paths = sorted(path for path in glob.glob(os.path.join(glob.escape(source), '*'))
                           if path.lower().endswith(IMAGE_SUFFIXES))
            if not paths:
                raise SourceError(f'source={source!r}: the folder holds no image '
                                  f'({", ".join(IMAGE_SUFFIXES)})')
        else:
            paths = [source]
        self._paths = paths
        self._index = 0
        self.description = f'{len(paths)} image(s) from {source}'
        self.unreadable: list[str] = []
        self._keep = keep_decoded
        self._decoded: dict[int, np.ndarray] = {}
        self._kept_bytes = 0

    def read(self, elapsed_s: float) -> np.ndarray | None:
        while self._index < len(self._paths):
            index = self._index
            self._index += 1
            if index in self._decoded:
                return self._decoded[index]
            path = self._paths[index]
            frame = cv2.imread(path, cv2.IMREAD_COLOR)
            if frame is not None:
                if self._keep and self._kept_bytes + frame.nbytes <= KEEP_DECODED_BYTES:
                    frame.setflags(write=False)
                    self._decoded[index] = frame
                    self._kept_bytes += frame.nbytes
                return frame
            if path not in self.unreadable:
                self.unreadable.append(path)
            if len(self.unreadable) == len(self._paths):
                raise SourceError(f'source={path!r}: no image in the source can be read')
        return None

    def rewind(self) -> None:
        self._index = 0


def open_source(source: str, width: int, height: int, seed: int, loop_frames: int = 0,
                rate: float = 30.0, loop: bool = False) -> FrameSource:
    """Open the source named by the ``source`` parameter (see the module docstring)."""
    if source == 'synthetic':
        return SyntheticSource(width, height, seed, loop_frames, rate)
    if source.isdigit() or source.startswith('/dev/video'):
        return CaptureSource(source)
    if not os.path.exists(source):
        raise SourceError(f'source={source!r}: no such file, folder or device')
    if os.path.isdir(source) or source.lower().endswith(IMAGE_SUFFIXES):
        return FolderSource(source, keep_decoded=loop)
    return CaptureSource(source)


def pinhole_camera_info(width: int, height: int, horizontal_fov_deg: float) -> CameraInfo:
    """Return an ideal pinhole CameraInfo (no distortion) for the given field of view."""
    focal = width / (2.0 * np.tan(np.radians(horizontal_fov_deg) / 2.0))
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    info = CameraInfo(width=width, height=height, distortion_model='plumb_bob')
    info.d = [0.0] * 5
    info.k = [focal, 0.0, cx, 0.0, focal, cy, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [focal, 0.0, cx, 0.0, 0.0, focal, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def _rate_reason(rate: float) -> str | None:
    return None if rate > 0.0 else f'rate={rate!r}: must be in (0, 1000] Hz'


def _size_reason(name: str):
    def reason(value: int) -> str | None:
        return None if value >= 0 else f'{name}={value!r} must be 0 (native size) or more'
    return reason


# camera_source's parameters. rate, loop and frame_id apply at runtime (rate: the timer is made
# again); the others are read once at start-up.
CAMERA_TABLE = ParameterTable((
    ParamSpec('source', 'synthetic', 'synthetic, a video file, an image file, a folder of '
              'images, or a camera device (0, /dev/video0).', read_only=True),
    ParamSpec('rate', 30.0, 'Frames per second, (0, 1000].', maximum=1000.0, minimum=0.0,
              validate=_rate_reason),
    ParamSpec('width', 1280, 'Frame width: synthetic size; for other sources 0 keeps the native '
              'size, else frames are resized.', read_only=True, validate=_size_reason('width')),
    ParamSpec('height', 720, 'Frame height (see width).', read_only=True,
              validate=_size_reason('height')),
    ParamSpec('frame_id', 'camera', 'header.frame_id.'),
    ParamSpec('loop', True, 'At the end of a file or folder start again (true) or stop the node.'),
    ParamSpec('seed', 0, 'Synthetic scene seed.', read_only=True),
    ParamSpec('synthetic_loop', 0, 'Synthetic source: render this many frames once and replay '
              'them in a loop (the CPU of a camera driver); 0 renders every frame.',
              minimum=0, maximum=300, read_only=True),
    ParamSpec('encoding', 'bgr8', 'Encoding of the images.', choices=('bgr8', 'rgb8'),
              read_only=True),
    ParamSpec('horizontal_fov_deg', 60.0, 'Field of view of the published camera_info.',
              minimum=1.0, maximum=179.0, read_only=True),
    ParamSpec('qos', 'sensor_data', 'sensor_data (best effort) or reliable.',
              choices=('sensor_data', 'reliable'), read_only=True),
    ParamSpec('max_frames', 0, 'Stop after this many frames (0: no limit).', minimum=0,
              maximum=2**31 - 1, read_only=True),
    ParamSpec('wait_for_subscribers', 0, 'Publish nothing until this many subscribers are '
              'matched on image_raw (0: start at once); replays a file from its first frame to '
              'a recorder.', minimum=0, maximum=1000, read_only=True),
))


class CameraSource(Node):
    """Publish frames from a source at a fixed rate."""

    def __init__(self, **kwargs) -> None:
        """Read the parameters, open the source, publish at ``rate``."""
        super().__init__('camera_source', **kwargs)
        values = self._values = CAMERA_TABLE.declare(self)
        self._size = (values['width'], values['height'])
        source = str(values['source'])
        if source == 'synthetic' and min(self._size) <= 0:
            raise SourceError(f'width, height={self._size}: a synthetic source needs a size')
        self._source = open_source(source, *self._size, values['seed'],
                                   values['synthetic_loop'], values['rate'], values['loop'])
        self._wait_for = values['wait_for_subscribers']
        self._frames = 0
        self._start = time.monotonic()
        image_qos = qos.image_qos(values['qos'], 1)
        self._image_publisher = self.create_publisher(Image, 'image_raw', image_qos)
        self._info_publisher = self.create_publisher(CameraInfo, 'camera_info', image_qos)
        self._info: CameraInfo | None = None
        self.finished = False
        self._timer = self.create_timer(1.0 / values['rate'], self.timer_callback)
        ParameterWatch(self, CAMERA_TABLE, dict, self.apply_parameters)
        self.get_logger().info(f'Publishing {self._source.description} at '
                               f'{values["rate"]:g} Hz on {self.resolve_topic_name("image_raw")}')

    def apply_parameters(self, changed: dict) -> None:
        """Apply a runtime change: a new rate makes the timer again; loop and frame_id apply."""
        self._values.update(changed)
        if 'rate' in changed and not self.finished:
            self.destroy_timer(self._timer)
            self._timer = self.create_timer(1.0 / changed['rate'], self.timer_callback)
            self.get_logger().info(f'Publishing at {changed["rate"]:g} Hz')

    def timer_callback(self) -> None:
        """Capture one frame and publish it with its camera_info, stamped at capture time."""
        if self._wait_for:
            if self._image_publisher.get_subscription_count() < self._wait_for:
                return
            self.get_logger().info(f'{self._wait_for} subscriber(s) matched: publishing')
            self._wait_for = 0
            self._start = time.monotonic()
        stamp = self.get_clock().now().to_msg()
        frame = self._source.read(time.monotonic() - self._start)
        if frame is None and self._values['loop']:
            self._source.rewind()
            frame = self._source.read(time.monotonic() - self._start)
        if frame is None:
            self.get_logger().info(f'End of source after {self._frames} frames')
            self._stop()
            return
        width, height = self._size
        if width > 0 and height > 0 and frame.shape[:2] != (height, width):
            frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
        if self._values['encoding'] == 'rgb8':
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        msg = array_to_image(frame, self._values['encoding'])
        msg.header.stamp = stamp
        msg.header.frame_id = self._values['frame_id']
        if self._info is None or (self._info.width, self._info.height) != (msg.width, msg.height):
            self._info = pinhole_camera_info(msg.width, msg.height,
                                             self._values['horizontal_fov_deg'])
        self._info.header = msg.header
        self._image_publisher.publish(msg)
        self._info_publisher.publish(self._info)
        self._frames += 1
        if self._values['max_frames'] and self._frames >= self._values['max_frames']:
            self._stop()

    def _stop(self) -> None:
        self._timer.cancel()
        self.finished = True

    def destroy_node(self) -> None:
        """Release the source, then destroy the node."""
        self._source.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Run the camera source until the end of a non-looping source or SIGINT/SIGTERM."""
    return run_node(CameraSource, 'camera_source', args)


if __name__ == '__main__':
    sys.exit(main())
