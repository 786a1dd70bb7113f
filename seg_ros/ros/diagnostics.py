"""
The segmentation node's ``/diagnostics`` status: backend, rates, timings, counters, faults.

:func:`segmentation_status` describes a node that segments (level OK, WARN when no frame arrived
or every frame was rejected for ``stale_timeout`` s, ERROR while frames fail);
:func:`lifecycle_status` a managed node that is not active.
"""

import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from seg_ros.ros.frame_pipeline import FramePipeline


def _percent(share: float | None) -> str:
    """Return a 0-1 share as a percentage with 2 decimals, or 'n/a' for None."""
    return 'n/a' if share is None else f'{100 * share:.2f}'


def _level(pipeline: FramePipeline, image_topic: str, now: float) -> tuple[int, str, float]:
    """Return the level, its message and the seconds since the last frame."""
    counters = pipeline.counters
    stale_timeout = pipeline.values['stale_timeout']
    last_frame = counters.received.last_time
    silent_for = now - (last_frame if last_frame is not None else counters.started)
    last_accepted = counters.last_accepted
    unusable_for = now - (last_accepted if last_accepted is not None else counters.started)
    if counters.last_error:
        return DiagnosticStatus.ERROR, counters.last_error, silent_for
    if silent_for > stale_timeout:
        return DiagnosticStatus.WARN, f'no image for {silent_for:.1f} s on {image_topic}', \
            silent_for
    if unusable_for > stale_timeout:
        # Frames arrive but none can be used (wrong encoding, malformed): not 'segmenting'.
        return DiagnosticStatus.WARN, (f'every image rejected for {unusable_for:.1f} s, last: '
                                       f'{counters.last_rejection}'), silent_for
    return DiagnosticStatus.OK, 'segmenting', silent_for


def segmentation_status(node_name: str, pipeline: FramePipeline,
                        image_topic: str) -> DiagnosticStatus:
    """
    Return the status of a node that segments.

    :param node_name: the node's fully qualified name.
    :param pipeline: its frames (with a segmenter).
    :param image_topic: the topic its frames come from.
    """
    now = time.monotonic()
    segmenter, counters = pipeline.segmenter, pipeline.counters
    backend = segmenter.backend
    inference = counters.inference_ms.summary()
    latency = counters.latency_ms.summary()
    level, message, silent_for = _level(pipeline, image_topic, now)
    status = DiagnosticStatus(name=f'{node_name}: segmentation', level=level, message=message,
                              hardware_id=f'{backend.name}/{backend.device}')
    depth_outputs = pipeline.depth_outputs
    values = {
        'backend': backend.name,
        'device': backend.device,
        'inference': backend.describe(),
        'model': segmenter.config.model_path,
        'model file running': segmenter.model_file,
        'precision fast agreement with f32 (%)': _percent(segmenter.fast_agreement),
        'output verified': segmenter.verification or 'not needed (runs as exported)',
        'input size': f'{backend.description.input_width}x{backend.description.input_height}',
        'input rate (Hz)': f'{counters.received.rate(now):.2f}',
        'output rate (Hz)': f'{counters.published.rate(now):.2f}',
        'inference mean (ms)': f'{inference["mean"]:.1f}',
        'inference p99 (ms)': f'{inference["p99"]:.1f}',
        'stage means, wall/worker CPU (ms)': counters.stages.line(),
        'segment split, wall (ms)': ', '.join(
            f'{name} {window.summary()["mean"]:.1f}'
            for name, window in counters.segment_split.items()),
        'latency p50 (ms)': f'{latency["p50"]:.1f}',
        'latency p99 (ms)': f'{latency["p99"]:.1f}',
        'frames received': str(counters.received.total),
        'frames processed': str(counters.published.total),
        'frames dropped (replaced by newer)': str(pipeline.slot.dropped),
        'frames rejected': str(counters.rejected),
        'frames skipped (no subscribers)': str(counters.skipped_no_subscribers),
        'processing failures': str(counters.failed),
        'compressed outputs dropped (encoder busy)': str(pipeline.encode_slot.dropped),
        **{f'{codec} encoding mean (ms)': f'{window.summary()["mean"]:.1f}'
           for codec, window in counters.encoding_ms.items()},
        'seconds since last frame': f'{silent_for:.1f}',
        'confidence': (f'none: {segmenter.confidence_reason}' if segmenter.confidence_reason
                       else 'made on frames ~/confidence has a subscriber'),
        **_track_values(pipeline),
        **(depth_outputs.diagnostics() if depth_outputs else {}),
    }
    status.values = [KeyValue(key=key, value=value) for key, value in values.items()]
    return status


def _track_values(pipeline: FramePipeline) -> dict[str, str]:
    """Return the tracker's state and faults (instance ids are track ids when it is on)."""
    tracks = pipeline.tracks
    if not pipeline.segmenter.makes_instances:
        return {'tracking': 'no instances to track'}
    if not tracks.settings.tracking:
        return {'tracking': 'off: instance ids 1..N every frame'}
    return {'tracking': 'on: instance ids are track ids',
            'tracks alive': str(tracks.live),
            'track resets (time back or a gap)': str(tracks.resets),
            'tracker failures (frame kept its own ids)': str(tracks.failures),
            'last tracker failure': tracks.last_failure or 'none'}


def lifecycle_status(node_name: str, state: str, error: str, model: str) -> DiagnosticStatus:
    """
    Return the status of a managed node that is not segmenting.

    :param state: its lifecycle state label ('unconfigured', 'inactive' ...).
    :param error: why the last configure failed, or ''.
    :param model: the model it loaded or will load.
    """
    status = DiagnosticStatus(name=f'{node_name}: segmentation')
    if error:
        status.level, status.message = DiagnosticStatus.ERROR, error
    elif state == 'inactive':
        status.level, status.message = DiagnosticStatus.OK, 'inactive: model loaded, idle'
    else:
        status.level, status.message = DiagnosticStatus.OK, f'{state}: no model loaded'
    status.values = [KeyValue(key='lifecycle state', value=state),
                     KeyValue(key='model', value=model or '(embedded)')]
    return status


def diagnostic_array(status: DiagnosticStatus, stamp) -> DiagnosticArray:
    """Return the /diagnostics message of one status."""
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array
