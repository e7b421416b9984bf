"""The phases that units imported from systemd and init.d bring: pre/post-start commands,
exec_stop and exec_stop_post, reload, conditions, restart policies, kill modes, watchdog.
A fake loop and fake processes, as in test_service.py."""

import signal

import pytest
from fakes import FakeLoop, FakeProcs, exited, killed, unit
from test_service import Harness

from vigil.service import (DONE, FAILED, POST, POST_STOP, PRE, READINESS, RUNNING, SKIPPED,
                           STARTING, STOP_CMD, STOPPED, STOPPING, Service, Why,
                           restart_wanted)


def pids(h, name=None):
    return [pid for unit_name, _argv, pid in h.procs.started if name in (None, unit_name)]


def argvs(h):
    return [argv for _unit, argv, _pid in h.procs.started]


def test_pre_start_commands_run_one_after_the_other_before_the_main_process():
    h = Harness(unit("sshd", exec="/usr/sbin/sshd -D",
                     exec_start_pre=["/usr/sbin/sshd -t", ["/bin/mkdir", "-p", "/run/x"]]))
    svc = h.start()
    assert (svc.state, svc.phase) == (STARTING, PRE)
    assert svc.why.text() == "running exec_start_pre /usr/sbin/sshd -t"
    h.exit(exited(0), svc.control)
    assert argvs(h) == [("/usr/sbin/sshd", "-t"), ("/bin/mkdir", "-p", "/run/x")]
    h.exit(exited(0), svc.control)
    assert svc.state == RUNNING and argvs(h)[-1] == ("/usr/sbin/sshd", "-D")


def test_a_failing_pre_start_command_fails_the_start_and_is_the_why():
    h = Harness(unit("sshd", exec="/usr/sbin/sshd -D", exec_start_pre=["/usr/sbin/sshd -t"],
                     restart="never"))
    svc = h.start()
    h.exit(exited(255), svc.control)
    assert svc.state == FAILED
    assert svc.why.text() == "exited: exec_start_pre /usr/sbin/sshd -t: exit 255"
    assert len(pids(h)) == 1, "the main process never started"


def test_a_pre_start_command_with_the_minus_prefix_may_fail():
    h = Harness(unit("web", exec_start_pre=["-/bin/false"]))
    svc = h.start()
    h.exit(exited(1), svc.control)
    assert svc.state == RUNNING


def test_a_failing_post_start_command_takes_the_main_process_down():
    h = Harness(unit("web", exec_start_post=["/bin/check"], restart="never"))
    svc = h.start()
    main = svc.pid
    assert (svc.state, svc.phase) == (STARTING, POST)
    h.exit(exited(2), svc.control)
    assert svc.state == STOPPING and (main, main, signal.SIGTERM) in h.procs.signals
    h.exit(killed(signal.SIGTERM), main)
    assert svc.state == FAILED and svc.why.text() == "exited: exec_start_post /bin/check: exit 2"


def test_exec_stop_runs_with_mainpid_before_the_stop_signal():
    h = Harness(unit("web", exec_stop=["/bin/kill -TERM $MAINPID"]))
    svc = h.start()
    main = svc.pid
    svc.request_stop(Why("stopped"))
    svc.signal_stop()
    assert (svc.state, svc.phase) == (STOPPING, STOP_CMD)
    assert h.procs.envs[-1] == {"MAINPID": str(main)} and h.procs.signals == []
    h.exit(killed(signal.SIGTERM), main)  # the command did its job
    assert svc.state == STOPPING, "the command itself is still running"
    h.exit(exited(0), svc.control)
    assert svc.state == STOPPED and svc.why.text() == "stopped"


def test_the_why_of_a_stop_survives_its_exec_stop():
    """An init.d unit's exec_stop (SCRIPT stop) that ends before its daemon does: the
    unit went on to the stop signal, then stopped with an empty why (vigilctl stop atd;
    vigilctl status said nothing)."""
    h = Harness(unit("atd", exec_stop=["/etc/init.d/atd stop"]))
    svc = h.start()
    main = svc.pid
    svc.request_stop(Why("stopped"))
    svc.signal_stop()
    assert svc.why.text() == "running exec_stop /etc/init.d/atd stop (stopped)"
    h.exit(exited(0), svc.control)       # the script returns; its kill is on its way
    assert (svc.state, svc.phase) == (STOPPING, "signalled")
    assert svc.why.text() == "sent SIGTERM, SIGKILL in 10s (stopped)"
    h.exit(killed(signal.SIGTERM), main)
    assert svc.state == STOPPED and svc.why == Why("stopped")


def test_exec_stop_post_runs_after_a_crash_then_the_restart_policy_decides():
    h = Harness(unit("web", exec_stop_post=["/bin/cleanup"], restart="on-failure",
                     restart_delay=2))
    svc = h.start()
    h.exit(exited(3))
    assert (svc.state, svc.phase) == (STOPPING, POST_STOP)
    h.exit(exited(0), svc.control)
    assert svc.state == STARTING and svc.why.text() == "restarting in 2.00s after exit 3"
    assert ("cleanup", "web") in h.procs.dirs


def test_a_oneshot_that_remains_after_exit_is_running_until_stopped():
    h = Harness(unit("mount-nfs", type="oneshot", remain_after_exit=True,
                     exec_stop=["/bin/umount /srv"]))
    svc = h.start()
    h.exit(exited(0))
    assert svc.state == RUNNING and svc.pid == 0 and svc.up
    assert svc.why.text() == "active (its command has exited)"
    svc.request_stop(Why("stopped"))
    svc.signal_stop()
    assert svc.phase == STOP_CMD and argvs(h)[-1] == ("/bin/umount", "/srv")
    h.exit(exited(0), svc.control)
    assert svc.state == STOPPED


def test_a_group_has_no_process_and_is_running_at_once():
    h = Harness(unit("network.target", type="group", exec=None))
    svc = h.start()
    assert svc.state == RUNNING and h.procs.started == []


def test_a_failed_condition_skips_the_unit(tmp_path):
    h = Harness(unit("sshd", unit_condition_path_exists=[f"!{tmp_path}"]))
    svc = h.start()
    assert svc.state == SKIPPED and svc.ready, "what is ordered after it may go on"
    assert svc.why.text() == f"condition failed: condition_path_exists !{tmp_path}"
    assert h.procs.started == []


def test_a_file_without_an_execute_bit_skips_the_unit(tmp_path):
    script = tmp_path / "rc.local"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    h = Harness(unit("rc-local", unit_condition_file_is_executable=[str(script)]))
    assert h.start().state == SKIPPED
    assert h.svc.why.text() == f"condition failed: condition_file_is_executable {script}"
    script.chmod(0o744)
    assert Harness(unit("rc-local", unit_condition_file_is_executable=[str(script)])) \
        .start().state == RUNNING


def test_triggering_conditions_need_one_to_hold(tmp_path):
    ok = Harness(unit("a", unit_condition_path_exists=["|/nonexistent", f"|{tmp_path}"]))
    assert ok.start().state == RUNNING
    no = Harness(unit("b", unit_condition_path_exists=["|/nonexistent", "|/nowhere"]))
    assert no.start().why.text() == ("condition failed: none of condition_path_exists "
                                     "|/nonexistent, condition_path_exists |/nowhere")


def test_a_failed_assertion_fails_the_unit():
    svc = Harness(unit("a", unit_assert_path_exists=["/nonexistent"])).start()
    assert svc.state == FAILED
    assert svc.why.text() == "assertion failed: assert_path_exists /nonexistent"


def test_a_masked_unit_never_starts():
    u = unit("sshd")
    u.masked = True
    h = Harness(u)
    assert h.start().state == FAILED and h.svc.why.text() == "masked"


@pytest.mark.parametrize("policy, restarts", [
    ("always", {"success", "exit-code", "signal", "timeout", "watchdog"}),
    ("never", set()),
    ("on-success", {"success"}),
    ("on-failure", {"exit-code", "signal", "timeout", "watchdog"}),
    ("on-abnormal", {"signal", "timeout", "watchdog"}),
    ("on-abort", {"signal"}),
    ("on-watchdog", {"watchdog"}),
])
def test_restart_policies_as_systemd_has_them(policy, restarts):
    results = ("success", "exit-code", "signal", "timeout", "watchdog")
    assert {r for r in results if restart_wanted(policy, r)} == restarts


def test_success_and_prevent_exit_status():
    h = Harness(unit("sshd", restart="on-failure", success_exit_status=[15, "SIGHUP"],
                     restart_prevent_exit_status=[255]))
    svc = h.start()
    h.exit(exited(15))
    assert svc.state == DONE, "15 is success here"
    svc.want()
    svc.launch()
    h.exit(killed(signal.SIGHUP))
    assert svc.state == DONE
    svc.want()
    svc.launch()
    h.exit(exited(255))
    assert svc.state == FAILED and svc.why.text() == "exited: exit 255", "255 is not retried"


def test_kill_mode_process_signals_only_the_main_process():
    h = Harness(unit("sshd", kill_mode="process"))
    svc = h.start()
    main = svc.pid
    svc.request_stop(Why("stopped"))
    svc.signal_stop()
    assert h.procs.signals[0] == (0, main, signal.SIGTERM), "its children (sessions) stay"
    h.exit(exited(0), main)
    assert svc.state == STOPPED
    assert not any(sig == signal.SIGKILL for _g, _p, sig in h.procs.signals)


def test_kill_mode_none_and_no_sigkill():
    h = Harness(unit("a", kill_mode="none"))
    svc = h.start()
    svc.request_stop(Why("stopped"))
    svc.signal_stop()
    assert svc.state == STOPPED and h.procs.signals == []
    h2 = Harness(unit("b", send_sigkill=False, stop_timeout=2))
    svc2 = h2.start()
    svc2.request_stop(Why("stopped"))
    svc2.signal_stop()
    h2.loop.advance(2)
    assert svc2.state == STOPPED
    assert not any(sig == signal.SIGKILL for _g, _p, sig in h2.procs.signals)


def test_the_watchdog_aborts_a_silent_service_and_the_policy_restarts_it():
    h = Harness(unit("db", type="notify", watchdog=3, restart="on-watchdog", restart_delay=1))
    svc = h.start()
    svc.on_notify("READY=1")
    h.loop.advance(2)
    svc.on_notify("WATCHDOG=1")
    h.loop.advance(2)
    assert svc.state == RUNNING, "the keep-alive moved the deadline"
    h.loop.advance(1)
    assert h.procs.signals[-1] == (0, svc.pid, signal.SIGABRT)
    h.exit(killed(signal.SIGABRT))
    assert svc.why.text() == "restarting in 1.00s after the watchdog"


def test_reload_runs_exec_reload_or_sends_sighup():
    h = Harness(unit("sshd", exec_reload=["/usr/sbin/sshd -t", "/bin/kill -HUP $MAINPID"]))
    svc = h.start()
    assert svc.reload() == "exec_reload"
    assert svc.phase == "reloading" and h.procs.envs[-1] == {"MAINPID": str(svc.pid)}
    h.exit(exited(0), svc.control)
    h.exit(exited(0), svc.control)
    assert (svc.state, svc.phase) == (RUNNING, "")
    plain = Harness(unit("cron"))
    p = plain.start()
    assert p.reload() == "SIGHUP" and plain.procs.signals == [(0, p.pid, signal.SIGHUP)]


def test_a_failed_reload_keeps_the_service_running_and_says_so():
    h = Harness(unit("sshd", exec_reload=["/usr/sbin/sshd -t"]))
    svc = h.start()
    svc.reload()
    h.exit(exited(255), svc.control)
    assert svc.state == RUNNING
    assert svc.why.text() == "reload failed: exec_reload /usr/sbin/sshd -t: exit 255"


def test_notify_access():
    def service(access):
        loop, procs = FakeLoop(), FakeProcs()
        svc = Service(unit("db", type="notify", notify_access=access), loop, procs,
                      lambda s: None)
        svc.want()
        svc.launch()
        procs.groups[4242] = svc.pgid  # a child still in the service's process group
        return svc
    assert service("main").on_notify("READY=1", 7777) is None
    for access, sender, ready in (("main", 7777, False), ("main", 4242, True),
                                  ("all", 7777, True), ("none", 101, False)):
        svc = service(access)
        svc.on_notify("READY=1", sender)
        assert (svc.state == RUNNING) == ready, (access, sender)


def test_directories_are_made_before_a_start_and_cleaned_after_a_stop():
    h = Harness(unit("sshd"))
    svc = h.start()
    assert h.procs.dirs == [("prepare", "sshd")]
    svc.request_stop(Why("stopped"))
    svc.signal_stop()
    h.exit(killed(signal.SIGTERM))
    assert h.procs.dirs == [("prepare", "sshd"), ("cleanup", "sshd")]


def test_start_timeout_covers_pre_start_commands():
    h = Harness(unit("slow", exec_start_pre=["/bin/sleep 100"], start_timeout=5,
                     restart="never"))
    svc = h.start()
    h.loop.advance(5)
    assert h.procs.signals[-1][2] == signal.SIGKILL and svc.phase == PRE
    h.exit(killed(signal.SIGKILL), svc.control)
    assert svc.state == FAILED


def test_a_forking_service_reads_its_pidfile(tmp_path):
    import os
    pidfile = tmp_path / "d.pid"
    pidfile.write_text(f"{os.getpid()}\n")
    h = Harness(unit("daemon", type="forking", pidfile=str(pidfile)))
    svc = h.start()
    assert svc.phase == READINESS
    h.exit(exited(0), svc.control)
    assert svc.state == RUNNING and svc.pid == os.getpid()


def test_remain_after_exit_keeps_any_service_active_after_a_clean_exit():
    h = Harness(unit("mounter", type="notify", remain_after_exit=True))
    svc = h.start()
    svc.on_notify("READY=1")
    h.exit(exited(0))
    assert svc.state == RUNNING and svc.why.text() == "active (its command has exited)"
    h2 = Harness(unit("mounter", type="notify", remain_after_exit=True, restart="never"))
    svc2 = h2.start()
    svc2.on_notify("READY=1")
    h2.exit(exited(1))
    assert svc2.state == FAILED
