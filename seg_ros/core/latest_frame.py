"""
One-slot mailboxes: the worker always gets the newest frame, never a queue of stale ones.

:class:`LatestFrameSlot` is one camera's; :class:`FairSlots` holds one slot per camera for the
consumers that serve the cameras in turn (no camera starves another).
"""

import threading
from typing import Generic, TypeVar

Item = TypeVar('Item')


class LatestFrameSlot(Generic[Item]):
    """
    Hold at most one pending item between a producer and one consumer.

    ``put`` never blocks: an item that arrives while an older one is still waiting
    replaces it, and the replacement is counted as a drop. ``take`` blocks until an item
    is there, the timeout passes or the slot is closed.
    """

    def __init__(self, condition: threading.Condition | None = None) -> None:
        """
        Make an empty slot.

        :param condition: shared with the other slots of a :class:`FairSlots` (default: its own).
        """
        self._condition = condition or threading.Condition()
        self._item: Item | None = None
        self._closed = False
        self.dropped = 0

    def put(self, item: Item) -> bool:
        """
        Offer the newest item.

        :return: True when it replaced an item that was still waiting (that one is dropped).
        """
        with self._condition:
            replaced = self._item is not None
            if replaced:
                self.dropped += 1
            self._item = item
            self._condition.notify()
            return replaced

    def take(self, timeout: float | None = None) -> Item | None:
        """Return the waiting item and empty the slot; None on timeout or once closed."""
        with self._condition:
            self._condition.wait_for(lambda: self._item is not None or self._closed, timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        """Wake the consumer for good; later ``take`` calls return what is left, then None."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed


class FairSlots(Generic[Item]):
    """
    One :class:`LatestFrameSlot` per producer (camera), taken by consumers in turn.

    :meth:`take` returns the waiting item of the first slot after the one served last that has
    one: with every camera streaming, each is served once a round, whatever their rates.
    Several consumers take with ``hold=True``: a slot whose item is in hand is skipped until
    :meth:`release`, so no two consumers have frames of one camera at once (its outputs stay
    in order).
    """

    def __init__(self, count: int) -> None:
        """Make ``count`` empty slots sharing one condition."""
        if count < 1:
            raise ValueError(f'FairSlots needs at least one slot, got {count}')
        self._condition = threading.Condition()
        self.slots = [LatestFrameSlot[Item](self._condition) for _ in range(count)]
        self._next = 0
        self._closed = False
        self._held: set[int] = set()

    def _ready(self, index: int) -> bool:
        return self.slots[index]._item is not None and index not in self._held

    def _waiting(self) -> bool:
        return any(self._ready(index) for index in range(len(self.slots)))

    def take(self, timeout: float | None = None, hold: bool = False
             ) -> tuple[int, Item] | None:
        """
        Return (slot index, item) of the next slot in turn with one; None on timeout/close.

        :param hold: skip this slot in later calls until :meth:`release` of its index.
        """
        with self._condition:
            self._condition.wait_for(lambda: self._waiting() or self._closed, timeout)
            count = len(self.slots)
            for offset in range(count):
                index = (self._next + offset) % count
                if self._ready(index):
                    slot = self.slots[index]
                    item, slot._item = slot._item, None
                    self._next = index + 1
                    if hold:
                        self._held.add(index)
                    return index, item
            return None

    def release(self, index: int) -> None:
        """Let :meth:`take` serve slot ``index`` again (its item taken with ``hold`` is done)."""
        with self._condition:
            self._held.discard(index)
            self._condition.notify_all()

    def close(self) -> None:
        """Close every slot and wake the consumer for good."""
        with self._condition:
            self._closed = True
            for slot in self.slots:
                slot._closed = True
            self._condition.notify_all()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed
