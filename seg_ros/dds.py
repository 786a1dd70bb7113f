"""
Environment that keeps a ROS 2 graph on this machine, with large images delivered.

Used by the demo, the benchmarks and the tests (through ``test/ros_env.py``); robots can use
the same profile (``config/fastdds_loopback.xml``) when the camera and seg_ros run on one computer.
"""

import os

from seg_ros.paths import share_directory

GLIBC_TUNABLES = 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456'
# Variables that would widen discovery or replace the profile's transports.
CONFLICTING = ('ROS_LOCALHOST_ONLY', 'ROS_STATIC_PEERS', 'ROS_DISCOVERY_SERVER')


def loopback_profile_path() -> str:
    """
    Return the Fast DDS profile that keeps DDS on 127.0.0.1, with a 64 MiB SHM segment.

    :raises FileNotFoundError: when it is missing (Fast DDS would then silently use its
        defaults, on every interface).
    """
    path = os.path.join(share_directory(), 'config', 'fastdds_loopback.xml')
    if not os.path.isfile(path):
        raise FileNotFoundError(f'the loopback Fast DDS profile {path} is missing')
    return path


def discovery_range_for(profile: bool) -> str:
    """
    Return the ROS_AUTOMATIC_DISCOVERY_RANGE that keeps every DDS socket on 127.0.0.1.

    With the profile it is SYSTEM_DEFAULT: the profile already confines transports and discovery
    to 127.0.0.1, and LOCALHOST would make rmw_fastrtps open two more UDP sockets, one on
    0.0.0.0 and one on the machine's network address (measured with ``ss -ulpn``;
    ``test/test_dds_loopback.py`` checks every socket). Without it, LOCALHOST is what keeps
    stock Fast DDS on this machine.

    :param profile: whether the loopback profile is used.
    :return: ``'SYSTEM_DEFAULT'`` or ``'LOCALHOST'``.
    """
    return 'SYSTEM_DEFAULT' if profile else 'LOCALHOST'


def loopback_variables(domain_id: int, *, profile: bool = True, glibc_tunables: bool = True,
                       discovery_range: str | None = None) -> dict[str, str]:
    """
    Return the variables for one ROS 2 process of a loopback-only graph.

    :param domain_id: ROS_DOMAIN_ID, 1-232 (0 is the domain every other ROS user shares).
    :param profile: set the Fast DDS profile (``FASTRTPS_``/``FASTDDS_DEFAULT_PROFILES_FILE``).
    :param glibc_tunables: keep multi-megabyte image buffers on the heap (2-3x lower latency);
        glibc reads it at process start, so it matters only for new processes.
    :param discovery_range: ROS_AUTOMATIC_DISCOVERY_RANGE; None: :func:`discovery_range_for`.
    :return: variable name to value.
    """
    if not 1 <= domain_id <= 232:
        raise ValueError(f'domain_id={domain_id} is outside 1-232 (0 is shared by everyone)')
    variables = {
        'ROS_DOMAIN_ID': str(domain_id),
        'RMW_IMPLEMENTATION': 'rmw_fastrtps_cpp',
        'ROS_AUTOMATIC_DISCOVERY_RANGE': discovery_range or discovery_range_for(profile),
    }
    if profile:
        variables['FASTRTPS_DEFAULT_PROFILES_FILE'] = loopback_profile_path()
        variables['FASTDDS_DEFAULT_PROFILES_FILE'] = loopback_profile_path()
    if glibc_tunables:
        variables['GLIBC_TUNABLES'] = GLIBC_TUNABLES
    return variables


def loopback_environment(domain_id: int, **options) -> dict[str, str]:
    """Return a copy of ``os.environ`` with :func:`loopback_variables`, for subprocesses."""
    environment = {name: value for name, value in os.environ.items()
                   if name not in CONFLICTING and name not in (
                       'FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE',
                       'GLIBC_TUNABLES')}
    environment.update(loopback_variables(domain_id, **options))
    return environment
