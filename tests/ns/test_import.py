"""A machine's own units imported at boot: vigil --units EMPTY --import-root ROOT, where ROOT
holds a systemd unit enabled by a wants link, an init.d script with an LSB header and a
pidfile (a forking daemon), and a masked unit that is linked to start too."""

import os
import subprocess

import pytest

from conftest import VIGILCTL

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


def write(path, text, mode=0o644):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


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


def test_without_import_root_explicit_units_import_nothing(vigil, root):
    vigil.unit("own", '[service]\nexec = ["/bin/sleep", "1000"]\n')
    vigil.start()
    vigil.wait_state("own", "running")
    r = vigil.ctl("--json", "status", "hello")
    assert r.returncode == 4, r.stdout + r.stderr
