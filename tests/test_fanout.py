"""FanOut: several calls at once, never more than asked, results on the caller's thread."""

from __future__ import annotations

import threading

import pytest

from glacierd.fanout import FanOut


def test_no_more_than_width_calls_run_at_once_and_every_result_comes_back() -> None:
    fan: FanOut[int] = FanOut(max_threads=8)
    running, most = [0], [0]
    changed = threading.Condition()
    release = threading.Event()

    def call(n: int) -> int:
        with changed:
            running[0] += 1
            most[0] = max(most[0], running[0])
            changed.notify_all()
        release.wait(10)
        with changed:
            running[0] -= 1
        return n

    results: list[int] = []

    def submit_all() -> None:
        for n in range(10):
            results.extend(f.result() for f in fan.submit(lambda n=n: call(n), width=3))
        results.extend(f.result() for f in fan.finish())

    submitter = threading.Thread(target=submit_all)
    submitter.start()
    try:
        with changed:
            assert changed.wait_for(lambda: running[0] == 3, timeout=10)
            # the fourth submit waits for a slot: no fourth call starts (a bounded wait
            # for what must not happen)
            assert not changed.wait_for(lambda: running[0] > 3, timeout=0.3)
    finally:
        release.set()
        submitter.join(timeout=10)
        fan.close()
    assert sorted(results) == list(range(10))
    assert most[0] == 3
    assert fan.busy == 0


def test_a_failure_is_raised_by_its_result_once_the_others_ended() -> None:
    fan: FanOut[str] = FanOut(max_threads=4)

    def bad() -> str:
        raise OSError("the disk is gone")

    try:
        ended = fan.submit(bad, width=2) + fan.submit(lambda: "fine", width=2) + fan.finish()
    finally:
        fan.close()
    outcomes = []
    for future in ended:
        try:
            outcomes.append(future.result())
        except OSError as exc:
            outcomes.append(str(exc))
    assert sorted(outcomes) == ["fine", "the disk is gone"]


def test_now_runs_on_the_callers_thread_and_carries_its_error() -> None:
    assert FanOut.now(threading.get_ident).result() == threading.get_ident()
    with pytest.raises(InterruptedError):
        FanOut.now(lambda: (_ for _ in ()).throw(InterruptedError("stopping"))).result()
