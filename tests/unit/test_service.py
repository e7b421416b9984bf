"""One service's state machine alone, through its seam: a fake loop and fake processes.

The Supervisor's part (neighbours, ordering) is in test_supervisor.py; here a test plays
the Supervisor by calling want(), launch() and signal_stop() itself."""

import signal

import pytest
from fakes import FakeLoop, FakeProcs, exited, killed, unit

from vigil.service import (BACKOFF, DEPENDENCIES, DEPENDENTS, DONE, DOWN, FAILED, KILLED,
                           READINESS, RUNNING, SIGNALLED, STARTING, STOPPED, STOPPING, UP,
                           Service, Why)


class Harness:
    def __init__(self, u):
        self.loop = FakeLoop()
        self.procs = FakeProcs()
        self.changes: list[tuple[str, str]] = []
        self.svc = Service(u, self.loop, self.procs,
                           lambda s: self.changes.append((s.state, s.phase)))

    def start(self):
        self.svc.want()
        self.svc.launch()
        return self.svc

    def exit(self, status, pid=None):
        self.svc.on_exit(pid or self.svc.pid, status)


def test_simple_service_is_running_once_spawned():
    h = Harness(unit("web"))
    svc = h.start()
    assert (svc.state, svc.goal, svc.pid) == (RUNNING, UP, 101)
    assert h.changes == [(STARTING, DEPENDENCIES), (RUNNING, "")]
    assert h.procs.started == [("web", ("/bin/web",), 101)]


def test_back_off_doubles_up_to_its_maximum_and_resets_after_a_healthy_run():
    h = Harness(unit("crash", restart_delay=0.5, restart_delay_max=2,
                     start_limit_burst=100, start_limit_interval=1))
    svc = h.start()
    delays = []
    for _ in range(5):
        h.exit(exited(1))
        assert (svc.state, svc.phase) == (STARTING, BACKOFF)
        delays.append(h.loop.pending()[0])
        assert svc.why.text() == f"restarting in {delays[-1]:.2f}s after exit 1"
        h.loop.advance(delays[-1])
        assert svc.state == RUNNING
    assert delays == [0.5, 1, 2, 2, 2]
    assert svc.restarts == 5
    h.loop.advance(2.5)  # up longer than start_limit_interval and restart_delay_max
    h.exit(exited(1))
    assert h.loop.pending() == [0.5]


def test_start_limit_fails_the_unit_and_the_cooldown_retries():
    h = Harness(unit("crash", restart_delay=0.1, start_limit_burst=3,
                     start_limit_interval=10, start_limit_cooldown=60))
    svc = h.start()
    for _ in range(3):
        h.exit(exited(3))
        h.loop.advance(h.loop.pending()[0])
    assert svc.state == FAILED and svc.why.kind == "start-limit-retry"
    assert svc.why.text().startswith("start limit hit (3 starts in 10s); retrying at ")
    assert len(h.procs.started) == 3 and svc.goal == UP
    assert h.loop.pending() == [60]
    h.loop.advance(60)
    assert (svc.state, svc.phase) == (STARTING, DEPENDENCIES), "waits for its dependencies again"
    svc.launch()
    assert svc.state == RUNNING and len(h.procs.started) == 4


def test_start_limit_without_cooldown_waits_for_a_start():
    h = Harness(unit("crash", restart_delay=0.1, start_limit_burst=2,
                     start_limit_cooldown=0))
    svc = h.start()
    for _ in range(2):
        h.exit(exited(3))
        h.loop.advance(0.5)
    assert svc.state == FAILED and svc.why.kind == "start-limit"
    assert h.loop.pending() == []
    svc.want()  # vigilctl start clears the failure
    svc.launch()
    assert svc.state == RUNNING


def test_restart_never_fails_with_the_exit_status():
    h = Harness(unit("once", restart="never"))
    svc = h.start()
    h.exit(killed(signal.SIGSEGV))
    assert (svc.state, svc.goal, svc.last_exit) == (FAILED, DOWN, "signal SIGSEGV")
    assert svc.why == Why("exited", status="signal SIGSEGV")


def test_clean_exit_with_on_failure_is_done():
    h = Harness(unit("job", restart="on-failure"))
    svc = h.start()
    h.exit(exited(0))
    assert (svc.state, svc.goal, svc.why.text()) == (DONE, DOWN, "exited cleanly")


def test_oneshot_is_ready_when_it_exits_zero():
    h = Harness(unit("setup", type="oneshot"))
    svc = h.start()
    assert (svc.state, svc.phase, svc.why.text()) == (STARTING, READINESS, "oneshot running")
    assert not svc.ready
    h.exit(exited(0))
    assert svc.state == DONE and svc.ready and svc.why.text() == "finished"


def test_notify_service_is_ready_only_at_ready_1_and_keeps_its_status():
    h = Harness(unit("db", type="notify", start_timeout=5))
    svc = h.start()
    assert (svc.state, svc.phase) == (STARTING, READINESS)
    svc.on_notify("STATUS=loading tables")
    assert svc.state == STARTING and svc.status_text == "loading tables"
    svc.on_notify("READY=1\nSTATUS=serving")
    assert svc.state == RUNNING and svc.status_text == "serving"
    assert h.loop.pending() == [], "the start timeout is disarmed"


def test_notify_service_not_ready_in_time_is_killed_and_restarted():
    h = Harness(unit("db", type="notify", start_timeout=5, restart_delay=1))
    svc = h.start()
    h.loop.advance(5)
    assert h.procs.signals[-1][2] == signal.SIGKILL
    h.exit(killed(signal.SIGKILL))
    assert svc.why.text() == "restarting in 1.00s after did not become ready in time"


def test_stop_waits_for_dependents_then_signals_then_kills_after_the_timeout():
    h = Harness(unit("web", stop_timeout=4))
    svc = h.start()
    pid = svc.pid
    svc.request_stop(Why("stopped"))
    assert (svc.state, svc.phase, svc.goal) == (STOPPING, DEPENDENTS, DOWN)
    assert h.procs.signals == [], "nothing is sent before the Supervisor says so"
    svc.signal_stop()
    assert (svc.state, svc.phase) == (STOPPING, SIGNALLED)
    assert h.procs.signals == [(pid, pid, signal.SIGTERM), (pid, pid, signal.SIGCONT)]
    assert svc.why.text() == "sent SIGTERM, SIGKILL in 4s (stopped)"
    h.loop.advance(4)
    assert (svc.state, svc.phase) == (STOPPING, KILLED)
    assert h.procs.signals[-1] == (pid, pid, signal.SIGKILL)
    h.exit(killed(signal.SIGKILL), pid)
    assert (svc.state, svc.why.text(), svc.pid) == (STOPPED, "stopped", 0)


def test_a_restart_goes_straight_back_to_starting():
    h = Harness(unit("web"))
    svc = h.start()
    old = svc.pid
    svc.request_restart()
    assert (svc.state, svc.goal) == (STOPPING, UP)
    svc.signal_stop()
    h.exit(killed(signal.SIGTERM), old)
    assert (svc.state, svc.phase) == (STARTING, DEPENDENCIES)
    assert STOPPED not in [state for state, _phase in h.changes], "dependents see no stop"
    svc.launch()
    assert svc.state == RUNNING and svc.pid != old


def test_stop_during_back_off_is_immediate():
    h = Harness(unit("crash", restart_delay=5))
    svc = h.start()
    h.exit(exited(1))
    svc.request_stop(Why("stopped"))
    assert (svc.state, svc.why.text()) == (STOPPED, "stopped")
    assert h.loop.pending() == [], "the restart timer is gone"


def test_forking_service_stopped_while_its_starter_runs_ends_stopped():
    # Bug found by this test: the starter's exit while stopping was ignored, so the
    # service stayed `stopping` for ever.
    h = Harness(unit("daemon", type="forking", pidfile="/run/daemon.pid"))
    svc = h.start()
    starter = svc.control
    assert (svc.state, svc.pid, starter) == (STARTING, 0, 101)
    svc.request_stop(Why("stopped"))
    svc.signal_stop()
    h.exit(killed(signal.SIGTERM), starter)
    assert svc.state == STOPPED


def test_forking_service_whose_pidfile_is_missing_fails():
    h = Harness(unit("daemon", type="forking", pidfile="/nonexistent/daemon.pid",
                     restart="never"))
    svc = h.start()
    h.exit(exited(0), svc.control)
    assert svc.state == STARTING, "a daemon's child may write it a moment later"
    h.loop.advance(4.9)
    assert svc.state == STARTING
    h.loop.advance(0.2)
    assert svc.state == FAILED
    assert svc.why.text() == "exited: pidfile /nonexistent/daemon.pid: No such file or directory"


def test_a_pidfile_written_a_moment_after_the_starter_exits_is_read(tmp_path):
    import os
    pidfile = tmp_path / "late.pid"
    h = Harness(unit("daemon", type="forking", pidfile=str(pidfile)))
    svc = h.start()
    h.exit(exited(0), svc.control)
    h.loop.advance(0.3)
    pidfile.write_text(f"{os.getpid()}\n")
    h.loop.advance(0.1)
    assert svc.state == RUNNING and svc.pid == os.getpid()


def test_spawn_error_is_the_why():
    h = Harness(unit("ghost", restart="never"))
    h.procs.failing["ghost"] = "exec /bin/ghost: not found"
    svc = h.start()
    assert svc.state == FAILED and svc.why.text() == "exited: exec /bin/ghost: not found"


def test_dependency_failure_is_structured():
    h = Harness(unit("web"))
    h.svc.want()
    h.svc.dependency_failed("db", "failed")
    assert h.svc.why.to_json() == {"kind": "dependency", "text": "dependency db failed",
                                   "unit": "db", "how": "failed"}


@pytest.mark.parametrize("where", ["backoff", "signalled", "start-limit"])
def test_snapshot_and_restore_keep_the_phase_and_its_timer(where):
    h = Harness(unit("web", restart_delay=3, stop_timeout=7, start_limit_burst=1,
                     start_limit_cooldown=30))
    svc = h.start()
    if where == "backoff":
        svc.starts.clear()
        h.exit(exited(1))
    elif where == "signalled":
        svc.request_stop(Why("stopped"))
        svc.signal_stop()
    else:
        h.exit(exited(1))
        h.loop.advance(3)
    h.loop.advance(1)
    saved = svc.snapshot()
    new = Harness(unit("web", restart_delay=3, stop_timeout=7, start_limit_burst=1,
                       start_limit_cooldown=30))
    new.loop.t = h.loop.t
    new.svc.restore(saved)
    assert (new.svc.state, new.svc.phase, new.svc.why) == (svc.state, svc.phase, svc.why)
    assert new.loop.pending() == h.loop.pending()
    new.loop.advance(new.loop.pending()[0])
    assert (new.svc.state, new.svc.phase) == {
        "backoff": (RUNNING, ""), "signalled": (STOPPING, KILLED),
        "start-limit": (STARTING, DEPENDENCIES)}[where]


def test_a_program_that_cannot_be_executed_is_not_retried_after_the_start_limit():
    h = Harness(unit("ghost", restart_delay=0.1, start_limit_burst=3, start_limit_cooldown=60))
    h.procs.failing["ghost"] = "exec /bin/ghost: not found"
    svc = h.start()
    h.loop.advance(10)
    assert svc.state == FAILED and svc.why.kind == "start-limit-spawn"
    assert svc.why.text() == ("start limit hit (3 starts in 10s): exec /bin/ghost: not found; "
                              "not retried until its unit file changes or vigilctl start")
    assert h.loop.pending() == [] and h.procs.attempts == 3
    h.loop.advance(3600)
    assert svc.state == FAILED and h.procs.attempts == 3, "no cooldown retry"


def test_a_forked_child_is_starting_until_its_exec_is_heard_of():
    h = Harness(unit("web"))
    h.procs.forking = True
    svc = h.start()
    assert (svc.state, svc.phase, svc.why.text()) == (STARTING, "exec", "starting /bin/web")
    assert svc.up, "it has a process: a stop must wait for it"
    svc.on_exec(svc.pid, "")
    assert svc.state == RUNNING


def test_an_exec_failure_heard_later_is_the_why_and_its_exit_is_ignored():
    h = Harness(unit("ghost", restart="never"))
    h.procs.forking = True
    svc = h.start()
    pid = svc.pid
    svc.on_exec(pid, "exec /bin/ghost: not found")
    assert svc.state == FAILED and svc.why.text() == "exited: exec /bin/ghost: not found"
    h.exit(exited(127), pid)
    assert svc.state == FAILED and svc.last_exit == "exec /bin/ghost: not found"
