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


def test_a_held_slot_is_skipped_until_released():
    fair = FairSlots(2)
    fair.slots[0].put('a1')
    assert fair.take(timeout=0, hold=True) == (0, 'a1')
    fair.slots[0].put('a2')
    fair.slots[1].put('b1')
    # Camera 0's next frame waits while its first is in hand; camera 1 is served.
    assert fair.take(timeout=0, hold=True) == (1, 'b1')
    assert fair.take(timeout=0.01, hold=True) is None
    waiter_got = []
    waiter = threading.Thread(target=lambda: waiter_got.append(fair.take(timeout=5, hold=True)))
    waiter.start()
    time.sleep(0.05)
    assert waiter.is_alive(), 'nothing may be served while both cameras are in hand'
    fair.release(0)
    waiter.join(timeout=2)
    assert waiter_got == [(0, 'a2')]


def test_consumers_taking_with_hold_never_share_a_camera():
    fair = FairSlots(3)
    in_hand: set[int] = set()
    overlaps, served = [], []
    lock = threading.Lock()
    stop = threading.Event()

    def camera(index):
        count = 0
        while not stop.is_set():
            fair.slots[index].put(count)
            count += 1
            time.sleep(0.0005)

    def consumer():
        while not stop.is_set():
            taken = fair.take(timeout=0.05, hold=True)
            if taken is None:
                continue
            index, item = taken
            with lock:
                overlaps.append(index in in_hand)
                in_hand.add(index)
                served.append(taken)
            time.sleep(0.001)
            with lock:
                in_hand.discard(index)
            fair.release(index)

    threads = [threading.Thread(target=camera, args=(index,)) for index in range(3)]
    threads += [threading.Thread(target=consumer) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=2)
    assert served and not any(overlaps)
    for index in range(3):  # each camera's items in order, and every camera served
        items = [item for camera, item in served if camera == index]
        assert items and items == sorted(items)
