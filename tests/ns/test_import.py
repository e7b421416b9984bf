"""A machine's own units imported at boot: vigil --units EMPTY --import-root ROOT, where ROOT
holds a systemd unit enabled by a wants link, an init.d script with an LSB header and a
pidfile (a forking daemon), and a masked unit that is linked to start too."""

import os
import re
import subprocess

import pytest

from conftest import VIGILCTL, write

pytestmark = pytest.mark.ns

SCRIPT = """#!/bin/sh
### BEGIN INIT INFO
# Provides:          daemon
# Required-Start:    $remote_fs $syslog
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: a small forking daemon
### END INIT INFO
PIDFILE={run}/daemon.pid
case "$1" in
  start) sleep 1000 > /dev/null 2>&1 < /dev/null &
         echo $! > $PIDFILE ;;
  stop)  kill $(cat $PIDFILE) ;;
esac
"""


@pytest.fixture
def root(vigil):
    root = vigil.tmp / "root"
    system, etc = root / "lib/systemd/system", root / "etc/systemd/system"
    write(system / "hello.service", "[Unit]\nDescription=hello\nAfter=network.target\n"
          "[Service]\nExecStart=/bin/sleep 1000\nProtectSystem=full\n"
          "[Install]\nWantedBy=multi-user.target\n")
    write(system / "nope.service", f"[Service]\nExecStart=/bin/touch {vigil.out}/nope-ran\n")
    for name in ("hello", "nope"):
        (etc / "multi-user.target.wants").mkdir(parents=True, exist_ok=True)
        os.symlink(f"/lib/systemd/system/{name}.service",
                   etc / "multi-user.target.wants" / f"{name}.service")
    os.symlink("/dev/null", etc / "nope.service")
    (root / "run").mkdir()
    write(root / "etc/init.d/daemon", SCRIPT.format(run=root / "run"), 0o755)
    (root / "etc/rc2.d").mkdir(parents=True)
    os.symlink("../init.d/daemon", root / "etc/rc2.d/S02daemon")
    os.chmod(vigil.tmp, 0o755)
    return root


def test_enabled_units_of_the_machine_run_and_the_masked_one_does_not(vigil, root):
    vigil.start("--import-root", str(root))
    hello = vigil.wait_state("hello", "running")
    assert hello["path"] == str(root / "lib/systemd/system/hello.service")
    daemon = vigil.wait_state("daemon", "running")
    assert str(daemon["pid"]) == (root / "run/daemon.pid").read_text().strip()
    assert vigil.state("nope") == "stopped"
    assert not (vigil.out / "nope-ran").exists()
    r = subprocess.run([VIGILCTL, "check", "--import-root", str(root), str(vigil.units)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"masked: nope ({root}/etc/systemd/system/nope.service -> /dev/null)" in r.stdout
    assert f"note: {root}/lib/systemd/system/hello.service:6: ProtectSystem=full" in r.stdout
    assert "2 enabled" in r.stdout
    vigil.unit("own", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.ctl("reload", check=True)
    vigil.wait_state("own", "running")
    listing = vigil.ctl("list", check=True).stdout
    assert re.search(r"^UNIT\s+STATE\s+FROM\s+PID\s", listing), listing
    for name, state, origin in (("hello", "running", "systemd"), ("daemon", "running", "init.d"),
                                ("own", "running", "toml"), ("nope", "stopped", "systemd")):
        assert re.search(rf"^{name}\s+{state}\s+{origin}\s", listing, re.M), listing


def test_without_import_root_explicit_units_import_nothing(vigil, root):
    vigil.unit("own", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.start()
    vigil.wait_state("own", "running")
    r = vigil.ctl("--json", "status", "hello")
    assert r.returncode == 4, r.stdout + r.stderr


NOTIFIER = """import os, socket, sys, time
time.sleep(0.8)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1\\nSTATUS=serving", os.environ["NOTIFY_SOCKET"])
time.sleep(1000)
"""


@pytest.fixture
def services(vigil):
    """A machine root with systemd units of the kinds Debian's daemons have, each enabled."""
    root = vigil.tmp / "services-root"
    system = root / "lib/systemd/system"
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True)
    write(vigil.out / "notifier.py", NOTIFIER)
    units = {
        "db.service": "[Service]\nType=notify\n"
                      f"ExecStart=/usr/bin/python3 {vigil.out}/notifier.py\n",
        "broken.service": "[Service]\nExecStartPre=/bin/sh -c 'exit 3'\n"
                          "ExecStart=/bin/sleep 1000\n",
        "rundir.service": f"[Service]\nRuntimeDirectory=vigil-ns-{os.getpid()}\n"
                          "User=nobody\nExecStart=/bin/sleep 1001\n",
        "skipme.service": f"[Unit]\nConditionPathExists=!{vigil.out}\n"
                          "[Service]\nExecStart=/bin/sleep 1002\n",
        "both.service": "[Service]\nExecStart=/bin/sleep 1003\n",
        "reloader.service": f"[Service]\nExecStart=/bin/sleep 1004\n"
                            f"ExecReload=/bin/sh -c 'echo $MAINPID > {vigil.out}/reloaded'\n",
    }
    for name, text in units.items():
        write(system / name, text + "[Install]\nWantedBy=multi-user.target\n")
        os.symlink(f"/lib/systemd/system/{name}", wants / name)
    vigil.unit("both", '[service]\nexec = ["/bin/sleep", "1005"]\n')  # TOML wins
    os.chmod(vigil.tmp, 0o755)
    return root


def test_systemd_units_as_debian_daemons_have_them(vigil, services):
    vigil.start("--import-root", str(services))
    # notify: ready only at READY=1, with its STATUS=
    st = vigil.status("db")
    assert st["origin"] == "systemd"
    if st["phase"] == "readiness":  # (before that, still in exec: the pipe not yet heard)
        assert st["why"]["text"] == "waiting for READY=1 on $NOTIFY_SOCKET"
    st = vigil.wait_state("db", "running")
    assert st["status"] == "serving"
    # ExecStartPre failing stops the start, and says which command
    st = vigil.wait_state("broken", "failed")
    assert st["why"]["text"] == "exited: exec_start_pre /bin/sh -c exit 3: exit 3"
    # RuntimeDirectory: there, owned by the user, while running; gone after stop
    path = f"/run/vigil-ns-{os.getpid()}"
    vigil.wait_state("rundir", "running")
    assert os.stat(path).st_uid == 65534
    vigil.ctl("stop", "rundir", check=True)
    vigil.wait_state("rundir", "stopped")
    assert not os.path.exists(path)
    # a condition that fails: skipped, and the condition shown
    st = vigil.wait_state("skipme", "skipped")
    assert st["why"]["text"] == f"condition failed: condition_path_exists !{vigil.out}"
    # a name both in TOML and as a .service: the TOML unit, the other shown as shadowed
    st = vigil.wait_state("both", "running")
    assert st["origin"] == "toml"
    r = subprocess.run([VIGILCTL, "check", "--import-root", str(services), str(vigil.units)],
                       capture_output=True, text=True, timeout=30)
    assert f"shadowed: both: used {vigil.units}/both.toml, shadowed {services}/lib/systemd/" \
           "system/both.service" in r.stdout, r.stdout
    # vigilctl reload UNIT runs ExecReload, with $MAINPID
    pid = vigil.wait_state("reloader", "running")["pid"]
    assert "reloader: reloading (exec_reload)" in vigil.ctl("reload", "reloader", check=True).stdout
    vigil.wait_for(lambda: (vigil.out / "reloaded").exists(), what="ExecReload")
    assert (vigil.out / "reloaded").read_text().strip() == str(pid)
