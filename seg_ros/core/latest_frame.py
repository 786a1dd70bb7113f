"""A one-slot mailbox: the worker always gets the newest frame, never a queue of stale ones."""

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

    def __init__(self) -> None:
        self._condition = threading.Condition()
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
