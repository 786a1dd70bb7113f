"""
One camera's frames through the node: the newest-frame slot, the worker and encoder threads.

The subscription callbacks only hand the serialised frame to a
:class:`~seg_ros.core.latest_frame.LatestFrameSlot` (a frame still waiting is replaced and counted
as dropped); the worker thread takes the newest, deserialises and checks it, runs the segmenter for
the outputs that have subscribers (:mod:`seg_ros.frame_outputs`), gives the frame's instances their
track ids (:class:`~seg_ros.frame_tracks.FrameTracks`, one camera's tracker) and publishes them
with the frame's header; the encoder thread compresses the ``/compressed`` outputs beside it, so
encoding adds no time to the next frame. In a hub of several cameras
(:mod:`seg_ros.ros.multi_camera`) the hub's workers call :meth:`FramePipeline.handle_frame` instead
of a worker of the pipeline's own. Every count and time is kept in :class:`FrameCounters`, read by
:mod:`seg_ros.ros.diagnostics`.
"""

import threading
import time
from typing import Callable

from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from seg_ros.core.latest_frame import LatestFrameSlot
from seg_ros.core.segmenter import Segmenter
from seg_ros.core.stats import DurationWindow, RateMeter, StageClock, StageProfile
from seg_ros.core.track.settings import TrackSettings
from seg_ros.frame_outputs import assemble, segment
from seg_ros.frame_tracks import FrameTracks
from seg_ros.output_topics import IMAGE_OUTPUTS
from seg_ros.ros import compressed, messages
from seg_ros.ros.image_conversion import array_to_image, ImageConversionError, to_bgr8, to_rgb8
from seg_ros.ros.output_publishers import OutputPublishers
from seg_ros.ros.throttle import ThrottledWarnings, WARN_THROTTLE_S

# A frame's path in the worker (receive: deserialise, check, view; convert: to the colour
# encoding; segment: Segmenter.run; publish: the messages), and segment's own split.
FRAME_STAGES = ('receive', 'convert', 'segment', 'publish')
SEGMENT_STAGES = ('prepare', 'network', 'decode', 'render')
_CODECS = {output.name: output.codec for output in IMAGE_OUTPUTS}


class FrameCounters:
    """What the pipeline counts and times, for /diagnostics."""

    def __init__(self) -> None:
        """Start every count at zero."""
        self.received = RateMeter()
        self.published = RateMeter()
        self.inference_ms = DurationWindow()
        self.stages = StageProfile(FRAME_STAGES)
        self.segment_split = {name: DurationWindow() for name in SEGMENT_STAGES}
        self.latency_ms = DurationWindow()
        self.encoding_ms = {output.codec: DurationWindow() for output in IMAGE_OUTPUTS}
        self.rejected = 0
        self.last_rejection = ''
        self.last_accepted: float | None = None
        self.skipped_no_subscribers = 0
        self.failed = 0
        self.last_error = ''
        self.started = time.monotonic()

    def restart_clock(self) -> None:
        """Count the stale-input timers from now (a managed node's activation)."""
        self.started = time.monotonic()
        self.received.last_time = self.last_accepted = None


class FramePipeline:
    """The frames of one camera: taken in, segmented, published; safe from the callbacks."""

    def __init__(self, values: dict, outputs: OutputPublishers, logger,
                 now_ns: Callable[[], int], slot: LatestFrameSlot | None = None) -> None:
        """
        Make the slots and counters; no thread runs before :meth:`start`.

        :param values: the node's parameter values, read at every frame.
        :param outputs: the node's output publishers.
        :param logger: the node's logger.
        :param now_ns: the node's clock, for the latency of each frame.
        :param slot: the slot a hub's workers take this camera's frames from (then the
            pipeline starts no worker of its own).
        """
        self.values = values
        self.outputs = outputs
        self.counters = FrameCounters()
        self.slot: LatestFrameSlot[tuple] = slot or LatestFrameSlot()
        self.encode_slot: LatestFrameSlot[tuple] = LatestFrameSlot()
        self.own_worker = slot is None
        self.camera_info: CameraInfo | None = None
        #: This camera's object tracks (made again when a tracking parameter changes).
        self.tracks = FrameTracks(TrackSettings.from_values(values))
        #: The 3-D outputs (seg_ros.ros.depth_outputs.DepthOutputs), once the node has made them.
        self.depth_outputs = None
        self._segmenter: Segmenter | None = None
        self._segmenter_lock = threading.Lock()
        self._active = False
        self._active_lock = threading.Lock()  # held by the frame in hand
        self._logger = logger
        self._warnings = ThrottledWarnings(logger.warning)
        self._now_ns = now_ns
        self._messages: dict = {}
        self._threads: list[threading.Thread] = []

    # ---- the network ------------------------------------------------------------------------
    @property
    def segmenter(self) -> Segmenter | None:
        """Return the running network (None before one is given)."""
        return self._segmenter

    def set_segmenter(self, segmenter: Segmenter | None) -> None:
        """Run ``segmenter`` from the next frame on (the frame in hand finishes first)."""
        with self._segmenter_lock:
            self._segmenter = segmenter
        if segmenter is None:
            self._messages = {}

    # ---- threads and activity ---------------------------------------------------------------
    def start(self) -> None:
        """Start the encoder thread, and the worker unless a hub's workers serve this camera."""
        if self.own_worker:
            self._threads.append(threading.Thread(target=self._work, name='segmentation',
                                                  daemon=True))
        # Compression runs beside the segmentation, so it adds no time to the next frame's.
        self._threads.append(threading.Thread(target=self._encode_work, name='compression',
                                              daemon=True))
        for thread in self._threads:
            thread.start()

    def activate(self) -> None:
        """Segment the frames that arrive from now on."""
        with self._active_lock:
            self._active = True

    def deactivate(self) -> None:
        """Stop segmenting: wait for the frame in hand, drop the frames still waiting."""
        with self._active_lock:
            self._active = False
        self.slot.take(timeout=0)
        self.encode_slot.take(timeout=0)

    def stop(self) -> None:
        """Stop the threads (the worker finishes the frame in hand)."""
        self.slot.close()
        self.encode_slot.close()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=1.5)

    # ---- callbacks ----------------------------------------------------------------------------
    def image_callback(self, data: bytes) -> None:
        """Hand a serialised frame to the worker, replacing any frame still waiting."""
        self.counters.received.tick()
        self.slot.put((data, Image))

    def compressed_image_callback(self, data: bytes) -> None:
        """Hand a serialised compressed frame to the worker, replacing any frame waiting."""
        self.counters.received.tick()
        self.slot.put((data, CompressedImage))

    def camera_info_callback(self, msg: CameraInfo) -> None:
        """Keep the newest camera_info for ~/camera_info and the 3-D outputs."""
        self.camera_info = msg

    # ---- per frame ----------------------------------------------------------------------------
    def _work(self) -> None:
        while not self.slot.closed:
            item = self.slot.take(timeout=0.2)
            if item is not None:
                self.handle_frame(item)

    def handle_frame(self, item: tuple) -> None:
        """Segment one frame taken from this camera's slot and publish its outputs."""
        with self._active_lock:  # deactivate waits for the frame in hand
            if self._active:
                self._handle(item)

    def _handle(self, item: tuple) -> None:
        counters = self.counters
        clock = StageClock(counters.stages)
        frame_of = messages.compressed_frame if item[1] is CompressedImage else \
            messages.raw_frame
        try:
            header, frame, encoding = frame_of(item[0])
        except ImageConversionError as error:
            self._reject(str(error), kind='encoding' if isinstance(
                error, messages.UnsupportedEncoding) else None)
            return
        counters.last_accepted = time.monotonic()
        clock.lap('receive')
        try:
            self._process(header, frame, encoding, clock)
            counters.last_error = ''
        except Exception as error:  # keep segmenting after any per-frame failure
            counters.failed += 1
            counters.last_error = f'processing failed: {error}'
            self._logger.error(counters.last_error, throttle_duration_sec=WARN_THROTTLE_S)

    def _reject(self, reason: str, kind: str | None = None) -> None:
        self.counters.rejected += 1
        self.counters.last_rejection = reason
        # One throttle per kind of fault, so a stream of one malformed kind cannot hide another.
        self._warnings.warn(f'frame rejected: {reason}', kind=kind)

    def _process(self, header: Header, frame, frame_encoding: str, clock: StageClock) -> None:
        values, outputs, counters = self.values, self.outputs, self.counters
        model_resolution = values['output_resolution'] == 'model'
        want_camera_info = (model_resolution and self.camera_info is not None and
                            outputs.camera_info_wanted())
        want_3d = self.depth_outputs is not None and self.depth_outputs.wanted()
        selection, masks = outputs.wanted(values, self._segmenter.makes_instances,
                                          class_map=want_camera_info or want_3d,
                                          makes_confidence=self._segmenter.makes_confidence)
        if not selection.anything():
            counters.skipped_no_subscribers += 1
            return
        if want_3d:
            self.depth_outputs.frame_taken(header)
        encoding = values['color_encoding']
        image = (to_rgb8 if encoding == 'rgb8' else to_bgr8)(frame, frame_encoding)
        clock.lap('convert')
        with self._segmenter_lock:
            segmenter = self._segmenter
            result = segment(segmenter, image, selection, model_resolution=model_resolution,
                             encoding=encoding, alpha=values['alpha'])
        counters.inference_ms.add(result.inference_ms)
        clock.lap('segment')
        for name, milliseconds in segmenter.backend.last_stages.items():
            counters.segment_split[name].add(milliseconds)
        counters.segment_split['render'].add(result.total_ms - result.inference_ms)
        stamp = header.stamp
        result = self.tracks.identify(result, stamp.sec + stamp.nanosec * 1e-9)
        frame_outputs = assemble(result, selection, model_resolution=model_resolution,
                                 encoding=encoding)
        self._publish(header, frame_outputs, selection, masks, result.class_map)
        if want_camera_info:
            self._publish_camera_info(header, frame_outputs.class_map.shape)
        if want_3d:
            self.depth_outputs.process(header, result, segmenter.labels, frame_outputs.class_map)
        counters.published.tick()
        clock.lap('publish')
        counters.latency_ms.add(
            (self._now_ns() - (stamp.sec * 1_000_000_000 + stamp.nanosec)) / 1e6)

    def _publish(self, header: Header, frame_outputs, selection, masks: dict,
                 model_map) -> None:
        outputs = self.outputs
        for name, (pixels, encoding) in frame_outputs.images.items():
            if name in selection.raw:
                self._publish_image(outputs.images[name], name, pixels, encoding, header)
        # The backend may re-use its model-size class map for the next frame.
        jobs = [(name, pixels.copy() if pixels is model_map else pixels, encoding)
                for name, (pixels, encoding) in frame_outputs.images.items()
                if name in selection.compressed]
        if jobs:
            self.encode_slot.put((header, jobs))
        for class_id, mask in frame_outputs.masks.items():
            self._publish_image(masks[class_id], ('mask', class_id), mask, 'mono8', header)
        if frame_outputs.instance_map is not None:
            self._publish_image(outputs.instance_map, 'instance_map',
                                frame_outputs.instance_map, 'mono16', header)
        if frame_outputs.instances is not None:
            outputs.instances.publish(messages.detections(frame_outputs.instances, header))
        if frame_outputs.confidence is not None:
            self._publish_image(outputs.confidence, 'confidence', frame_outputs.confidence,
                                'mono8', header)

    def _publish_image(self, publisher, key, pixels, encoding: str, header: Header) -> None:
        # publish() serialises at once, so the message's buffer is re-used next frame.
        out = array_to_image(pixels, encoding, header, msg=self._messages.get(key))
        self._messages[key] = out
        publisher.publish(out)

    def _publish_camera_info(self, header: Header, shape: tuple[int, ...]) -> None:
        try:
            info = messages.scaled_camera_info(self.camera_info, shape[1], shape[0], header)
        except ValueError as error:
            self._warnings.warn(f'camera_info unusable, ~/camera_info not published: {error}')
            return
        self.outputs.camera_info.publish(info)

    def _encode_work(self) -> None:
        """Compress and publish the newest frame's outputs; older ones waiting are dropped."""
        while not self.encode_slot.closed:
            item = self.encode_slot.take(timeout=0.2)
            if item is None:
                continue
            header, jobs = item
            for name, pixels, encoding in jobs:
                codec = _CODECS[name]
                try:
                    started = time.perf_counter()
                    text, data = compressed.encode(
                        pixels, encoding, codec, jpeg_quality=self.values['jpeg_quality'],
                        png_level=self.values['png_level'])
                    self.counters.encoding_ms[codec].add((time.perf_counter() - started) * 1e3)
                    self.outputs.compressed[name].publish(
                        compressed.fill_compressed(CompressedImage(), header, text, data))
                except Exception as error:  # never let one frame stop the compressed outputs
                    self.counters.failed += 1
                    self._logger.error(f'compressing {name} failed: {error}',
                                       throttle_duration_sec=WARN_THROTTLE_S)
