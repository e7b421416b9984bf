"""The Supervisor's policies over several units, with a fake loop and fake processes:
start order, requires propagation, stop and restart order, shutdown, rescue, reload."""

import signal

from fakes import FakeLoop, FakeProcs, catalog, exited, killed, unit

from vigil.supervisor import Supervisor


def make(tmp_path, *units):
    loop = FakeLoop()
    sup = Supervisor(loop, [], str(tmp_path / "logs"), str(tmp_path), {}, procs=FakeProcs)
    sup.load(catalog(*units))
    return sup, loop, sup.procs


def states(sup, *names):
    return [sup.services[n].state for n in names]


def exit_unit(sup, name, status):
    sup.child_exited(sup.services[name].pid, status)


def signalled(procs):
    """Names... the pids that got the stop signal, in order."""
    return [pid for _pgid, pid, sig in procs.signals if sig == signal.SIGTERM]


def test_start_waits_for_what_a_unit_is_ordered_after(tmp_path):
    sup, _loop, procs = make(
        tmp_path, unit("db", type="notify"), unit("web", unit_requires=["db"]),
        unit("cache", unit_before=["web"]), unit("other"))
    sup.start(["web", "other"])
    assert [n for n, _a, _p in procs.started] == ["db", "other"], \
        "web waits; cache is not pulled in by an ordering"
    assert sup.services["web"].why.text() == "waiting for db (starting)"
    sup.services["db"].on_notify("READY=1")
    assert [n for n, _a, _p in procs.started] == ["db", "other", "web"]
    assert states(sup, "db", "web", "cache") == ["running", "running", "stopped"]


def test_required_unit_failing_fails_what_waits_and_stops_what_runs(tmp_path):
    sup, _loop, _procs = make(
        tmp_path, unit("db", restart="never"), unit("web", unit_requires=["db"]),
        unit("report", unit_requires=["db"], type="notify"),
        unit("late", unit_requires=["db"], unit_after=["report"]))
    sup.start(["web", "report", "late"])
    assert states(sup, "db", "web", "report", "late") == [
        "running", "running", "starting", "starting"]
    exit_unit(sup, "db", exited(2))
    web = sup.services["web"]
    assert web.state == "stopping" and web.why.text() == \
        "sent SIGTERM, SIGKILL in 10s (dependency db failed)"
    assert sup.services["late"].state == "failed"
    assert sup.services["late"].why.text() == "dependency db failed"
    exit_unit(sup, "web", killed(signal.SIGTERM))
    assert web.state == "stopped" and web.why.text() == "dependency db failed"


def test_stop_takes_what_requires_it_and_goes_in_reverse_order(tmp_path):
    sup, _loop, procs = make(
        tmp_path, unit("a"), unit("b", unit_requires=["a"]), unit("c", unit_requires=["b"]),
        unit("x", unit_after=["a"]))
    sup.start(["c", "x"])
    pids = {n: sup.services[n].pid for n in "abcx"}
    sup.stop(["a"])
    assert signalled(procs) == [pids["c"]], "c goes first; x is only ordered, not stopped"
    assert sup.services["b"].why.text() == "waiting for c to stop (dependency a stopped)"
    exit_unit(sup, "c", killed(signal.SIGTERM))
    assert signalled(procs) == [pids["c"], pids["b"]]
    exit_unit(sup, "b", killed(signal.SIGTERM))
    assert signalled(procs) == [pids["c"], pids["b"], pids["a"]]
    exit_unit(sup, "a", killed(signal.SIGTERM))
    assert states(sup, "a", "b", "c", "x") == ["stopped", "stopped", "stopped", "running"]
    assert [sup.services[n].why.text() for n in "abc"] == [
        "stopped", "dependency a stopped", "dependency a stopped"]
    sup.start(["c"])  # pulls a and b in again
    assert states(sup, "a", "b", "c") == ["running"] * 3


def test_restart_stops_dependents_first_and_starts_them_after(tmp_path):
    sup, _loop, procs = make(tmp_path, unit("db"), unit("web", unit_requires=["db"]),
                             unit("idle", unit_requires=["db"]))
    sup.start(["web"])
    old = {n: sup.services[n].pid for n in ("db", "web")}
    sup.restart(["db"])
    assert signalled(procs) == [old["web"]], "idle is not running: it is not started"
    exit_unit(sup, "web", killed(signal.SIGTERM))
    assert sup.services["web"].why.text() == "waiting for db (stopping)"
    assert signalled(procs) == [old["web"], old["db"]]
    exit_unit(sup, "db", killed(signal.SIGTERM))
    order = [n for n, _a, _p in procs.started]
    assert order == ["db", "web", "db", "web"]
    assert states(sup, "db", "web", "idle") == ["running", "running", "stopped"]
    assert [sup.services[n].restarts for n in ("db", "web")] == [0, 0]


def test_shutdown_stops_everything_in_reverse_order_then_calls_back(tmp_path):
    sup, _loop, procs = make(tmp_path, unit("a"), unit("b", unit_wants=["a"]),
                             unit("crash", restart_delay=5))
    sup.start(["b", "crash"])
    exit_unit(sup, "crash", exited(1))  # in back-off: stops at once
    done = []
    sup.shutdown(lambda: done.append(True))
    pids = {n: sup.services[n].pid for n in "ab"}
    assert signalled(procs) == [pids["b"]] and not done
    exit_unit(sup, "b", exited(0))
    exit_unit(sup, "a", exited(0))
    assert done == [True]
    assert {s.why.text() for s in sup.services.values()} == {"shutting down"}


def test_a_slow_stop_is_killed_after_stop_timeout(tmp_path):
    sup, loop, procs = make(tmp_path, unit("stubborn", stop_timeout=3))
    sup.start(["stubborn"])
    pid = sup.services["stubborn"].pid
    sup.stop(["stubborn"])
    loop.advance(2.9)
    assert procs.signals[-1][2] == signal.SIGCONT
    loop.advance(0.1)
    assert procs.signals[-1] == (pid, pid, signal.SIGKILL)


def test_rescue_and_back(tmp_path):
    sup, _loop, _procs = make(tmp_path, unit("web"),
                              unit("fixer", unit_enabled=False, unit_rescue=True))
    sup.boot()
    assert states(sup, "web", "fixer") == ["running", "stopped"]
    assert sup.rescue() == ["fixer"]
    exit_unit(sup, "web", killed(signal.SIGTERM))
    assert states(sup, "web", "fixer") == ["stopped", "running"]
    assert sup.services["web"].why.text() == "stopped for rescue mode"
    sup.resume_default()
    exit_unit(sup, "fixer", killed(signal.SIGTERM))
    assert states(sup, "web", "fixer") == ["running", "stopped"]


def test_reload_adds_removes_changes_and_keeps(tmp_path):
    sup, _loop, procs = make(tmp_path, unit("same"), unit("changed"), unit("removed"),
                             unit("broken"))
    sup.boot()
    pids = {n: s.pid for n, s in sup.services.items()}
    new = catalog(unit("same"), unit("changed", stop_timeout=3), unit("added"))
    from vigil.unit import UnitError
    new.errors["broken"] = UnitError("/units/broken.toml", "unknown key", "service.x", 2)
    summary = sup.reload(new)
    assert summary["added"] == ["added"] and summary["removed"] == ["removed"]
    assert summary["changed"] == ["changed"]
    assert "removed" not in sup.services and pids["removed"] in signalled(procs)
    assert sup.services["same"].pid == pids["same"]
    assert sup.services["broken"].pid == pids["broken"], "the old definition stays"
    exit_unit(sup, "changed", killed(signal.SIGTERM))
    assert sup.services["changed"].pid != pids["changed"]
    assert states(sup, "added", "changed") == ["running", "running"]


def test_reload_that_removes_a_cycle_forgets_it_at_once(tmp_path):
    # Bug in the old code: the graph was rebuilt before removed units were forgotten, so
    # the cycle stayed in `vigilctl status` until a second reload.
    sup, _loop, _procs = make(tmp_path, unit("a", unit_after=["b"]),
                              unit("b", unit_after=["a"]))
    assert sup.cycles
    sup.reload(catalog(unit("a", unit_after=["b"])))
    assert sup.cycles == []


def test_a_restart_of_a_stopped_unit_starts_it(tmp_path):
    sup, _loop, procs = make(tmp_path, unit("web", unit_enabled=False))
    sup.boot()
    assert procs.started == []
    sup.restart(["web"])
    assert states(sup, "web") == ["running"]


def test_a_big_start_is_launched_in_batches_between_turns_of_the_loop(tmp_path):
    from vigil.supervisor import LAUNCH_BATCH
    sup, loop, procs = make(tmp_path, *(unit(f"s{i:03d}") for i in range(150)))
    sup.boot()
    assert len(procs.started) == LAUNCH_BATCH
    waiting = sup.services["s149"]
    assert waiting.state == "starting" and waiting.why.text() == \
        "queued: many units are starting"
    sup.stop(["s149"])  # stopped while queued: never launched
    loop.turn()
    assert len(procs.started) == 2 * LAUNCH_BATCH
    loop.turn()
    assert len(procs.started) == 149 and waiting.state == "stopped"


def test_a_requisite_must_already_be_there(tmp_path):
    sup, _loop, _procs = make(tmp_path, unit("db", unit_enabled=False),
                              unit("web", unit_requisite=["db"], unit_after=["db"]))
    sup.start(["web"])
    web = sup.services["web"]
    assert web.state == "failed" and web.why.text() == "requisite db is not running (stopped)"
    assert sup.services["db"].state == "stopped", "a requisite is not pulled in"
    sup.start(["db"])
    sup.start(["web"])
    assert web.state == "running"


def test_starting_a_unit_stops_what_conflicts_with_it(tmp_path):
    sup, _loop, _procs = make(tmp_path, unit("cron"), unit("anacron", unit_conflicts=["cron"]))
    sup.start(["cron"])
    sup.start(["anacron"])
    cron = sup.services["cron"]
    assert cron.state == "stopping" and cron.why.text().endswith("(stopped: anacron "
                                                                 "conflicts with it)")
    exit_unit(sup, "cron", killed(signal.SIGTERM))
    assert states(sup, "cron", "anacron") == ["stopped", "running"]
    sup.start(["cron"])  # the other way round: cron names nothing, anacron names cron
    assert sup.services["anacron"].state == "stopping"


def test_part_of_follows_the_stop_and_restart_of_its_unit(tmp_path):
    sup, _loop, procs = make(tmp_path, unit("nfs"), unit("idmapd", unit_part_of=["nfs"]))
    sup.start(["nfs", "idmapd"])
    old = sup.services["idmapd"].pid
    sup.restart(["nfs"])
    assert old in signalled(procs)
    exit_unit(sup, "idmapd", killed(signal.SIGTERM))
    exit_unit(sup, "nfs", killed(signal.SIGTERM))
    assert states(sup, "nfs", "idmapd") == ["running", "running"]
    assert sup.services["idmapd"].pid != old
    sup.stop(["nfs"])
    assert sup.services["idmapd"].state == "stopping"


def test_an_alias_names_the_unit_everywhere(tmp_path):
    sup, _loop, _procs = make(tmp_path, unit("rsyslog", unit_aliases=["syslog"], type="notify"),
                              unit("app", unit_requires=["syslog"]))
    sup.start(["app"])
    assert sup.lookup("syslog") is sup.services["rsyslog"]
    assert sup.services["app"].why.text() == "waiting for rsyslog (starting)"
    sup.services["rsyslog"].on_notify("READY=1")
    assert sup.services["app"].state == "running"
    sup.stop(["syslog"])
    assert sup.services["app"].state == "stopping", "what requires the alias goes too"


def test_reload_units(tmp_path):
    sup, _loop, procs = make(tmp_path, unit("cron"), unit("sshd", exec_reload=["/bin/true"]))
    sup.start(["cron", "sshd"])
    assert sup.reload_units(["cron", "sshd"]) == {"cron": "SIGHUP", "sshd": "exec_reload"}
    assert procs.signals == [(0, sup.services["cron"].pid, signal.SIGHUP)]


def test_masked_units_are_not_pulled_in_and_fail_what_requires_them(tmp_path):
    masked = unit("ssh")
    masked.masked = True
    sup, _loop, procs = make(tmp_path, masked, unit("app", unit_wants=["ssh"]),
                             unit("tunnel", unit_requires=["ssh"]))
    sup.start(["app", "tunnel"])
    assert sup.services["ssh"].state == "stopped"
    assert states(sup, "app", "tunnel") == ["running", "failed"]
    assert sup.services["tunnel"].why.text() == "dependency ssh is masked"


def test_an_inittab_getty_on_a_terminal_vigil_serves_is_left_out(tmp_path):
    sup, _loop, procs = make(tmp_path, unit("getty@tty1"), unit("inittab-1"),
                             unit("inittab-T0"))
    sup.catalog.gettys = {"inittab-1": "tty1", "inittab-T0": "ttyS0"}
    sup.boot(["getty@tty1"])
    assert states(sup, "getty@tty1", "inittab-1", "inittab-T0") == [
        "running", "stopped", "running"]


def test_analyze_shows_the_launch_a_ready_unit_allowed(tmp_path):
    """critical-chain follows a unit to what it is ordered after that was ready by its
    launch: the times the analyze verb gives must keep that order exactly (they were
    rounded once, and a chain a <- b <- c was sometimes cut after c)."""
    from vigil import analyze
    from vigil.verbs import Verbs
    sup, loop, _procs = make(tmp_path, unit("a", type="oneshot"),
                             unit("b", type="oneshot", unit_requires=["a"]),
                             unit("c", unit_requires=["b"]))
    loop.t = 1000.123456789
    sup.start(["c"])
    loop.t += 0.40004999
    exit_unit(sup, "a", exited(0))
    loop.t += 0.30004999
    exit_unit(sup, "b", exited(0))
    reply = Verbs(sup, None, 0.0).verb_analyze([])
    items, _now = analyze.timings(reply)
    assert [link.timing.name for link in analyze.critical_chain(items, "c")] == ["c", "b", "a"]
