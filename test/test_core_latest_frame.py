"""The latest-frame slots: newest item wins, drops counted, several cameras served in turn."""

import threading
import time

import pytest

from seg_ros.core.latest_frame import FairSlots, LatestFrameSlot


def test_a_slot_keeps_the_newest_item_and_counts_what_it_replaced():
    slot = LatestFrameSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True
    assert slot.take(timeout=0) == 2 and slot.dropped == 1
    assert slot.take(timeout=0.01) is None
    slot.close()
    assert slot.closed and slot.take() is None


def test_fair_slots_serve_every_camera_once_a_round_however_fast_one_streams():
    fair = FairSlots(3)
    served = []
    stop = threading.Event()

    def flood():  # camera 0 at full speed, cameras 1 and 2 slowly
        count = 0
        while not stop.is_set():
            fair.slots[0].put(('fast', count))
            count += 1

    def slow(index):
        for count in range(20):
            fair.slots[index].put(('slow', index, count))
            time.sleep(0.01)

    threads = [threading.Thread(target=flood)] + [threading.Thread(target=slow, args=(index,))
                                                  for index in (1, 2)]
    for thread in threads:
        thread.start()
    slow_threads = threads[1:]
    while any(thread.is_alive() for thread in slow_threads) or fair.slots[1]._item is not None \
            or fair.slots[2]._item is not None:
        taken = fair.take(timeout=0.5)
        if taken:
            served.append(taken)
            time.sleep(0.002)  # the network's time
    stop.set()
    threads[0].join()
    slow_served = [item for index, item in served if index != 0]
    # Every slow frame was served or replaced by its own camera's next one, never starved.
    assert len(slow_served) + fair.slots[1].dropped + fair.slots[2].dropped == 40
    assert len(slow_served) >= 10
    # Between two frames of the flooding camera, the waiting slow cameras were served.
    fast_runs = max(len(run) for run in ''.join('f' if index == 0 else '.'
                                                for index, _ in served).split('.'))
    assert fast_runs <= 3


def test_fair_slots_take_waits_and_close_wakes_the_consumer():
    fair = FairSlots(2)
    assert fair.take(timeout=0.01) is None
    fair.slots[1].put('x')
    assert fair.take(timeout=0) == (1, 'x')
    waiter = threading.Thread(target=lambda: fair.take())
    waiter.start()
    fair.close()
    waiter.join(timeout=2)
    assert not waiter.is_alive() and fair.closed and fair.slots[0].closed
    with pytest.raises(ValueError):
        FairSlots(0)
