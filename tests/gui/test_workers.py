"""LatestJobRunner: latest request wins, stale results dropped, priorities, cancellation."""

from __future__ import annotations

import threading
import time

import pytest

from squeezelens.engine.errors import Cancelled, InputError
from squeezelens.gui.workers import LatestJobRunner

pytestmark = pytest.mark.gui


@pytest.fixture
def runner(qtbot):
    r = LatestJobRunner(("live", "long"), "test-worker")
    yield r
    assert r.shutdown(2.0)


def _collect(runner):
    got = {"finished": [], "failed": [], "cancelled": [], "partial": []}
    for name in got:
        getattr(runner, name).connect(lambda res, n=name: got[n].append(res))
    return got


def test_latest_submission_wins_and_stale_results_are_dropped(runner, qtbot):
    got = _collect(runner)
    gate = threading.Event()

    def slow(value):
        def job(ctx):
            gate.wait(2)
            return value

        return job

    gens = [runner.submit("live", slow(i), "x") for i in range(20)]
    gate.set()
    qtbot.waitUntil(lambda: not runner.is_busy(), timeout=5000)
    qtbot.wait(50)
    assert [r.value for r in got["finished"]] == [19]
    assert got["finished"][0].generation == gens[-1]
    assert runner.is_current("live", gens[-1]) and not runner.is_current("live", gens[0])


def test_a_job_is_cancelled_between_steps(runner, qtbot):
    got = _collect(runner)
    steps = []

    def gen_job(ctx):
        for i in range(1000):
            steps.append(i)
            time.sleep(0.002)
            yield i

    runner.submit("long", gen_job, "gen")
    qtbot.waitUntil(lambda: len(steps) > 5, timeout=5000)
    runner.cancel("long")
    qtbot.waitUntil(lambda: not runner.is_busy(), timeout=5000)
    n = len(steps)
    qtbot.wait(50)
    assert n < 1000 and len(steps) == n
    assert got["finished"] == []
    assert len(got["cancelled"]) == 1


def test_live_jobs_run_inside_a_long_job(runner, qtbot):
    got = _collect(runner)
    order = []
    release = threading.Event()

    def long_job(ctx):
        for i in range(200):
            order.append(("long", i))
            ctx.progress(i, 200)  # a yield point: pending live jobs run here
            if release.is_set() and i > 10:
                break
            time.sleep(0.005)
        return "long done"

    runner.submit("long", long_job, "long")
    qtbot.waitUntil(lambda: len(order) > 3, timeout=5000)
    runner.submit("live", lambda ctx: order.append(("live", 0)) or "live done", "live")
    release.set()
    qtbot.waitUntil(lambda: not runner.is_busy(), timeout=5000)
    qtbot.wait(50)
    live_at = order.index(("live", 0))
    assert 0 < live_at < len(order) - 1  # ran before the long job ended
    assert sorted(r.value for r in got["finished"]) == ["live done", "long done"]


def test_servicing_token_is_a_cancel_token(runner, qtbot):
    from squeezelens.engine.jobs import check

    seen = []

    def job(ctx):
        for _ in range(500):
            check(ctx.token)  # what engine loops call between images
            time.sleep(0.002)
        seen.append("end")

    runner.submit("long", job, "t")
    qtbot.wait(30)
    runner.cancel("long")
    qtbot.waitUntil(lambda: not runner.is_busy(), timeout=5000)
    assert seen == []


def test_errors_become_messages_and_the_worker_survives(runner, qtbot):
    got = _collect(runner)

    def bad_input(ctx):
        raise InputError("not a checkpoint", "/tmp/x.npz")

    def bug(ctx):
        raise ZeroDivisionError("boom")

    runner.submit("live", bad_input, "a")
    qtbot.waitUntil(lambda: len(got["failed"]) == 1, timeout=5000)
    runner.submit("long", bug, "b")
    qtbot.waitUntil(lambda: len(got["failed"]) == 2, timeout=5000)
    runner.submit("live", lambda ctx: 42, "c")
    qtbot.waitUntil(lambda: bool(got["finished"]), timeout=5000)
    assert got["failed"][0].error == "/tmp/x.npz: not a checkpoint"
    assert "ZeroDivisionError" in got["failed"][1].error
    assert got["finished"][0].value == 42


def test_shutdown_is_bounded_while_a_job_runs(qtbot):
    runner = LatestJobRunner(("live",), "t")

    def forever(ctx):
        while True:
            ctx.checkpoint()
            time.sleep(0.01)

    runner.submit("live", forever, "f")
    qtbot.wait(50)
    start = time.perf_counter()
    assert runner.shutdown(1.0)
    assert time.perf_counter() - start < 1.0
    with pytest.raises(Cancelled):
        raise Cancelled()


def test_cancelling_a_pending_job_reports_it_at_once(runner, qtbot):
    got = _collect(runner)
    gate = threading.Event()
    runner.submit("live", lambda ctx: gate.wait(5), "blocker")  # the worker is busy
    qtbot.waitUntil(lambda: runner.is_busy("live"), timeout=2000)
    gen = runner.submit("long", lambda ctx: "never", "pending")
    runner.cancel("long")
    assert [r.generation for r in got["cancelled"]] == [gen]  # reported without running
    gate.set()
    qtbot.waitUntil(lambda: not runner.is_busy(), timeout=5000)
    qtbot.wait(50)
    assert [r.label for r in got["finished"]] == ["blocker"]
    assert len(got["cancelled"]) == 1
