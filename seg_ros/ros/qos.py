"""QoS profiles of the seg_ros nodes, chosen by short names from parameters."""

from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy)

_RELIABILITY = {
    'sensor_data': ReliabilityPolicy.BEST_EFFORT,
    'best_effort': ReliabilityPolicy.BEST_EFFORT,
    'reliable': ReliabilityPolicy.RELIABLE,
}


def image_qos(profile: str, depth: int) -> QoSProfile:
    """
    Return a keep-last, volatile QoS for image topics.

    :param profile: 'sensor_data' or 'best_effort' (REP 2003: best effort), or 'reliable'.
    :param depth: how many messages the history keeps.
    """
    if profile not in _RELIABILITY:
        raise ValueError(f'QoS profile {profile!r} is not one of {", ".join(_RELIABILITY)}')
    return QoSProfile(reliability=_RELIABILITY[profile], history=HistoryPolicy.KEEP_LAST,
                      depth=depth, durability=DurabilityPolicy.VOLATILE)


def latched_qos() -> QoSProfile:
    """Return the QoS of topics late subscribers must still get (reliable, transient local)."""
    return QoSProfile(reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST,
                      depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def describe(qos: QoSProfile) -> str:
    """Return a short human description of a QoS profile for the start-up log."""
    return f'{qos.reliability.name.lower()}, keep last {qos.depth}, {qos.durability.name.lower()}'
