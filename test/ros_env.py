"""
ROS 2 environment for tests and benchmarks that must keep DDS on this machine.

The variable set comes from :mod:`seg_ros.dds` (shared with the demo); this module pins the
profile to this checkout's copy and adds the in-process and pytest helpers.  Every ROS process
started by the tests (in-process nodes and subprocesses) gets:

``RMW_IMPLEMENTATION=rmw_fastrtps_cpp``
    The profile below is a Fast DDS profile.
``FASTRTPS_DEFAULT_PROFILES_FILE`` and ``FASTDDS_DEFAULT_PROFILES_FILE``
    ``config/fastdds_loopback.xml``: 64 MiB shared-memory segment (the stock 512 KiB one drops
    most best-effort images above it), UDPv4 only on 127.0.0.1, discovery by unicast to
    127.0.0.1 with no multicast locator.  Fast DDS 2.x reads the first name, 3.x the second.
``ROS_AUTOMATIC_DISCOVERY_RANGE=SYSTEM_DEFAULT`` (``LOCALHOST`` without the profile)
    The profile alone confines every socket to 127.0.0.1; LOCALHOST on top of it would make
    rmw_fastrtps open a UDP socket on 0.0.0.0 and one on the machine's address
    (:func:`seg_ros.dds.discovery_range_for`; ``test/test_dds_loopback.py`` checks every
    socket of every process).
``ROS_LOCALHOST_ONLY``, ``ROS_STATIC_PEERS``, ``ROS_DISCOVERY_SERVER`` are removed
    They would widen discovery or replace the profile's transports.
``ROS_DOMAIN_ID``
    One id a test module, never 0, so parallel test modules do not see each other
    (:func:`module_domain`: ``SEG_ROS_TEST_DOMAIN_OFFSET`` shifts them all, so that two checkouts'
    suites can run side by side on one machine).
``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=...:glibc.malloc.trim_threshold=...``
    Keeps multi-megabyte image buffers on the heap instead of a fresh ``mmap`` (and page
    faults) per message: about 2x lower latency in the benchmark.  glibc reads it when a
    process starts, so it matters for subprocesses, never for the current interpreter.

:func:`ros_environment` returns a copy of ``os.environ`` with the variables, for
``subprocess``; :func:`apply_ros_environment` sets them in this process, which must happen
before ``rclpy.init()`` (rcl reads the domain id and discovery range at init, Fast DDS the
profile when the first participant is created, once per process).  The venv's start-up hook
only re-executes the interpreter to set ``LD_LIBRARY_PATH``, so setting these later is fine.
:func:`rclpy_context` wraps both into a pytest fixture.
"""

import os
from pathlib import Path
import shutil
import subprocess
import sys

from seg_ros.dds import (discovery_range_for, GLIBC_TUNABLES, loopback_environment,
                         loopback_variables)

REPO_ROOT = Path(__file__).resolve().parent.parent
# The tests check this checkout, so they use its profile, not an installed copy.
PROFILE_PATH = REPO_ROOT / 'config' / 'fastdds_loopback.xml'

__all__ = ['GLIBC_TUNABLES', 'PROFILE_PATH', 'apply_ros_environment', 'rclpy_context',
           'remove_dead_segments', 'ros_environment', 'ros_variables', 'module_domain']

DOMAIN_OFFSET_VARIABLE = 'SEG_ROS_TEST_DOMAIN_OFFSET'


def module_domain(domain_id: int) -> int:
    """
    Return the ROS_DOMAIN_ID of a test module: ``domain_id`` plus ``$SEG_ROS_TEST_DOMAIN_OFFSET``.

    Test modules use ids 11-63; offsets of 0, 55, 110 and 165 keep four suites apart.

    :param domain_id: the module's own id.
    :return: the id to use, 1-232.
    :raises ValueError: when the offset takes it out of 1-232.
    """
    shifted = domain_id + int(os.environ.get(DOMAIN_OFFSET_VARIABLE, '0') or 0)
    if not 1 <= shifted <= 232:
        raise ValueError(f'{DOMAIN_OFFSET_VARIABLE} takes domain {domain_id} to {shifted}, '
                         'outside 1-232')
    return shifted


def _profile_variables(loopback_profile: bool) -> dict[str, str]:
    if not loopback_profile:
        return {}
    return {'FASTRTPS_DEFAULT_PROFILES_FILE': str(PROFILE_PATH),
            'FASTDDS_DEFAULT_PROFILES_FILE': str(PROFILE_PATH)}


def ros_variables(domain_id: int, *, loopback_profile: bool = True,
                  glibc_tunables: bool = True,
                  discovery_range: str | None = None) -> dict[str, str]:
    """
    Return only the variables that keep a ROS process on loopback (see the module docstring).

    :param domain_id: ROS_DOMAIN_ID; 1-232, never 0 (the default every other ROS user shares).
    :param loopback_profile: set the Fast DDS profile of ``config/fastdds_loopback.xml``.
    :param glibc_tunables: set GLIBC_TUNABLES for large-buffer allocation.
    :param discovery_range: ROS_AUTOMATIC_DISCOVERY_RANGE; None: SYSTEM_DEFAULT with the
        profile, LOCALHOST without (:func:`seg_ros.dds.discovery_range_for`).
    :return: variable name to value.
    """
    variables = loopback_variables(domain_id, profile=False, glibc_tunables=glibc_tunables,
                                   discovery_range=discovery_range or
                                   discovery_range_for(loopback_profile))
    variables.update(_profile_variables(loopback_profile))
    return variables


def ros_environment(domain_id: int, *, loopback_profile: bool = True,
                    glibc_tunables: bool = True,
                    discovery_range: str | None = None) -> dict[str, str]:
    """
    Return a copy of ``os.environ`` with the loopback ROS variables, for subprocesses.

    Variables that would widen discovery or replace the profile (ROS_LOCALHOST_ONLY,
    ROS_STATIC_PEERS, ROS_DISCOVERY_SERVER) are removed, and so are a profile or tunables
    inherited from this process when a flag turns them off.

    :param domain_id: ROS_DOMAIN_ID for the subprocess.
    :param loopback_profile: set the Fast DDS profile of ``config/fastdds_loopback.xml``.
    :param glibc_tunables: set GLIBC_TUNABLES for large-buffer allocation.
    :param discovery_range: ROS_AUTOMATIC_DISCOVERY_RANGE; None: SYSTEM_DEFAULT with the
        profile, LOCALHOST without (:func:`seg_ros.dds.discovery_range_for`).
    :return: the environment.
    """
    environment = loopback_environment(domain_id, profile=False, glibc_tunables=glibc_tunables,
                                       discovery_range=discovery_range or
                                       discovery_range_for(loopback_profile))
    environment.update(_profile_variables(loopback_profile))
    return environment


def apply_ros_environment(domain_id: int, **options) -> dict[str, str]:
    """
    Set the loopback ROS variables in this process; call it before ``rclpy.init()``.

    :param domain_id: ROS_DOMAIN_ID for the nodes of this process.
    :param options: keyword flags of :func:`ros_variables`.
    :return: the variables that were set.
    :raises RuntimeError: when rclpy is already initialised (rcl has read the old values).
    """
    rclpy = sys.modules.get('rclpy')
    if rclpy is not None and rclpy.ok():
        raise RuntimeError('apply_ros_environment() must run before rclpy.init()')
    environment = ros_environment(domain_id, **options)
    for name in set(os.environ) - set(environment):
        del os.environ[name]
    variables = ros_variables(domain_id, **options)
    os.environ.update(variables)
    return variables


def rclpy_context(domain_id: int, **options):
    """
    Return a generator for a pytest fixture: loopback variables, an initialised rclpy context.

    Use it as ``ros_context = pytest.fixture(scope='module')(rclpy_context(43))``; the fixture
    yields an ``rclpy.context.Context`` to pass to nodes and executors, and shuts it down after.

    :param domain_id: ROS_DOMAIN_ID of the test module.
    :param options: keyword flags of :func:`ros_variables`.
    :return: a generator function without arguments.
    """
    def fixture():
        apply_ros_environment(domain_id, **options)
        import rclpy
        from rclpy.context import Context

        context = Context()
        rclpy.init(context=context, domain_id=domain_id)
        try:
            yield context
        finally:
            context.try_shutdown()

    return fixture


def vision_msgs_available() -> bool:
    """Return whether vision_msgs imports here (a ROS package: apt, or ros2-extra's build)."""
    try:
        import vision_msgs.msg  # noqa: F401
        return True
    except ImportError:
        return False


def remove_dead_segments() -> str:
    """
    Run Fast DDS's own ``fastdds shm clean``; return what it printed ('' where it is absent).

    A participant removes its shared-memory segment when it ends; one killed outright (SIGKILL,
    the OOM killer) leaves it, and with the profile's 64 MiB segments a few dozen such
    processes fill the RAM behind /dev/shm. The tool removes the segments and ports that no
    living process holds (the lock each participant keeps on them). It comes with the Fast
    DDS of the ROS 2 install, beside this Python in a venv.
    """
    tool = Path(sys.executable).parent / 'fastdds'
    command = str(tool) if tool.exists() else shutil.which('fastdds')
    if command is None:
        return ''
    result = subprocess.run([command, 'shm', 'clean'], capture_output=True, text=True,
                            timeout=60)
    return result.stdout + result.stderr
