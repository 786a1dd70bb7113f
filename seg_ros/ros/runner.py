"""
How every seg_ros executable runs its node: start-up errors, signals, clean shutdown.

With the single-threaded executor (the managed node, camera_source) SIGINT and SIGTERM are this
module's, not rclpy's: rclpy's handlers shut the context down from a thread of their own while
the main thread, interrupted by the same signal, destroys the node, and that race crashed a node
now and then (exit -11 in ``Publisher.destroy`` under load: 1 run in 10 of ``ros2 launch``
stopping two managed nodes on a loaded machine). There the signal interrupts the main thread
only, and the shutdown runs in one order on that thread: the context, the executor, then the
node (its threads first). rclpy's events executor (the node, the hub) is left with rclpy's
handlers: without them it aborted at exit ('Destroying callback manager with callbacks
remaining') in about 1 run in 20 of the signal tests, in either order.
"""

import signal
from typing import Callable

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StartupError(Exception):
    """The node cannot start: one message naming the parameter (or source) and its value."""


def events_executor() -> Executor:
    """
    Return rclpy's EventsExecutor where this rclpy has it, else a SingleThreadedExecutor.

    The events executor queues each ready entity in C++ instead of rebuilding a wait set in
    Python for every callback: with several cameras' images arriving in one process, the
    single-threaded executor's own work held the GIL most of the time (measured in
    ``bench/multi_camera_bench.py``).
    """
    try:
        from rclpy.experimental import EventsExecutor
    except ImportError:  # an rclpy before Jazzy
        return SingleThreadedExecutor()
    return EventsExecutor()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt()


def run_node(make_node: Callable[[], Node], logger_name: str,
             args: list[str] | None = None,
             make_executor: Callable[[], Executor] = SingleThreadedExecutor) -> int:
    """
    Create a node and spin it until SIGINT/SIGTERM, or until its ``finished`` attribute is true.

    :param make_node: builds the node; raises :class:`StartupError` when it cannot start.
    :param logger_name: the logger that reports a start-up error.
    :param args: command line arguments for ``rclpy.init`` (``--ros-args ...``).
    :param make_executor: builds the executor (after ``rclpy.init``).
    :return: the process exit status: 0 after a normal end or a signal, 1 after a start-up error.
    """
    own_signals = make_executor is SingleThreadedExecutor
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO if own_signals
               else SignalHandlerOptions.ALL)
    previous = {number: signal.signal(number, _interrupt)
                for number in STOP_SIGNALS} if own_signals else {}
    executor = None
    node = None
    try:
        # Made before the node, so a signal during start-up cannot leave us without one.
        executor = make_executor()
        node = make_node()
        executor.add_node(node)
        for child in getattr(node, 'children', ()):  # the nodes a hub runs in this process
            executor.add_node(child)
        while rclpy.ok() and not getattr(node, 'finished', False):
            executor.spin_once(timeout_sec=0.1)
    except StartupError as error:
        rclpy.logging.get_logger(logger_name).fatal(f'cannot start: {error}')
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise
        # rclpy failed because SIGINT/SIGTERM shut the context down mid-start: a clean exit.
    finally:
        # With our handlers a second signal does not cut the shutdown short (ros2 launch
        # escalates to SIGKILL if it hangs), and the context goes first, as rclpy's handlers
        # would take it, but before anything is destroyed rather than beside it. The executor
        # lets go of the node's entities (rclpy's events executor aborts the process when it is
        # destroyed holding callbacks of entities already destroyed); then the node, its
        # threads first.
        if own_signals:
            for number in STOP_SIGNALS:
                signal.signal(number, signal.SIG_IGN)
            rclpy.try_shutdown()
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()  # with rclpy's handlers: the context last (else already down)
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 0
