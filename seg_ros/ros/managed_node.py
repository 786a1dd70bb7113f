"""
The segmentation node as a ROS 2 managed (lifecycle) node: ``managed:=true`` in the launch files.

Same name, parameters, topics and per-frame work as :class:`SegmentationNode`; the lifecycle
services (``~/change_state``, ``~/get_state``, ``~/get_available_transitions`` ...) decide what
exists when:

- *unconfigured*: parameters and ``/diagnostics`` only; no model, no subscription, no output.
- *configure*: reads and checks the parameters, loads and warms the model, makes the output
  publishers (lifecycle publishers, still off). A model that does not load fails the transition
  (back to unconfigured) with the reason in the log and on ``/diagnostics``; set the parameter and
  configure again.
- *activate*: the outputs come on, the latched ``~/labels`` and ``~/label_info`` are sent again,
  the camera subscriptions are made. *deactivate*: the subscriptions go, the frame in hand
  finishes, the outputs go off; the model stays loaded.
- *cleanup*: the outputs are destroyed and the model freed. *shutdown* (from any state): the
  same, then the process exits with status 0.

A transition the current state does not have (configure while inactive ...) is refused with
``success: false``, as rclcpp's lifecycle nodes do: rclpy's own service callback lets rcl's
error escape and stop the executor.
"""

import sys
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from lifecycle_msgs.srv import ChangeState
from rcl_interfaces.msg import SetParametersResult
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNodeMixin, LifecyclePublisher, LifecycleState
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter

from seg_ros.ros.parameters import PARAMETERS, PARAMETERS_BY_NAME
from seg_ros.ros.runner import run_node, StartupError
from seg_ros.ros.segmentation_node import SegmentationNode

SUCCESS = TransitionCallbackReturn.SUCCESS
FAILURE = TransitionCallbackReturn.FAILURE
# Time for the shutdown transition's reply to leave before the process ends.
EXIT_DELAY_S = 0.5


class ManagedSegmentationNode(LifecycleNodeMixin, SegmentationNode):
    """The segmentation node whose model, outputs and inputs follow its lifecycle state."""

    def __init__(self, **kwargs) -> None:
        Node.__init__(self, 'segmentation', **kwargs)
        LifecycleNodeMixin.__init__(self)
        self.finished = False
        self._inputs: list = []
        self._processing = False
        self._processing_lock = threading.Lock()
        self._configure_error = ''
        self._set_up()
        self._start_workers()
        service = self._service_change_state
        self._unguarded_change_state = service.callback
        service.callback = self.change_state_callback
        self.get_logger().info('Managed node, unconfigured: waiting for the configure transition')

    # ---- lifecycle services -------------------------------------------------------------------
    @property
    def state_label(self) -> str:
        """Return the current lifecycle state: 'unconfigured', 'inactive', 'active' ..."""
        return self._state_machine.current_state[1]

    def change_state_callback(self, request: ChangeState.Request,
                              response: ChangeState.Response) -> ChangeState.Response:
        """Run a requested transition; refuse one the current state does not have."""
        transition = request.transition
        available = {description[0]: description[1]
                     for description in self._state_machine.available_transitions}
        if not transition.label and transition.id not in available:
            return self._refuse(response, f'transition id {transition.id}', available)
        try:
            return self._unguarded_change_state(request, response)
        except _rclpy.RCLError as error:  # what rcl refuses, whatever the check above missed
            return self._refuse(response, f'transition {transition.label or transition.id} '
                                f'({error})', available)

    def _refuse(self, response: ChangeState.Response, what: str,
                available: dict) -> ChangeState.Response:
        choices = ', '.join(f'{label} ({transition_id})'
                            for transition_id, label in sorted(available.items()))
        self.get_logger().warning(f'{what} refused: not available in state '
                                  f'{self.state_label!r}; available: {choices}')
        response.success = False
        return response

    # ---- transitions --------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Check the parameters, load and warm the model, make the (inactive) outputs."""
        try:
            self._values = self._read_parameters()
            self._configure()
        except Exception as error:  # rclpy would turn it into ERROR without saying why
            self._release()
            reason = str(error) if isinstance(error, StartupError) else (
                f'{type(error).__name__}: {error}')
            return self._fail('configure', reason)
        self._configure_error = ''
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Turn the outputs on, re-send the latched labels, subscribe to the camera."""
        result = super().on_activate(state)
        if result != SUCCESS:
            return result
        # The stale-input timers of /diagnostics count from this activation, not the last one.
        self._started = time.monotonic()
        self._received.last_time = self._last_accepted = None
        with self._processing_lock:
            self._processing = True
        self._inputs = self._activate()
        return SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe, let the frame in hand finish, turn the outputs off; keep the model."""
        self._stop_inputs()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Destroy the outputs and free the model."""
        self._release()
        self.get_logger().info('Cleaned up: model freed, outputs destroyed')
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop everything from any state, then end the process once the reply is out."""
        self._stop_inputs()
        self._release()
        self.get_logger().info(f'Shut down from {state.label!r}: exiting')
        self._exit_timer = self.create_timer(EXIT_DELAY_S, self._finish)
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """After an unexpected error in a transition: release everything, back to unconfigured."""
        self._stop_inputs()
        self._release()
        self._configure_error = self._configure_error or f'error while leaving {state.label}'
        self.get_logger().error(f'{self._configure_error}: back to unconfigured')
        return SUCCESS

    def _finish(self) -> None:
        self.finished = True

    def _fail(self, transition: str, reason: str) -> TransitionCallbackReturn:
        self._configure_error = f'{transition} failed: {reason}'
        self.get_logger().error(f'{self._configure_error}; the node stays unconfigured: set '
                                f'the parameter and {transition} again')
        self.diagnostics_callback()
        return FAILURE

    def _read_parameters(self) -> dict:
        """Return every parameter's current value; raise StartupError naming a bad one."""
        values = {}
        for spec in PARAMETERS:
            value = self.get_parameter(spec.name).value
            value = spec.default if value is None else value
            reason = spec.check(value)
            if reason:
                raise StartupError(f'parameter {reason}')
            values[spec.name] = value
        return values

    def _stop_inputs(self) -> None:
        for subscription in self._inputs:
            self.destroy_subscription(subscription)
        self._inputs = []
        with self._processing_lock:  # waits for the frame in hand
            self._processing = False
        self._slot.take(timeout=0)
        self._encode_slot.take(timeout=0)

    def _release(self) -> None:
        for entity in list(self._managed_entities):
            if isinstance(entity, LifecyclePublisher):
                self.destroy_lifecycle_publisher(entity)
        with self._masks_lock:
            self._mask_publishers = {}
        with self._segmenter_lock:
            self._segmenter = self._pending_segmenter = None
        self._output_messages = {}

    # ---- hooks of SegmentationNode ------------------------------------------------------------
    def _make_publisher(self, msg_type, topic: str, qos_profile):
        publisher = self.create_lifecycle_publisher(msg_type, topic, qos_profile)
        if self.state_label == 'active':  # a mask added by a parameter change
            publisher.on_activate(None)
        return publisher

    def _drop_publisher(self, publisher) -> None:
        self.destroy_lifecycle_publisher(publisher)

    def _process(self, header, frame, frame_encoding: str, clock=None) -> None:
        with self._processing_lock:  # held by a frame in hand; deactivate waits for it
            if self._processing:
                super()._process(header, frame, frame_encoding, clock)

    def validate_parameters_callback(self, parameters: list[Parameter]) -> SetParametersResult:
        """With a model loaded, check as the unmanaged node does; without, check the values."""
        if self._segmenter is not None:
            return super().validate_parameters_callback(parameters)
        for parameter in parameters:
            spec = PARAMETERS_BY_NAME.get(parameter.name)
            if spec is not None:
                reason = spec.check(spec.default if parameter.value is None else parameter.value)
                if reason:
                    return SetParametersResult(successful=False, reason=reason)
        if not hasattr(self, 'add_post_set_parameters_callback'):
            self.apply_parameters_callback(parameters)  # Humble has no post-set callbacks
        return SetParametersResult(successful=True)

    def apply_parameters_callback(self, parameters: list[Parameter]) -> None:
        """Apply accepted changes; without a model, only keep the values for configure."""
        if self._segmenter is not None:
            super().apply_parameters_callback(parameters)
            return
        for parameter in parameters:
            spec = PARAMETERS_BY_NAME.get(parameter.name)
            if spec is not None:
                self._values[parameter.name] = (
                    spec.default if parameter.value is None else parameter.value)

    def diagnostics_callback(self) -> None:
        """While active as the unmanaged node; otherwise the state and any configure failure."""
        state = self.state_label
        if state == 'active' and self._segmenter is not None:
            super().diagnostics_callback()
            return
        status = DiagnosticStatus(name=f'{self.get_fully_qualified_name()}: segmentation')
        if self._configure_error:
            status.level, status.message = DiagnosticStatus.ERROR, self._configure_error
        elif state == 'inactive':
            status.level, status.message = DiagnosticStatus.OK, 'inactive: model loaded, idle'
        else:
            status.level, status.message = DiagnosticStatus.OK, f'{state}: no model loaded'
        model = self._segmenter.config.model_path if self._segmenter else self._values[
            'model_path']
        status.values = [KeyValue(key='lifecycle state', value=state),
                         KeyValue(key='model', value=model or '(embedded)')]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_publisher.publish(array)


def main(args: list[str] | None = None) -> int:
    """Run the managed node until shutdown, SIGINT or SIGTERM; exit status 1 on a bad override."""
    return run_node(ManagedSegmentationNode, 'segmentation', args)


if __name__ == '__main__':
    sys.exit(main())
