"""
The segmentation node as a ROS 2 managed (lifecycle) node: ``managed:=true`` in the launch files.

Same name, parameters, topics and per-frame work as :class:`SegmentationNode`: it is an
:class:`rclpy.lifecycle.Node` wired with the same :class:`SegmentationWiring`, one stage a
transition. The lifecycle services (``~/change_state``, ``~/get_state``,
``~/get_available_transitions`` ...) decide what exists when:

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
error escape and stop the executor, so the node's ``change_state`` service checks the
transition against ``get_available_transitions`` first.
"""

import sys

from lifecycle_msgs.srv import ChangeState, GetAvailableTransitions, GetState
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.lifecycle import Node as LifecycleNode

from seg_ros.ros.diagnostics import lifecycle_status
from seg_ros.ros.runner import run_node, StartupError
from seg_ros.ros.segmentation_node import SegmentationWiring

SUCCESS = TransitionCallbackReturn.SUCCESS
FAILURE = TransitionCallbackReturn.FAILURE
# Time for the shutdown transition's reply to leave before the process ends.
EXIT_DELAY_S = 0.5


class ManagedSegmentationNode(LifecycleNode):
    """The segmentation node whose model, outputs and inputs follow its lifecycle state."""

    def __init__(self, **kwargs) -> None:
        """Declare the parameters and start the pipeline; load nothing before configure."""
        super().__init__('segmentation', **kwargs)
        self.finished = False
        self._active = False
        self._configure_error = ''
        self.segmentation = SegmentationWiring(
            self, make_publisher=self._make_publisher,
            drop_publisher=self.destroy_lifecycle_publisher)
        self.create_timer(self.segmentation.values['diagnostics_period'],
                          self.diagnostics_callback)
        self.segmentation.start()
        services = {service.srv_name.rsplit('/', 1)[-1]: service for service in self.services}
        self._get_state = services['get_state']
        self._get_transitions = services['get_available_transitions']
        change_state = services['change_state']
        self._run_transition = change_state.callback
        change_state.callback = self.change_state_callback
        self.get_logger().info('Managed node, unconfigured: waiting for the configure transition')

    # ---- lifecycle services -------------------------------------------------------------------
    @property
    def state_label(self) -> str:
        """Return the current lifecycle state: 'unconfigured', 'inactive', 'active' ..."""
        response = self._get_state.callback(GetState.Request(), GetState.Response())
        return response.current_state.label

    def change_state_callback(self, request: ChangeState.Request,
                              response: ChangeState.Response) -> ChangeState.Response:
        """Run a requested transition; refuse one the current state does not have."""
        transition = request.transition
        listed = self._get_transitions.callback(GetAvailableTransitions.Request(),
                                                GetAvailableTransitions.Response())
        available = {item.transition.id: item.transition.label
                     for item in listed.available_transitions}
        if not transition.label and transition.id not in available:
            return self._refuse(response, f'transition id {transition.id}', available)
        try:
            return self._run_transition(request, response)
        except Exception as error:  # what rcl refuses, whatever the check above missed
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
            self.segmentation.read_parameters()
            self.segmentation.configure()
        except Exception as error:  # rclpy would turn it into ERROR without saying why
            self.segmentation.release()
            reason = str(error) if isinstance(error, StartupError) else (
                f'{type(error).__name__}: {error}')
            return self._fail('configure', reason)
        self._configure_error = ''
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Turn the outputs on, re-send the latched labels, subscribe to the camera."""
        result = super().on_activate(state)  # the lifecycle publishers come on
        if result != SUCCESS:
            return result
        # The stale-input timers of /diagnostics count from this activation, not the last one.
        self.segmentation.pipeline.counters.restart_clock()
        self._active = True
        self.segmentation.activate()
        return SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe, let the frame in hand finish, turn the outputs off; keep the model."""
        self._active = False
        self.segmentation.deactivate()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Destroy the outputs and free the model."""
        self.segmentation.release()
        self.get_logger().info('Cleaned up: model freed, outputs destroyed')
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop everything from any state, then end the process once the reply is out."""
        self._stop()
        self.get_logger().info(f'Shut down from {state.label!r}: exiting')
        self._exit_timer = self.create_timer(EXIT_DELAY_S, self._finish)
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """After an unexpected error in a transition: release everything, back to unconfigured."""
        self._stop()
        self._configure_error = self._configure_error or f'error while leaving {state.label}'
        self.get_logger().error(f'{self._configure_error}: back to unconfigured')
        return SUCCESS

    def _stop(self) -> None:
        self._active = False
        self.segmentation.deactivate()
        self.segmentation.release()

    def _finish(self) -> None:
        self.finished = True

    def _fail(self, transition: str, reason: str) -> TransitionCallbackReturn:
        self._configure_error = f'{transition} failed: {reason}'
        self.get_logger().error(f'{self._configure_error}; the node stays unconfigured: set '
                                f'the parameter and {transition} again')
        self.diagnostics_callback()
        return FAILURE

    def _make_publisher(self, msg_type, topic: str, qos_profile):
        """Make a lifecycle publisher; on at once while active (a mask added at runtime)."""
        publisher = self.create_lifecycle_publisher(msg_type, topic, qos_profile)
        if self._active:
            publisher.on_activate(None)
        return publisher

    # ---- reports ------------------------------------------------------------------------------
    def diagnostics_callback(self) -> None:
        """While active as the unmanaged node; otherwise the state and any configure failure."""
        state = self.state_label
        segmentation = self.segmentation
        segmenter = segmentation.pipeline.segmenter
        if state == 'active' and segmenter is not None:
            segmentation.publish_status(segmentation.segmentation_status())
            return
        model = segmenter.config.model_path if segmenter else segmentation.values['model_path']
        segmentation.publish_status(lifecycle_status(self.get_fully_qualified_name(), state,
                                                     self._configure_error, model))

    def destroy_node(self) -> None:
        """Stop the pipeline's threads, then destroy the node."""
        self.segmentation.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Run the managed node until shutdown, SIGINT or SIGTERM; exit status 1 on a bad override."""
    return run_node(ManagedSegmentationNode, 'segmentation', args)


if __name__ == '__main__':
    sys.exit(main())
