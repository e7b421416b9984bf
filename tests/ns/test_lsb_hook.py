"""vigil's LSB hook (init/lsb/init-functions.d/40-vigil): an init.d script that a package's
maintainer script or a person runs, while vigil runs, is done by vigil instead.

The case it is for: `dpkg -i` of a package with an init.d script runs `invoke-rc.d NAME
start`, which runs the script; without the hook the daemon started behind vigil's back,
and vigil's own start of the same unit after `vigilctl reload` then failed. Here vigil is
PID 1 of a namespace importing ROOT; the script is installed while vigil runs and started
by hand from inside the namespace (nsenter), from /etc/init.d, as invoke-rc.d would.
"""

import os
import subprocess
from pathlib import Path

import pytest
from conftest import VIGILCTL, write

pytestmark = pytest.mark.ns

HOOK = Path(__file__).resolve().parents[2] / "init/lsb/init-functions.d/40-vigil"
# What /lib/lsb/init-functions gives a script, and the hook it reads at its end.
SCRIPT = """#!/bin/sh
### BEGIN INIT INFO
# Provides:          daemon
# Required-Start:    $remote_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: a small forking daemon
### END INIT INFO
set -e
PIDFILE={run}/daemon.pid
log_daemon_msg () {{ echo "$1: $2"; }}
log_end_msg () {{ echo "end $1"; return $1; }}
[ -r {hook} ] && . {hook}
case "$1" in
  start) sleep 1000 > /dev/null 2>&1 < /dev/null &
         echo $! > $PIDFILE
         echo "started by the script itself" ;;
  stop)  kill $(cat $PIDFILE) ;;
esac
"""


@pytest.fixture
def root(vigil):
    root = vigil.tmp / "root"
    for d in ("etc/init.d", "etc/rc2.d", "run"):
        (root / d).mkdir(parents=True)
    return root


def inside(vigil, root, command: str) -> subprocess.CompletedProcess:
    """A shell in vigil's namespaces, where ROOT's init.d is /etc/init.d (a bind mount
    that only this mount namespace sees)."""
    setup = f"mountpoint -q /etc/init.d || mount --bind {root}/etc/init.d /etc/init.d"
    return subprocess.run(
        ["nsenter", "-t", str(vigil.host_pid()), "-m", "-p", "--", "/bin/sh", "-c",
         f"{setup} && {command}"],
        capture_output=True, text=True, timeout=30,
        env={"PATH": f"{Path(VIGILCTL).parent}:/usr/sbin:/usr/bin:/sbin:/bin",
             "VIGIL_SOCKET": vigil.sock})


def test_a_script_installed_and_started_by_hand_runs_as_vigils_unit(vigil, root):
    vigil.start("--import-root", str(root))
    assert vigil.ctl("status", "daemon").returncode == 4   # nothing of it yet
    # what dpkg and update-rc.d leave: the script and its rc link
    write(root / "etc/init.d/daemon", SCRIPT.format(run=root / "run", hook=HOOK), 0o755)
    os.symlink("../init.d/daemon", root / "etc/rc2.d/S02daemon")

    started = inside(vigil, root, "/etc/init.d/daemon start")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "started by the script itself" not in started.stdout
    assert "Starting daemon (via vigilctl): daemon" in started.stdout
    daemon = vigil.wait_state("daemon", "running")      # vigil re-read its units first
    assert daemon["origin"] == "init.d"
    assert str(daemon["pid"]) == (root / "run/daemon.pid").read_text().strip()

    status = inside(vigil, root, "/etc/init.d/daemon status")
    assert status.returncode == 0 and "state:" in status.stdout, status.stdout

    stopped = inside(vigil, root, "/etc/init.d/daemon stop")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert vigil.wait_state("daemon", "stopped")["why"]["kind"] == "stopped"
    status = inside(vigil, root, "/etc/init.d/daemon status")
    assert status.returncode == 3, status.stdout   # LSB: not running


def test_a_script_vigil_has_no_unit_for_runs_itself(vigil, root):
    """No LSB header, so no unit even after a reload: the script does its own work."""
    vigil.start("--import-root", str(root))
    text = SCRIPT.format(run=root / "run", hook=HOOK).replace("### BEGIN INIT INFO", "#")
    write(root / "etc/init.d/daemon", text, 0o755)
    started = inside(vigil, root, "/etc/init.d/daemon start")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "started by the script itself" in started.stdout
    assert vigil.ctl("status", "daemon").returncode == 4
    inside(vigil, root, "/etc/init.d/daemon stop")
