"""vigil as PID 1 of a fresh PID and mount namespace, driven through vigilctl as a user would.

Each test gets its own namespace (`unshare --pid --fork --mount --mount-proc`), its own unit
directory, log directory and control socket under a temporary directory.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
VIGILCTL = str(BIN / "vigilctl")


def _can_unshare() -> str:
    if os.geteuid() != 0:
        return "needs root to create a PID namespace"
    if not shutil.which("unshare"):
        return "unshare (util-linux) is not installed"
    r = subprocess.run(["unshare", "--pid", "--fork", "--mount", "--mount-proc", "true"],
                       capture_output=True)
    return "" if r.returncode == 0 else f"unshare failed: {r.stderr.decode().strip()}"


SKIP = _can_unshare()
# rt_sigaction(2) of 32 and 33 to SIG_IGN (Python's signal module refuses them), then exec.
IGNORE_32_33 = """import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
ignore = (1).to_bytes(8, "little") + bytes(24)
for sig in (32, 33):
    assert libc.syscall(13, sig, ignore, None, 8) == 0, ctypes.get_errno()
os.execvp(sys.argv[1], sys.argv[1:])
"""


def write(path: Path, text: str, mode: int = 0o644) -> None:
    """A file of a test's import root, with its directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


class Vigil:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.units = tmp / "units"
        self.logs = tmp / "logs"
        self.out = tmp / "out"
        # outside pytest's private tmp, so that a non-root vigilctl can reach it
        self.sock = os.path.join(tempfile.mkdtemp(prefix="vigil-ns-"), "control")
        os.chmod(os.path.dirname(self.sock), 0o755)
        for d in (self.units, self.out):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o755)
        self.proc: subprocess.Popen | None = None
        self.console = tmp / "console.log"

    def unit(self, name: str, text: str) -> None:
        (self.units / f"{name}.toml").write_text(text.replace("$OUT", str(self.out)))

    def start(self, *extra: str) -> "Vigil":
        # vigil starts with glibc's signals 32 and 33 ignored, as some parents leave them
        # (CI's did): services must still get every signal at its default.
        cmd = [sys.executable, "-c", IGNORE_32_33, "unshare", "--pid", "--fork", "--mount",
               "--mount-proc", "--kill-child",
               sys.executable, "-m", "vigil.main", "--units", str(self.units),
               "--log-dir", str(self.logs), "--control", self.sock, *extra]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=open(self.console, "wb"), stderr=subprocess.STDOUT)
        self.wait_for(lambda: os.path.exists(self.sock), what="the control socket")
        return self

    def ctl(self, *args: str, user: int | None = None, timeout: float = 20,
            check: bool = False) -> subprocess.CompletedProcess:
        r = subprocess.run([VIGILCTL, "--socket", self.sock, *args], capture_output=True,
                           text=True, timeout=timeout, user=user)
        if check:
            assert r.returncode == 0, f"vigilctl {' '.join(args)}: {r.stdout}{r.stderr}"
        return r

    def status(self, name: str) -> dict:
        r = self.ctl("--json", "status", name)
        assert r.returncode in (0, 3), r.stderr
        return json.loads(r.stdout)[0]

    def state(self, name: str) -> str:
        return self.status(name)["state"]

    def wait_for(self, predicate, timeout: float = 15, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"vigil exited ({self.proc.returncode}) while waiting "
                                     f"for {what}:\n{self.console.read_text()}")
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}\nconsole:\n"
                             f"{self.console.read_text()[-3000:]}")

    def wait_state(self, name: str, state: str, timeout: float = 15) -> dict:
        return self.wait_for(lambda: (s := self.status(name))["state"] == state and s,
                             timeout, f"{name} to be {state}")

    def host_pid(self) -> int:
        """The host pid of vigil (the unshare process's only child)."""
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
            return int(f.read().split()[0])

    def descendants(self) -> list[int]:
        """Host pids of every process in the namespace, vigil included."""
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        stat = f.read()
                except OSError:
                    continue
                ppid = int(stat[stat.rfind(")") + 2:].split()[1])
                children.setdefault(ppid, []).append(int(entry))
        out, todo = [], [self.host_pid()]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(children.get(pid, []))
        return out

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGKILL)  # --kill-child takes the namespace down
        self.proc.wait(10)
        shutil.rmtree(os.path.dirname(self.sock), ignore_errors=True)


@pytest.fixture
def vigil(tmp_path):
    if SKIP:
        pytest.skip(SKIP)
    v = Vigil(tmp_path)
    yield v
    v.stop()
