"""totowalk.memory: the collector kept off the objects a backtest did not make, and nothing lost."""

import gc
import weakref

from test_backtest_api import mean5, prices

import totowalk as tw
from totowalk.memory import frozen_heap, release_free_memory


class _Node:
    pass


def _cycle():
    """A reference cycle, unreachable once the caller drops it, and a weak reference that says when it is freed."""
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return a, weakref.ref(a)


def test_a_cycle_older_than_the_block_waits_for_its_end_and_is_then_collected():
    assert gc.get_freeze_count() == 0
    node, alive = _cycle()
    with frozen_heap():
        assert gc.get_freeze_count() > 0
        del node
        gc.collect()
        assert alive() is not None  # frozen: a full pass did not walk it
        inner, inner_alive = _cycle()
        del inner
        gc.collect()
        assert inner_alive() is None  # what the block makes is collected as usual
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert alive() is None


def test_a_process_that_froze_its_own_objects_keeps_them_frozen(monkeypatch):
    # the frozen count itself is no measure: a frozen object freed by its reference count (by another
    # thread, say) leaves it, so the test watches what frozen_heap calls and what stays uncollected
    node, alive = _cycle()
    gc.freeze()
    try:
        calls = []
        monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
        monkeypatch.setattr(gc, "unfreeze", lambda: calls.append("unfreeze"))
        with frozen_heap():
            pass
        monkeypatch.undo()
        assert calls == []  # the process's choice, left as it was
        assert gc.get_freeze_count() > 0
        del node
        gc.collect()
        assert alive() is not None  # still frozen: a full pass did not walk it
    finally:
        gc.unfreeze()
    gc.collect()
    assert alive() is None


def test_backtest_runs_with_the_heap_frozen_and_leaves_it_as_it_found_it():
    seen = []

    def forecaster(contexts):
        seen.append(gc.get_freeze_count())
        return mean5(contexts)

    tw.backtest(prices(80, 0), symbol="X", num_simulations=3, forecaster=forecaster, overlap=False)
    assert seen and all(count > 0 for count in seen)
    assert gc.get_freeze_count() == 0
    release_free_memory()  # callable at any time, on any platform
