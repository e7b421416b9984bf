"""Faults, with vigil as PID 1 of a PID namespace. Each case checks what a user would see:
vigil is still PID 1 (the same host process), still answers `vigilctl status`, and the
unit that has nothing to do with the fault (`bystander`) runs on with the same pid.

The figures (peak Pss, CPU, latencies) are printed as `[figure]` lines, never asserted
but as generous bounds that say a property ("memory does not grow with the flood").
"""

import json
import os
import re
import resource
import subprocess
import threading
import time

import probes
import pytest

pytestmark = pytest.mark.ns

FLOOD_SECONDS = float(os.environ.get("VIGIL_FLOOD_SECONDS", "5"))
FORK_STORM = int(os.environ.get("VIGIL_FORK_STORM", "50000"))
BYSTANDER = '[service]\nexec = ["/bin/sleep", "1000"]\n'


@pytest.fixture
def figure(request):
    """Print a figure on the terminal even while pytest captures the output."""
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin(
        "capturemanager")

    def say(text: str) -> None:
        print(text)
        if reporter is not None and capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(f"[figure] {text}")
    return say


class Watch:
    """What must not change across a fault: vigil's pid and the bystander's."""

    def __init__(self, vigil):
        self.vigil = vigil
        self.host_pid = vigil.host_pid()
        self.bystander = vigil.wait_state("bystander", "running")["pid"]

    def check(self) -> None:
        v = self.vigil
        assert v.proc.poll() is None and v.host_pid() == self.host_pid, "vigil is PID 1 still"
        version = json.loads(v.ctl("--json", "version", check=True).stdout)
        assert version["pid"] == 1
        r = v.ctl("status", timeout=30)
        assert r.returncode == 0, r.stderr
        st = v.status("bystander")
        assert (st["state"], st["pid"]) == ("running", self.bystander), "bystander undisturbed"


def start(vigil, *extra) -> Watch:
    vigil.unit("bystander", BYSTANDER)
    vigil.start(*extra)
    return Watch(vigil)


def numbers_in(files) -> list[str]:
    out = []
    for f in files:
        for line in f.read_text(errors="replace").splitlines():
            m = re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} (.*)", line)
            assert m, f"a cut or unstamped line in {f.name}: {line[:80]!r}"
            out.append(m.group(1))
    return out


def rotated(logs, name: str, keep: int) -> list:
    return [p for p in [logs / f"{name}.log.{k}" for k in range(keep, 0, -1)]
            + [logs / f"{name}.log"] if p.exists()]


def test_output_flood_memory_stays_bounded_and_lines_stay_whole(vigil, figure):
    vigil.unit("flood", """[service]
exec = ["/usr/bin/seq", "1", "100000000000"]
log_max_size = 1048576
log_keep = 3
""")
    w = start(vigil)
    vigil.wait_state("flood", "running")
    base = probes.pss_kib(w.host_pid)
    cpu0, t0 = probes.cpu_seconds(w.host_pid), time.monotonic()
    samples = []
    while time.monotonic() - t0 < FLOOD_SECONDS:
        samples.append(probes.pss_kib(w.host_pid))
        time.sleep(0.2)
    cpu = (probes.cpu_seconds(w.host_pid) - cpu0) / (time.monotonic() - t0)
    w.check()
    vigil.ctl("stop", "flood", check=True)
    st = vigil.wait_state("flood", "stopped")
    files = rotated(vigil.logs, "flood", 3)
    assert len(files) == 4, "rotated, keeping 3"
    lines = numbers_in(files)
    dropped = [x for x in lines if "lines dropped" in x]
    numbers = [int(x) for x in lines[:-1] if x not in dropped]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), "whole, in order"
    assert str(numbers[-1] + 1).startswith(lines[-1]), "the last line, cut by the stop"
    assert len(dropped) == (1 if st["dropped_lines"] else 0), "drops are counted and told"
    peak, half = max(samples), len(samples) // 2
    figure(f"log flood {FLOOD_SECONDS:.0f}s: PID 1 Pss {base} KiB at start, peak {peak} KiB "
           f"(+{peak - base} KiB; first half's peak {max(samples[:half])}, second half's "
           f"{max(samples[half:])}); {numbers[-1] / FLOOD_SECONDS:,.0f} lines/s to disk; "
           f"PID 1 CPU {cpu:.0%}; {st['dropped_lines']} dropped")
    assert peak - base < 8192, "PID 1's memory does not grow with the flood"


def test_a_hundred_crash_loops_each_hit_the_start_limit(vigil, figure):
    for i in range(100):
        vigil.unit(f"crash{i:03d}", """[service]
exec = ["/bin/sh", "-c", "exit 1"]
restart = "always"
restart_delay = 0.1
restart_delay_max = 0.4
start_limit_burst = 5
start_limit_interval = 60
start_limit_cooldown = 0
log = "null"
""")
    w = start(vigil)
    cpu0, t0 = probes.cpu_seconds(w.host_pid), time.monotonic()

    def all_failed():
        units = json.loads(vigil.ctl("--json", "status").stdout)["units"]
        return all(u["state"] == "failed" for u in units if u["name"] != "bystander")
    vigil.wait_for(all_failed, 90, "all 100 to hit their start limit")
    wall = time.monotonic() - t0
    cpu = probes.cpu_seconds(w.host_pid) - cpu0
    for i in (0, 42, 99):
        st = vigil.status(f"crash{i:03d}")
        assert "start limit hit (5 starts" in st["why"]["text"] and st["restarts"] == 4
    w.check()
    figure(f"crash storm, 100 units x 5 starts: {wall:.1f}s, PID 1 CPU {cpu:.2f}s "
           f"({cpu / wall:.0%} of one core)")


FORKER = """use POSIX;
my ($n) = @ARGV;
for my $b (1 .. $n / 1000) {
    my $p = fork;
    if (!$p) { for (1 .. 1000) { POSIX::_exit(0) if !fork } POSIX::_exit(0) }
    waitpid($p, 0);
}
"""


def test_a_fork_storm_of_orphans_is_reaped_while_vigil_answers(vigil, figure):
    script = vigil.out / "forker.pl"
    script.write_text(FORKER)
    vigil.unit("storm", f"""[unit]
enabled = false
[service]
type = "oneshot"
exec = ["/usr/bin/perl", "{script}", "{FORK_STORM}"]
start_timeout = 600
""")
    w = start(vigil)
    cpu0 = probes.cpu_seconds(w.host_pid)
    vigil.ctl("start", "storm", check=True)
    t0 = time.monotonic()
    latencies = []
    while vigil.status("storm")["state"] != "done":
        took, reply = probes.timed_request(vigil.sock, "status")
        assert reply["ok"]
        latencies.append(took)
        time.sleep(0.1)
        assert time.monotonic() - t0 < 600
    wall = time.monotonic() - t0
    cpu = probes.cpu_seconds(w.host_pid) - cpu0
    vigil.wait_for(lambda: not probes.zombies(vigil.descendants()), 10, "no zombie")
    left = probes.cmdlines(vigil.descendants())
    assert sorted(left.values()) == sorted([left[w.host_pid], "/bin/sleep 1000"]), left
    w.check()
    figure(f"fork storm, {FORK_STORM} orphans: {wall:.1f}s ({FORK_STORM / wall:,.0f}/s), "
           f"PID 1 CPU {cpu:.1f}s; status latency during it over {len(latencies)} requests: "
           f"median {probes.percentile(latencies, 0.5) * 1000:.1f} ms, "
           f"p95 {probes.percentile(latencies, 0.95) * 1000:.1f} ms, "
           f"max {max(latencies) * 1000:.1f} ms")


# Three ways to outlive a plain SIGTERM to the process group. Each leaves a process whose
# command line carries a marker, so the test can find it from the host.
STUBBORN = {
    "ignores-term": """exec = ["/bin/sh", "-c", "trap '' TERM; sleep 7001 & wait"]""",
    "double-fork": """exec = ["/bin/sh", "-c",
        "(sh -c \\"trap '' TERM; exec sleep 7002\\" &); exec sleep 7012"]""",
    "new-session": """exec = ["/bin/sh", "-c",
        "setsid sh -c \\"trap '' TERM; exec sleep 7003\\" & exec sleep 7013"]""",
}


def marked(vigil, marker: str) -> list[int]:
    return [p for p, cmd in probes.cmdlines(vigil.descendants()).items()
            if marker in cmd.split()]


def stubborn_units(vigil) -> None:
    for name, body in STUBBORN.items():
        vigil.unit(name, f"[service]\n{body}\nstop_timeout = 1\n")


def test_stop_ends_every_process_of_a_stubborn_service(vigil):
    stubborn_units(vigil)
    w = start(vigil)
    for marker in ("7001", "7002", "7003"):
        vigil.wait_for(lambda m=marker: marked(vigil, m), what=f"sleep {marker}")
    for name, marker in zip(STUBBORN, ("7001", "7002", "7003"), strict=True):
        vigil.ctl("stop", name, check=True)
        vigil.wait_state(name, "stopped")
        vigil.wait_for(lambda m=marker: not marked(vigil, m), 5,
                       f"every process of {name} gone")
    assert not probes.zombies(vigil.descendants())
    w.check()


def test_poweroff_ends_stubborn_services_before_the_final_kill(vigil):
    stubborn_units(vigil)
    start(vigil)
    for marker in ("7001", "7002", "7003"):
        vigil.wait_for(lambda m=marker: marked(vigil, m), what=f"sleep {marker}")
    vigil.ctl("poweroff", check=True)
    assert vigil.proc.wait(60) == -2
    console = vigil.console.read_text()
    for name in STUBBORN:
        assert re.search(rf"{name}: (signal SIG\w+|exit \d+) after", console), console
    assert "killing processes left" not in console, \
        "the units' own stop found all their processes"


def test_log_directory_read_only_removed_or_full(vigil, tmp_path):
    fs = tmp_path / "fs"
    fs.mkdir()
    # read-only from the start (as / at boot), made writable later
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(fs)], check=True)
    try:
        _log_faults(vigil, fs)
    finally:
        vigil.stop()
        subprocess.run(["umount", "-l", str(fs)])


def _log_faults(vigil, fs):
    vigil.logs = fs / "logs"
    vigil.unit("chatter", """[service]
exec = ["/bin/sh", "-c", "i=0; while :; do echo line $i; i=$((i+1)); sleep 0.005; done"]
""")
    w = start(vigil)
    log = vigil.logs / "chatter.log"

    def count(text: str) -> int:
        return vigil.console.read_text().count(text)

    def written() -> list[int]:
        return [int(x.split()[1]) for x in numbers_in([log])] if log.exists() else []

    def inside(*cmd: str) -> None:  # in vigil's mount namespace, where its copy is
        subprocess.run(["nsenter", "-t", str(w.host_pid), "-m", *cmd], check=True,
                       capture_output=True)

    said, back = "keeping its last lines in memory", "is writable again"
    vigil.wait_for(lambda: count(said) == 1, what="the read-only disk said")
    time.sleep(1.5)
    assert count(said) == 1, "said once"
    assert "Read-only" in vigil.status("chatter")["log_error"]
    inside("mount", "-o", "remount,rw", str(fs))
    vigil.wait_for(lambda: count(back) == 1, what="the lines written out")
    assert written()[0] == 0, "nothing lost while the disk was read-only"
    # removed: made again at once (nothing to keep back, nothing said)
    inside("rm", "-rf", str(vigil.logs))
    vigil.wait_for(lambda: len(written()) > 20, what="the log made again")
    first = written()[0]
    # full: said once, kept in memory, written out when space returns
    filler = fs / "filler"
    inside("sh", "-c", f"dd if=/dev/zero of={filler} bs=4k 2>/dev/null; true")
    vigil.wait_for(lambda: count(said) == 2, what="the full disk said")
    time.sleep(1.5)
    assert count(said) == 2, "said once"
    assert "No space left" in vigil.status("chatter")["log_error"]
    inside("rm", str(filler))
    vigil.wait_for(lambda: count(back) == 2, what="the lines written out again")
    vigil.ctl("stop", "chatter", check=True)
    vigil.wait_state("chatter", "stopped")
    numbers = written()
    assert numbers == list(range(first, first + len(numbers))), "whole lines, none lost"
    assert vigil.status("chatter")["dropped_lines"] == 0
    assert count(said) == 2 and count(back) == 2
    w.check()


BROKEN = [  # (text, what the error must say besides the file)
    ('[service]\nexec = ["/bin/sleep", "1000"]\nrestrat = "always"\n', ":3: service.restrat"),
    ('[service]\nexec = ["/bin/sleep", "1000"]\nstop_timeout = "x"\n',
     ":3: service.stop_timeout"),
    ('[service\nexec = ["/bin/sleep", "1000"]\n', "TOML syntax"),
    ('[service]\ntype = "simple"\n', "service.exec: missing"),
    ('[unit]\nrequires = ["ghost"]\n[service]\nexec = ["/bin/sleep", "1000"]\n',
     "unit.requires: required unit 'ghost' does not exist"),
    ('[service]\nexec = ["/bin/sleep", "1000"]\nstop_signal = "FOO"\n',
     "service.stop_signal: unknown signal"),
    ('[install]\nwanted_by = "x"\n', "install: unknown section"),
    (b'[service]\nexec = ["/bin/sleep", "\xff"]\n', "cannot read"),
    ('[service]\nexec = ["/bin/sleep", "1000"]\numask = "999"\n', "service.umask"),
    ('[service]\nexec = ["/bin/sleep", "1000"]\n', "refused: the file is writable by every"),
]


def test_a_thousand_units_a_hundred_broken_in_ten_ways(vigil):
    for i in range(900):
        vigil.unit(f"good{i:03d}", '[service]\nexec = ["/bin/sleep", "1000"]\nlog = "null"\n')
    broken = {}
    for i in range(100):
        text, want = BROKEN[i % len(BROKEN)]
        path = vigil.units / f"bad{i:03d}.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        if "writable by every" in want:
            os.chmod(path, 0o666)
        broken[f"bad{i:03d}"] = (str(path), want)
    w = start(vigil)
    vigil.wait_for(lambda: sum(u["state"] == "running" for u in json.loads(
        vigil.ctl("--json", "status").stdout)["units"]) == 901, 120, "the 900 good ones")
    rows = {u["name"]: u for u in json.loads(vigil.ctl("--json", "list").stdout)}
    for name, (path, want) in broken.items():
        text = rows[name]["why"]["text"]
        assert rows[name]["state"] == "failed" and path in text and want in text, (name, text)
    console = vigil.console.read_text()
    assert all(path in console for path, _ in broken.values()), "each reported on the console"
    w.check()


OLD = '[unit]\ndescription = "old"\n[service]\nexec = ["/bin/sleep", "1001"]\n'
NEW = '[unit]\ndescription = "new, a longer text so that a half write is seen"\n' \
      '[service]\nexec = ["/bin/sleep", "1002"]\n'


def test_unit_files_changing_during_reloads(vigil):
    vigil.unit("shifty", OLD)
    w = start(vigil)
    vigil.wait_state("shifty", "running")
    path = vigil.units / "shifty.toml"
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            for text in (NEW, OLD):
                with open(path, "w") as f:           # written half-way, then the rest
                    f.write(text[:len(text) // 2])
                    f.flush()
                    time.sleep(0.01)
                    f.write(text[len(text) // 2:])
                tmp = path.with_suffix(".tmp")
                tmp.write_text(text)
                os.rename(tmp, path)                # renamed over
                time.sleep(0.01)
            path.unlink()                           # removed
            time.sleep(0.02)
            path.write_text(OLD)
    writer = threading.Thread(target=churn)
    writer.start()
    seen = set()
    try:
        for _ in range(40):
            r = vigil.ctl("reload", timeout=30)
            assert r.returncode == 0, r.stdout + r.stderr
            out = vigil.ctl("--json", "status", "shifty")
            if out.returncode == 4:
                seen.add("removed")
                continue
            st = json.loads(out.stdout)[0]
            if "exec" not in st:  # a half-written file read just after a removal:
                assert st["why"]["kind"] == "invalid", st  # nothing was there to keep
                seen.add("half-written after a removal")
                continue
            assert st["exec"] in (["/bin/sleep", "1001"], ["/bin/sleep", "1002"]), st
            seen.add(st["exec"][1] + (" (a half-written one rejected)"
                                      if st.get("rejected") else ""))
    finally:
        stop.set()
        writer.join()
    path.write_text(NEW)
    vigil.ctl("reload", check=True)
    assert vigil.wait_state("shifty", "running")["description"].startswith("new")
    assert "Traceback" not in vigil.console.read_text()
    w.check()
    print("definitions seen across the reloads:", sorted(seen))


def test_an_exception_in_a_handler_is_logged_and_the_loop_goes_on(vigil, monkeypatch):
    monkeypatch.setenv("VIGIL_TEST_FAULT", "ping")  # a request for ping raises in vigil
    w = start(vigil)
    for _ in range(3):
        r = vigil.ctl("ping", timeout=30)
        assert r.returncode == 1, "no answer to the faulty request"
    console = vigil.console.read_text()
    assert console.count("RuntimeError('test fault (VIGIL_TEST_FAULT=ping)')") == 3
    assert "Traceback (most recent call last)" in console and "_on_client" in console
    w.check()


def test_out_of_file_descriptors_then_back(vigil, figure):
    vigil.unit("brief", '[service]\nexec = ["/bin/sleep", "3"]\nrestart = "never"\n')
    w = start(vigil)
    pid = w.host_pid
    vigil.wait_state("brief", "running")
    low = probes.fd_count(pid)  # no new descriptor can be had (the soft limit: the hard
    hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)[1]  # one may need a capability)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (low, hard))
    cpu0, t0 = probes.cpu_seconds(pid), time.monotonic()
    try:
        r = vigil.ctl("status", timeout=30)
        assert r.returncode != 0, "accept fails"
        vigil.wait_for(lambda: "cannot accept: Too many open files" in
                       vigil.console.read_text(), what="the shortage said")
        # vigil still supervises: brief exits and is reaped while no fd can be had
        vigil.wait_for(lambda: "brief: exit 0" in vigil.console.read_text(), 10,
                       "brief reaped")
        time.sleep(1)
        spent = probes.cpu_seconds(pid) - cpu0
        wall = time.monotonic() - t0
    finally:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (hard, hard))
    assert vigil.console.read_text().count("cannot accept") == 1, "said once"
    vigil.wait_for(lambda: vigil.ctl("status").returncode == 0, 10, "answers again")
    assert "file descriptors are back" in vigil.console.read_text()
    assert vigil.state("brief") == "done"
    assert not probes.zombies(vigil.descendants())
    w.check()
    figure(f"out of fds: PID 1 CPU {spent / wall:.1%} while accept failed ({wall:.1f}s)")
    assert spent / wall < 0.5, "no spinning on the failing accept"
