"""vigil's LSB hook when there is no vigil to hand a script to: it must change nothing,
also in scripts that run with set -e and set -u (most of Debian's)."""

import subprocess
from pathlib import Path

HOOK = Path(__file__).resolve().parents[2] / "init/lsb/init-functions.d/40-vigil"
SCRIPT = f"""set -eu
log_daemon_msg () {{ :; }}
log_end_msg () {{ return $1; }}
. {HOOK}
echo "ran itself: $1"
"""


def run(tmp_path, env: dict) -> subprocess.CompletedProcess:
    script = tmp_path / "atd"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    return subprocess.run(["/bin/sh", str(script), "start"], capture_output=True, text=True,
                          env=env, timeout=10)


def test_without_vigilctl_on_the_path(tmp_path):
    """`command -v vigilctl` fails: under set -e that must not end the script (it did, with
    status 127). The hook also looks in /sbin and /usr/sbin, where a machine with vigil
    installed has it; then the missing socket below keeps the script to itself."""
    r = run(tmp_path, {"PATH": str(tmp_path)})
    assert (r.returncode, r.stdout, r.stderr) == (0, "ran itself: start\n", "")


def test_without_a_running_vigil(tmp_path):
    r = run(tmp_path, {"PATH": "/usr/bin:/bin", "VIGIL_SOCKET": str(tmp_path / "none")})
    assert (r.returncode, r.stdout, r.stderr) == (0, "ran itself: start\n", "")
