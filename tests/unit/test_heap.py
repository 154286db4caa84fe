"""The collector, once the gateway has started: start-up's objects frozen, young ones collected less often."""

import gc

from gateway.process.heap import YOUNG_THRESHOLD, settle_heap


def test_start_up_objects_leave_the_collector_and_young_collections_come_less_often():
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    try:
        settle_heap()
        assert gc.get_freeze_count() > 1000  # modules, functions, the test session
        assert gc.get_threshold() == (YOUNG_THRESHOLD, before[1], before[2])
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # cycles made later are still found
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
