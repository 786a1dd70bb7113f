"""
How every seg_ros executable runs its node: start-up errors, signals, clean shutdown.

SIGINT and SIGTERM are this module's, not rclpy's: rclpy's handlers shut the context down from a
thread of their own while the main thread, interrupted by the same signal, destroys the node, and
that race crashed a node now and then (exit -11 in ``Publisher.destroy`` under load: 1 run in 10
of ``ros2 launch`` stopping two managed nodes on a loaded machine). Here the signal interrupts the
main thread only, and the shutdown runs in one order on that thread: the context, the executor,
then the node (its threads first).
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
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    previous = {number: signal.signal(number, _interrupt) for number in STOP_SIGNALS}
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
        # A second signal does not cut the shutdown short (ros2 launch escalates to SIGKILL if
        # it hangs). The context goes first, as rclpy's handlers would take it, but here before
        # anything is destroyed rather than beside it; then the executor lets go of the node's
        # entities (rclpy's events executor aborts the process when it is destroyed holding
        # callbacks of entities already destroyed); then the node, its threads first.
        for number in STOP_SIGNALS:
            signal.signal(number, signal.SIG_IGN)
        rclpy.try_shutdown()
        if executor is not None:
            executor.shutdown()
        if node is not None:
            node.destroy_node()
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 0
