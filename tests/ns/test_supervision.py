"""Supervision as a user sees it: vigil is PID 1 of a PID namespace, driven by vigilctl."""

import json
import os
import re
import socket
import time

import pytest

pytestmark = pytest.mark.ns

STAMP = "date +%s.%N"


def stamps(path):
    return [float(x) for x in path.read_text().split()]


def test_dependency_order_and_parallel_start(vigil):
    # c requires b requires a; a and b are oneshots that take a while; d is independent.
    vigil.unit("a", f"""[service]
type = "oneshot"
exec = ["/bin/sh", "-c", "{STAMP} > $OUT/a.start; sleep 0.5; {STAMP} > $OUT/a.end"]
""")
    vigil.unit("b", f"""[unit]
requires = ["a"]
[service]
type = "oneshot"
exec = ["/bin/sh", "-c", "{STAMP} > $OUT/b.start; sleep 0.3; {STAMP} > $OUT/b.end"]
""")
    vigil.unit("c", f"""[unit]
requires = ["b"]
[service]
exec = ["/bin/sh", "-c", "{STAMP} > $OUT/c.start; exec sleep 1000"]
""")
    vigil.unit("d", f"""[service]
exec = ["/bin/sh", "-c", "{STAMP} > $OUT/d.start; exec sleep 1000"]
""")
    vigil.start()
    vigil.wait_state("c", "running")
    out = vigil.out
    a0, a1, b0, b1, c0, d0 = (stamps(out / f)[0] for f in
                              ("a.start", "a.end", "b.start", "b.end", "c.start", "d.start"))
    assert a1 <= b0 and b1 <= c0, "each unit starts after what it requires is done"
    assert d0 < a1, "an independent unit does not wait for the chain"
    assert vigil.state("a") == "done" and vigil.state("b") == "done"
    # shutdown order is the exact reverse: vigilctl list shows analyze timings too
    blame = json.loads(vigil.ctl("--json", "analyze", check=True).stdout)
    assert {r["name"] for r in blame} == {"a", "b", "c", "d"}


def test_double_forking_service_leaves_no_zombie(vigil):
    vigil.unit("forky", """[service]
exec = ["/bin/sh", "-c", "for i in 1 2 3 4 5; do (sleep 0.2 &) ; done; exec sleep 1000"]
""")
    vigil.start()
    vigil.wait_state("forky", "running")
    time.sleep(1.0)  # the grandchildren exit, reparented to vigil

    def zombies():
        found = []
        for pid in vigil.descendants():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            if stat[stat.rfind(")") + 2] == "Z":
                found.append(pid)
        return found
    vigil.wait_for(lambda: not zombies(), 5, "no zombies")
    assert vigil.state("forky") == "running"


def test_crash_loop_backs_off_and_ends_failed(vigil):
    vigil.unit("crash", f"""[service]
exec = ["/bin/sh", "-c", "{STAMP} >> $OUT/starts; exit 3"]
restart = "always"
restart_delay = 0.1
restart_delay_max = 5
start_limit_burst = 4
start_limit_interval = 30
start_limit_cooldown = 0
""")
    vigil.unit("steady", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.start()
    st = vigil.wait_state("crash", "failed")
    assert "start limit hit" in st["why"]["text"] and st["last_exit"] == "exit 3"
    assert st["restarts"] == 3
    times = stamps(vigil.out / "starts")
    assert len(times) == 4
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # the delay doubles: 0.1, 0.2, 0.4 (plus the time each run takes)
    assert gaps[1] > gaps[0] and gaps[2] > gaps[1], gaps
    assert vigil.state("steady") == "running"
    r = vigil.ctl("status", "crash")
    assert r.returncode == 3 and "start limit hit" in r.stdout and "exit 3" in r.stdout
    # vigilctl start clears the failure at once
    vigil.ctl("start", "crash", check=True)
    vigil.wait_for(lambda: len(stamps(vigil.out / "starts")) > 4, what="a new start")


def test_start_limit_cooldown_retries(vigil):
    vigil.unit("crash", f"""[service]
exec = ["/bin/sh", "-c", "{STAMP} >> $OUT/starts; exit 1"]
restart_delay = 0.05
start_limit_burst = 2
start_limit_interval = 30
start_limit_cooldown = 1
""")
    vigil.start()
    st = vigil.wait_state("crash", "failed")
    assert "retrying at" in st["why"]["text"]
    vigil.wait_for(lambda: len(stamps(vigil.out / "starts")) >= 3, what="retry after cooldown")


def test_service_ignoring_sigterm_is_killed_after_stop_timeout(vigil):
    vigil.unit("stubborn", """[service]
exec = ["/bin/sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"]
stop_timeout = 1.5
""")
    vigil.start()
    vigil.wait_state("stubborn", "running")
    t0 = time.monotonic()
    vigil.ctl("stop", "stubborn", check=True)
    assert vigil.state("stubborn") == "stopping"
    st = vigil.wait_state("stubborn", "stopped")
    elapsed = time.monotonic() - t0
    assert st["last_exit"] == "signal SIGKILL"
    assert elapsed >= 1.5
    assert "sending SIGKILL" in vigil.console.read_text()


def test_reload_keeps_unchanged_pids(vigil):
    vigil.unit("same", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.unit("changed", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.unit("removed", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.start()
    before = {n: vigil.wait_state(n, "running")["pid"] for n in ("same", "changed", "removed")}
    vigil.unit("changed", '[service]\nexec = ["/bin/sleep", "2000"]\n')
    os.unlink(vigil.units / "removed.toml")
    vigil.unit("added", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.unit("same2", '[service]\nexec = "sleep"\nbogus = 1\n')  # invalid: reported
    r = vigil.ctl("reload", check=True)
    assert "added: added" in r.stdout and "removed: removed" in r.stdout
    assert "changed: changed" in r.stdout
    assert re.search(r"invalid \(not loaded\): .*same2.toml:3: service.bogus", r.stdout), \
        "a new broken file had no old definition to keep"
    assert "old definition kept" not in r.stdout
    assert vigil.status("same")["pid"] == before["same"]
    new = vigil.wait_state("changed", "running")
    assert new["pid"] != before["changed"]
    vigil.wait_state("added", "running")
    assert vigil.ctl("status", "removed").returncode == 4


def test_reload_keeps_old_definition_when_new_file_is_invalid(vigil):
    vigil.unit("svc", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.start()
    pid = vigil.wait_state("svc", "running")["pid"]
    vigil.unit("svc", '[service]\nexec = ["/bin/sleep", "1000"]\nstop_timeout = "x"\n')
    r = vigil.ctl("reload", check=True)
    assert "old definition kept" in r.stdout and "svc.toml:3: service.stop_timeout" in r.stdout
    st = vigil.status("svc")
    assert st["pid"] == pid and st["state"] == "running"
    assert "svc.toml:3: service.stop_timeout" in st["rejected"]
    assert "new file rejected, the old definition runs" in vigil.ctl("status", "svc").stdout


def test_sighup_reloads(vigil):
    vigil.start()
    vigil.unit("late", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    os.kill(vigil.host_pid(), 1)
    vigil.wait_state("late", "running")


def test_broken_unit_reported_while_others_run(vigil):
    vigil.unit("good", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.unit("typo", '[service]\nexec = ["/bin/sleep", "1000"]\nrestrat = "always"\n')
    vigil.unit("needs", '[unit]\nrequires = ["ghost"]\n[service]\nexec = "sleep 1"\n')
    vigil.unit("noexec", '[service]\nexec = ["/nonexistent/daemon"]\nrestart = "never"\n')
    vigil.start()
    vigil.wait_state("good", "running")
    r = vigil.ctl("status", "typo")
    assert r.returncode == 3
    assert "typo.toml:3: service.restrat: unknown key" in r.stdout
    r = vigil.ctl("status", "needs")
    assert "required unit 'ghost' does not exist" in r.stdout
    st = vigil.wait_state("noexec", "failed")
    assert "/nonexistent/daemon: not found" in st["why"]["text"]
    listing = vigil.ctl("list", check=True).stdout
    assert re.search(r"good\s+running", listing) and re.search(r"typo\s+failed", listing)
    assert vigil.ctl("status", "ghost").returncode == 4


def test_dependency_failure_is_explained(vigil):
    vigil.unit("db", '[service]\nexec = ["/bin/false"]\nrestart = "never"\n'
               'type = "oneshot"\n')
    vigil.unit("web", '[unit]\nrequires = ["db"]\n[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.start()
    st = vigil.wait_state("web", "failed")
    assert st["why"]["text"] == "dependency db failed" and st["pid"] is None


def test_non_root_cannot_stop(vigil):
    vigil.unit("svc", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.start()
    vigil.wait_state("svc", "running")
    r = vigil.ctl("stop", "svc", user=65534)
    assert r.returncode == 1 and "permission denied" in r.stderr
    assert vigil.state("svc") == "running"
    r = vigil.ctl("status", "svc", user=65534)  # reading is open to everyone
    assert r.returncode == 0 and "running" in r.stdout


def test_log_rotation_loses_no_line(vigil):
    n = 5000
    vigil.unit("chatty", f"""[service]
type = "oneshot"
exec = ["/bin/sh", "-c", "i=0; while [ $i -lt {n} ]; do echo line $i; i=$((i+1)); done"]
log_max_size = 4096
log_keep = 100
""")
    vigil.start()
    vigil.wait_state("chatty", "done")
    files = sorted(vigil.logs.glob("chatty.log*"))
    assert len(files) > 10, "rotated many times"
    got = []
    for f in files:
        for line in f.read_text().splitlines():
            m = re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} line (\d+)", line)
            assert m, f"cut or garbled line in {f.name}: {line!r}"
            got.append(int(m.group(1)))
    assert sorted(got) == list(range(n))
    r = vigil.ctl("logs", "chatty", "-n", "0", check=True)
    assert [int(x.rsplit(" ", 1)[1]) for x in r.stdout.splitlines()] == list(range(n))


def test_stalled_clients_do_not_block_status(vigil):
    vigil.unit("svc", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.start()
    vigil.wait_state("svc", "running")
    stalled = []
    for payload in (b"", b"1 stat", b"1 dump\n"):  # silent, half a line, never reads reply
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(vigil.sock)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        if payload:
            s.send(payload)
        stalled.append(s)
    t0 = time.monotonic()
    r = vigil.ctl("status", "svc", timeout=5)
    assert r.returncode == 0 and time.monotonic() - t0 < 5
    # garbage and oversized requests get an error reply, and vigil goes on
    for payload, want in ((b"\xff\xff\n", "not UTF-8"), (b"1 " + b"a" * 10000, "longer"),
                          (b"1 frobnicate\n", "unknown verb"), (b"9 list\n", "version")):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(vigil.sock)
            s.sendall(payload)
            reply = json.loads(s.makefile("rb").readline())
            assert reply["ok"] is False and want in reply["error"]
    for s in stalled:
        s.close()
    assert vigil.state("svc") == "running"


def _service_host_pid(vigil, marker: str) -> int:
    def find():
        for pid in vigil.descendants():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if f.read().split(b"\0")[1:2] == [marker.encode()]:
                        return pid
            except (OSError, IndexError):
                continue
        return None
    return vigil.wait_for(find, what=f"the process 'sleep {marker}'")


def test_no_fd_leaks_and_clean_signal_state(vigil):
    vigil.unit("probe", '[service]\nexec = ["/bin/sleep", "1001"]\numask = "027"\n')
    vigil.start()
    vigil.wait_state("probe", "running")
    pid = _service_host_pid(vigil, "1001")
    assert sorted(os.listdir(f"/proc/{pid}/fd")) == ["0", "1", "2"]
    assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"
    assert os.readlink(f"/proc/{pid}/fd/1").startswith("pipe:")
    status = dict(line.split(":\t", 1) for line in
                  open(f"/proc/{pid}/status").read().splitlines() if ":\t" in line)
    assert int(status["SigBlk"], 16) == 0 and int(status["SigIgn"], 16) == 0
    assert status["Umask"].strip() == "0027"
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    assert fields[2] == fields[3], "its own session and process group"
    env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    names = sorted(e.split(b"=")[0].decode() for e in env if e)
    assert {"PATH", "HOME", "USER", "LANG"} <= set(names)
    assert "PYTEST_CURRENT_TEST" not in names, "a clean environment, not vigil's"
    dump = json.loads(vigil.ctl("dump", check=True).stdout)
    assert dump["services"]["probe"]["config"]["umask"] == "027", "octal, as in the file"
    assert dump["services"]["probe"]["state"] == "running"


def test_user_group_workdir_environment(vigil):
    vigil.unit("who", """[service]
type = "oneshot"
exec = ["/bin/sh", "-c", "id -u; id -g; pwd; echo $GREETING; echo $HOME"]
user = "nobody"
group = "nogroup"
working_dir = "/tmp"
environment = { GREETING = "hello" }
""")
    vigil.start()
    vigil.wait_state("who", "done")
    lines = vigil.ctl("logs", "who", check=True).stdout.splitlines()
    assert [x.split(" ", 2)[2] for x in lines] == ["65534", "65534", "/tmp", "hello",
                                                   "/nonexistent"]


NOTIFIER = """import os, socket, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1\\nSTATUS=serving", os.environ["NOTIFY_SOCKET"])
time.sleep(1000)
"""


def test_notify_readiness(vigil):
    (vigil.out / "notifier.py").write_text(NOTIFIER)
    vigil.unit("slowready", """[service]
type = "notify"
exec = ["/bin/sh", "-c", "sleep 0.8; exec /usr/bin/python3 $OUT/notifier.py"]
""")
    vigil.unit("after", """[unit]
requires = ["slowready"]
[service]
exec = ["/bin/sleep", "1000"]
""")
    vigil.start()
    # the exec phase ends when the close-on-exec pipe is heard; only then is it READY=1
    vigil.wait_for(lambda: vigil.status("slowready")["phase"] == "readiness", 5,
                   "slowready past its exec")
    st = vigil.status("slowready")
    assert st["state"] == "starting" and "READY=1" in st["why"]["text"]
    assert vigil.state("after") == "starting"
    st = vigil.wait_state("slowready", "running")
    assert st["status"] == "serving"
    vigil.wait_state("after", "running")


def test_forking_service_is_supervised_through_its_pidfile(vigil):
    vigil.unit("daemon", """[service]
type = "forking"
exec = ["/bin/sh", "-c", "sleep 1002 & echo $! > $OUT/daemon.pid"]
pidfile = "$OUT/daemon.pid"
""")
    vigil.start()
    st = vigil.wait_state("daemon", "running")
    assert st["pid"] == int((vigil.out / "daemon.pid").read_text())
    vigil.ctl("stop", "daemon", check=True)
    vigil.wait_state("daemon", "stopped")


def test_restart_on_failure_and_exit_logging(vigil):
    vigil.unit("flaky", f"""[service]
exec = ["/bin/sh", "-c",
        "{STAMP} >> $OUT/runs; n=$(wc -l < $OUT/runs); [ $n -ge 3 ] && exit 0; exit 7"]
restart = "on-failure"
restart_delay = 0.05
""")
    vigil.start()
    st = vigil.wait_state("flaky", "done")
    assert st["restarts"] == 2 and st["last_exit"] == "exit 0"
    console = vigil.console.read_text()
    assert re.search(r"flaky: exit 7 after \d+\.\d\ds", console)


def test_restart_verb_gives_new_pid(vigil):
    vigil.unit("svc", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.unit("dep", '[unit]\nrequires = ["svc"]\n[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.start()
    pid = vigil.wait_state("svc", "running")["pid"]
    dep_pid = vigil.wait_state("dep", "running")["pid"]
    vigil.ctl("restart", "svc", check=True)
    vigil.wait_for(lambda: (s := vigil.status("svc"))["pid"] not in (None, pid)
                   and s["state"] == "running", what="a new pid")
    new_dep = vigil.wait_state("dep", "running")
    assert new_dep["pid"] != dep_pid, "what requires it is restarted with it"


def test_stop_of_required_unit_stops_dependents(vigil):
    vigil.unit("db", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.unit("web", '[unit]\nrequires = ["db"]\n[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.start()
    vigil.wait_state("web", "running")
    vigil.ctl("stop", "db", check=True)
    vigil.wait_state("db", "stopped")
    assert vigil.state("web") == "stopped"
    vigil.ctl("start", "web", check=True)  # pulls db in again
    vigil.wait_state("web", "running")
    assert vigil.state("db") == "running"


def test_memory_bounded_under_log_flood(vigil):
    # The log directory cannot be created (its parent is a file): lines go to memory.
    blocker = vigil.tmp / "blocker"
    blocker.write_text("")
    vigil.logs = blocker / "logs"
    vigil.unit("flood", """[service]
exec = ["/bin/sh", "-c", "exec yes 'a line that is long enough to fill memory quickly'"]
""")
    vigil.start()
    vigil.wait_state("flood", "running")
    pid = vigil.host_pid()

    def rss():
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Rss:"):
                return int(line.split()[1])
    time.sleep(1)
    first = rss()
    time.sleep(3)
    st = vigil.status("flood")
    assert st["dropped_lines"] > 100000, "yes writes far more than the buffer holds"
    assert rss() - first < 4096, "vigil's memory does not grow with the flood"
    assert "logs" in st["log_error"]


def test_reaps_orphans_as_plain_process_subreaper(tmp_path):
    import subprocess
    import sys
    units = tmp_path / "units"
    units.mkdir()
    (units / "orphaner.toml").write_text("""[service]
type = "oneshot"
exec = ["/bin/sh", "-c", "for i in $(seq 50); do (sleep 0.3 &); done"]
""")
    sock = str(tmp_path / "ctl")
    p = subprocess.Popen([sys.executable, "-m", "vigil.main", "--units", str(units),
                          "--log-dir", str(tmp_path / "logs"), "--control", sock],
                         stderr=subprocess.PIPE)
    try:
        time.sleep(2)
        with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
            left = f.read().split()
        assert left == [], "orphans were reparented to vigil and reaped"
        p.send_signal(15)
        assert p.wait(10) == 0
    finally:
        p.kill()


@pytest.mark.skipif(not os.path.exists("/usr/bin/systemd-notify"), reason="no systemd-notify")
def test_systemd_notify_from_a_child_process(vigil):
    vigil.unit("real", """[service]
type = "notify"
exec = ["/bin/sh", "-c", "sleep 0.3; systemd-notify --ready --status=up; exec sleep 1000"]
""")
    vigil.start()
    st = vigil.wait_state("real", "running")
    assert st["status"] == "up"


@pytest.mark.parametrize("verb, signo", [("poweroff", 2), ("reboot", 1), ("halt", 2)])
def test_power_verbs_end_the_namespace_through_reboot2(vigil, verb, signo):
    vigil.unit("svc", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.unit("orphan", '[service]\ntype = "oneshot"\nexec = ["/bin/sh", "-c", '
               '"setsid sleep 1000 &"]\n')
    vigil.start()
    vigil.wait_state("svc", "running")
    vigil.ctl(verb, check=True)
    code = vigil.proc.wait(30)
    # unshare re-raises the signal that ended the namespace's PID 1
    assert code == -signo, vigil.console.read_text()
    console = vigil.console.read_text()
    assert "svc: signal SIGTERM" in console and f"{verb}: done" in console


COUNT_STOPS = """import signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {34})
open(sys.argv[1] + ".ready", "w").close()
signal.sigwaitinfo({34})
n = 1
while signal.sigtimedwait({34}, 0.5):
    n += 1
open(sys.argv[1], "w").write(str(n))
"""


def test_stop_signal_is_delivered_once(vigil):
    # A real-time stop signal queues instead of merging, so the service can count how many
    # times it was sent (a shell running its TERM trap twice made slow services miss their
    # stop_timeout).
    (vigil.out / "count.py").write_text(COUNT_STOPS)
    vigil.unit("counter", """[service]
exec = ["/usr/bin/python3", "$OUT/count.py", "$OUT/stops"]
stop_signal = 34
stop_timeout = 5
""")
    vigil.start()
    vigil.wait_state("counter", "running")
    vigil.wait_for(lambda: (vigil.out / "stops.ready").exists(), what="the signal blocked")
    vigil.ctl("stop", "counter", check=True)
    vigil.wait_state("counter", "stopped")
    assert (vigil.out / "stops").read_text() == "1"


MAINPID_LIAR = """import os, socket, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"MAINPID=1\\nREADY=1\\nSTATUS=lied", os.environ["NOTIFY_SOCKET"])
time.sleep(1000)
"""


def test_notify_as_another_user_cannot_name_a_root_process(vigil):
    # a service running as nobody reaches its own socket, but MAINPID=1 is refused:
    # vigil would otherwise signal PID 1's process at stop
    script = os.path.join(os.path.dirname(vigil.sock), "liar.py")
    with open(script, "w") as f:
        f.write(MAINPID_LIAR)
    os.chmod(script, 0o644)
    vigil.unit("liar", f"""[service]
type = "notify"
exec = ["/usr/bin/python3", "{script}"]
user = "nobody"
""")
    vigil.start()
    st = vigil.wait_state("liar", "running")
    assert st["status"] == "lied" and st["pid"] not in (None, 1)
    mode = os.stat(os.path.join(os.path.dirname(vigil.sock), "notify", "liar"))
    assert mode.st_uid == 65534 and mode.st_mode & 0o077 == 0, "only its user may send"


def test_poweroff_with_nothing_running_is_answered(vigil):
    # The shutdown used to finish (and end vigil) before the reply was written: "no reply".
    vigil.start()
    r = vigil.ctl("poweroff")
    assert r.returncode == 0 and r.stdout.strip() == "poweroff", r.stderr
    assert vigil.proc.wait(20) == -2


def test_tree_shows_the_namespace_processes_of_each_unit(vigil):
    vigil.unit("family", '[service]\nexec = ["/bin/sh", "-c", '
               '"sleep 1003 & (sleep 1005 &); exec sleep 1004"]\n')
    vigil.start()
    pid = vigil.wait_state("family", "running")["pid"]
    vigil.wait_for(lambda: "1005" in vigil.ctl("tree").stdout, what="the grandchild")
    lines = vigil.ctl("tree", check=True).stdout.splitlines()
    assert lines[0] == "family (running)"
    assert lines[1] == f"  {pid} sleep 1004", "the namespace's pid, not the host's"
    assert re.fullmatch(r"    \d+ sleep 1003", lines[2]), "its child"
    assert re.fullmatch(r"  \d+ sleep 1005", lines[3]), "its group member reparented to vigil"
    assert not any("kthreadd" in line for line in lines), "no host kernel thread"


def test_status_is_answered_while_a_thousand_units_start(vigil):
    for i in range(1000):
        vigil.unit(f"s{i:04d}", '[service]\nexec = ["/bin/sleep", "1000"]\nlog = "null"\n')
    vigil.start()
    first = json.loads(vigil.ctl("--json", "status", check=True).stdout)
    assert any(u["state"] == "starting" for u in first["units"]), \
        "answered in the middle of the start, not after it"
    vigil.wait_for(lambda: all(u["state"] == "running" for u in json.loads(
        vigil.ctl("--json", "status").stdout)["units"]), 60, "all 1000 running")


def test_an_exec_error_after_the_fork_is_reported(vigil):
    # found in the parent: "not found"; these only fail in the child, after the fork
    plain = vigil.out / "plain.txt"
    plain.write_text("not a program\n")
    vigil.unit("noexec", f'[service]\nexec = ["{plain}"]\nrestart = "never"\n')
    vigil.unit("nodir", '[service]\nexec = ["/bin/true"]\nrestart = "never"\n'
               'working_dir = "/nonexistent/dir"\n')
    vigil.start()
    st = vigil.wait_state("noexec", "failed")
    assert st["why"]["text"] == f"exited: exec {plain}: Permission denied"
    st = vigil.wait_state("nodir", "failed")
    assert st["why"]["text"] == "exited: /nonexistent/dir: No such file or directory"
