"""The sysvinit command names (vigilctl invoked as shutdown, telinit, runlevel, poweroff)."""

import os
import signal
import subprocess
import time

import pytest

from conftest import VIGILCTL

pytestmark = pytest.mark.ns


def as_name(vigil, name: str, *args: str) -> subprocess.CompletedProcess:
    link = vigil.tmp / "bin" / name
    link.parent.mkdir(exist_ok=True)
    if not link.exists():
        os.symlink(VIGILCTL, link)
    env = dict(os.environ, VIGIL_SOCKET=vigil.sock)
    return subprocess.run([str(link), *args], capture_output=True, text=True, env=env,
                          timeout=20)


def test_shutdown_scheduled_then_cancelled(vigil):
    vigil.unit("svc", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.start()
    vigil.wait_state("svc", "running")
    r = as_name(vigil, "shutdown", "-r", "+1", "maintenance", "window")
    assert r.returncode == 0 and "scheduled for" in r.stdout, r.stderr
    status = vigil.ctl("status", check=True).stdout
    assert "scheduled: reboot at" in status and "maintenance window" in status
    r = as_name(vigil, "shutdown", "-c")
    assert r.returncode == 0 and "cancelled" in r.stdout
    assert "scheduled" not in vigil.ctl("status", check=True).stdout
    assert as_name(vigil, "shutdown", "-c").returncode == 1, "nothing left to cancel"
    assert vigil.proc.poll() is None and vigil.state("svc") == "running"


def test_shutdown_now_powers_off(vigil):
    vigil.start()
    r = as_name(vigil, "shutdown", "-h", "now")
    assert r.returncode == 0, r.stderr
    assert vigil.proc.wait(20) == -signal.SIGINT


def test_telinit_6_reboots_and_q_reloads(vigil):
    vigil.start()
    vigil.unit("late", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    assert as_name(vigil, "telinit", "q").returncode == 0
    vigil.wait_state("late", "running")
    assert as_name(vigil, "telinit", "x").returncode == 2
    assert as_name(vigil, "telinit", "6").returncode == 0
    assert vigil.proc.wait(20) == -signal.SIGHUP


def test_bad_times_and_usage(vigil):
    vigil.start()
    r = as_name(vigil, "shutdown", "-r", "25:99")
    assert r.returncode == 2 and "invalid time" in r.stderr
    assert vigil.ctl("frobnicate").returncode == 2
    assert vigil.ctl("stop").returncode == 2
    assert vigil.proc.poll() is None


def test_sigterm_to_pid1_is_a_poweroff(vigil):
    vigil.unit("svc", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.start()
    vigil.wait_state("svc", "running")
    os.kill(vigil.host_pid(), signal.SIGTERM)
    assert vigil.proc.wait(20) == -signal.SIGINT
    assert "svc: signal SIGTERM" in vigil.console.read_text()


def test_chain_stops_in_reverse_order(vigil):
    # each service records when it got SIGTERM; c requires b requires a
    for name, dep in (("a", ""), ("b", "a"), ("c", "b")):
        req = f'[unit]\nrequires = ["{dep}"]\n' if dep else ""
        vigil.unit(name, req + f"""[service]
exec = ["/bin/sh", "-c", "trap 'date +%s.%N > $OUT/{name}.stop; sleep 0.2; exit 0' TERM; \
while :; do sleep 0.05; done"]
""")
    vigil.start()
    vigil.wait_state("c", "running")
    vigil.ctl("poweroff", check=True)
    assert vigil.proc.wait(30) == -signal.SIGINT
    a, b, c = (float((vigil.out / f"{n}.stop").read_text()) for n in "abc")
    assert c < b < a
    assert b - c >= 0.2 and a - b >= 0.2, "each waits until the one after it has exited"


def test_sigterm_ignoring_service_delays_shutdown_by_its_stop_timeout(vigil):
    vigil.unit("stubborn", """[service]
exec = ["/bin/sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"]
stop_timeout = 2
""")
    vigil.unit("quick", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.start()
    vigil.wait_state("stubborn", "running")
    vigil.ctl("poweroff", check=True)
    assert vigil.proc.wait(30) == -signal.SIGINT
    console = vigil.console.read_text()
    assert "stubborn: still running 2s after the stop signal, sending SIGKILL" in console
    took = float(console.split("services stopped in ")[1].split("s")[0])
    assert 2 <= took < 2 + 1.5, f"bounded by the stop_timeout: {took}"


def test_telinit_1_then_2_switches_to_rescue_and_back(vigil):
    vigil.unit("web", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.unit("fixer", '[unit]\nenabled = false\nrescue = true\n'
               '[service]\nexec = ["/bin/sleep", "1001"]\n')
    vigil.start()
    vigil.wait_state("web", "running")
    assert vigil.state("fixer") == "stopped"
    assert as_name(vigil, "telinit", "1").returncode == 0
    vigil.wait_state("web", "stopped")
    vigil.wait_state("fixer", "running")
    assert as_name(vigil, "telinit", "2").returncode == 0
    vigil.wait_state("web", "running")
    vigil.wait_state("fixer", "stopped")


@pytest.mark.parametrize("offset, signo", [(3, signal.SIGINT), (4, signal.SIGINT),
                                           (5, signal.SIGHUP)])
def test_container_manager_signals(vigil, offset, signo):
    """SIGRTMIN+3/+4/+5: halt, poweroff, reboot (a halt ends a namespace like a poweroff)."""
    vigil.start()
    os.kill(vigil.host_pid(), signal.SIGRTMIN + offset)
    assert vigil.proc.wait(20) == -signo


def test_processes_no_unit_owns_are_killed_at_shutdown(vigil):
    vigil.unit("leaver", '[service]\ntype = "oneshot"\nexec = ["/bin/sh", "-c", '
               '"setsid sh -c \'trap \\"\\" TERM; exec sleep 1003\' &"]\n')
    vigil.start()
    vigil.wait_state("leaver", "done")
    assert any(_cmdline(p) == ["sleep", "1003"] for p in vigil.descendants())
    t0 = time.monotonic()
    vigil.ctl("poweroff", check=True)
    assert vigil.proc.wait(30) == -signal.SIGINT
    console = vigil.console.read_text()
    assert "killing processes left after" in console, console
    assert time.monotonic() - t0 >= 3, "SIGTERM first, SIGKILL after the grace"


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode() for a in f.read().split(b"\0") if a]
    except OSError:
        return []
