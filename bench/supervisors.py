"""Benchmark vigil against busybox init, sysvinit, runit, s6, supervisord and tini, each as
PID 1 of a PID namespace.

Each supervisor runs under `unshare --pid --fork --mount --mount-proc`, is measured from
the host through the host pid of the namespace's PID 1, and is killed with its whole
namespace afterwards. vigil is measured twice: the frozen tree (what a machine runs) and
the venv (python -m vigil.main). busybox init and sysvinit read an /etc/inittab with one
respawn line per service, as PID 1 of a chroot in the namespace, as on a machine. The bare
interpreter and the frozen hello are the memory floors of the two vigils. Prints figures
and each vigil's ratio to each peer; never asserts.
Needs root. Usage: python bench/supervisors.py [--quick] [--only vigil,runit,...]
    [--runs N] [--frozen TREE] [--also TREE] [--json F]

How each row is taken:
- memory: Pss/Uss from /proc/PID/smaps_rollup once PID 1 has used no CPU for 0.6 s;
- start: from launching unshare until N processes named `sleep` exist in the
  namespace (counted through /proc/PID/root/proc, the namespace's own /proc);
- reaping: helpers/orphans.py, entered with nsenter, hands N zombies to PID 1 at once;
  PID 1's children (/proc/PID/task/*/children, zombies included) are polled until
  none of them is left; timed out after 30 s (throughput then covers the part reaped);
- status: the peer's own client run from the host, start-up included, median; each run
  paired with a bare `python3 -I -S -c pass` just before it, and the median of the pairs'
  ratios reported (the bare interpreter is the floor of any Python client);
- wake-ups: voluntary + involuntary context switches of all PID 1's threads.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
ORPHANS = Path(__file__).resolve().parent / "helpers" / "orphans.py"
FROZEN = REPO / "build" / "frozen"
CACHE = Path(os.environ.get("VIGIL_CACHE") or Path.home() / ".cache" / "vigil")
SYSVINIT = CACHE / "bench" / "sysvinit-core" / "sbin" / "init"
SLEEP = ["/bin/sleep", "100000"]


def base_python() -> str:
    """The interpreter vigil runs on, so the bare-python baseline shares its binary."""
    venv_py = VENV_BIN / "python"
    return os.path.realpath(venv_py) if venv_py.exists() else "/usr/bin/python3"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- /proc readers


def read_kv(path: str) -> dict[str, str]:
    out = {}
    with open(path) as f:
        for line in f:
            key, _, val = line.partition(":")
            out[key] = val.strip()
    return out


def memory(pid: int) -> dict[str, int]:
    """Pss, Rss and private (Uss) memory of pid in KiB."""
    kv = read_kv(f"/proc/{pid}/smaps_rollup")

    def kib(key: str) -> int:
        return int(kv.get(key, "0 kB").split()[0])

    return {
        "pss": kib("Pss"),
        "rss": kib("Rss"),
        "uss": kib("Private_Clean") + kib("Private_Dirty"),
    }


def tasks(pid: int) -> list[str]:
    return os.listdir(f"/proc/{pid}/task")


def ctxt_switches(pid: int) -> int:
    """Voluntary + involuntary switches summed over all threads (status shows one)."""
    total = 0
    for tid in tasks(pid):
        kv = read_kv(f"/proc/{pid}/task/{tid}/status")
        total += int(kv["voluntary_ctxt_switches"]) + int(kv["nonvoluntary_ctxt_switches"])
    return total


def children(pid: int) -> list[int]:
    """Children of every thread of pid, zombies included."""
    out: list[int] = []
    for tid in tasks(pid):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(x) for x in f.read().split())
        except FileNotFoundError:
            continue
    return out


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def count_comm(ns_proc: str, comm: str) -> tuple[int, int]:
    """(processes in the namespace, those whose comm is comm), via the namespace's /proc."""
    want = comm.encode()
    total = hits = 0
    for name in os.listdir(ns_proc):
        if not name.isdigit():
            continue
        total += 1
        try:
            with open(f"{ns_proc}/{name}/comm", "rb") as f:
                if f.read().rstrip(b"\n") == want:
                    hits += 1
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total, hits


# ---------------------------------------------------------------- namespaces


def _child_setup() -> None:
    # Die with the benchmark even if it is SIGKILLed; unshare --kill-child then
    # takes the namespace's PID 1, and with it the whole namespace, down too.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    # The same fd limit for every peer: the most this sandbox allows without
    # CAP_SYS_RESOURCE (supervisord's minfds stays below it).
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    os.setsid()


class Namespace:
    """A supervisor as PID 1 of a fresh PID + mount namespace, torn down on exit."""

    def __init__(self, argv: list[str], logfile: Path) -> None:
        self.argv = argv
        self.logfile = logfile
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid = 0  # host pid of the namespace's PID 1
        self.started = 0.0

    def __enter__(self) -> Namespace:
        unshare = shutil.which("unshare") or "unshare"
        with open(self.logfile, "ab") as logf:
            self.started = time.monotonic()
            self.proc = subprocess.Popen(
                [unshare, "--pid", "--fork", "--mount", "--mount-proc", "--kill-child", "--"]
                + self.argv,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=logf,
                preexec_fn=_child_setup,
            )
        try:
            self.pid = self._find_pid1(os.path.realpath(unshare))
        except BaseException:
            self.close()
            raise
        return self

    def _find_pid1(self, unshare_exe: str) -> int:
        assert self.proc is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"PID 1 exited at once: {self.log_tail()}")
            kids = children(self.proc.pid)
            if kids:
                try:
                    # Still unshare until it has exec'ed the supervisor.
                    if os.readlink(f"/proc/{kids[0]}/exe") != unshare_exe:
                        return kids[0]
                except FileNotFoundError:
                    pass
            time.sleep(0.002)
        raise RuntimeError("PID 1 of the namespace did not appear")

    @property
    def ns_proc(self) -> str:
        """The namespace's own /proc (mounted by --mount-proc), seen from the host."""
        return f"/proc/{self.pid}/root/proc"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check(self) -> None:
        if not self.alive():
            raise RuntimeError(f"PID 1 died: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            lines = self.logfile.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-3:]) or "(empty log)"

    def settle(self, quiet: float = 0.6, least: float = 1.0, most: float = 20.0) -> None:
        """Wait until PID 1 has used no CPU for `quiet` seconds (start-up is over)."""
        t0 = time.monotonic()
        last, since = cpu_ticks(self.pid), time.monotonic()
        while time.monotonic() - t0 < most:
            time.sleep(0.1)
            self.check()
            now = cpu_ticks(self.pid)
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet and time.monotonic() - t0 >= least:
                return

    def wait_running(self, n: int, min_procs: int, timeout: float) -> float:
        """Seconds from launch until n `sleep` processes run in the namespace."""
        deadline = time.monotonic() + timeout
        while True:
            self.check()
            now = time.monotonic()
            # Listing alone is cheap; read every comm only once enough processes exist,
            # so the scan steals little CPU from the supervisor being measured.
            if sum(1 for _ in os.scandir(self.ns_proc)) >= min_procs:
                _, running = count_comm(self.ns_proc, "sleep")
                if running >= n:
                    # Taken after the scan: all n ran no later than this.
                    return time.monotonic() - self.started
            if now > deadline:
                _, running = count_comm(self.ns_proc, "sleep")
                raise TimeoutError(f"only {running}/{n} running after {timeout:.0f} s")
            time.sleep(0.01)

    def close(self) -> None:
        if self.proc is None:
            return
        # Killing PID 1 makes the kernel kill everything else in the namespace.
        for pid in (self.pid, self.proc.pid):
            if pid and self.proc.poll() is None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    continue
        self.proc = None

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- peers


def svc_name(i: int) -> str:
    return f"svc{i:04d}"


def write_run_dirs(root: Path, n: int) -> None:
    """runit and s6 service directories: an executable ./run per service."""
    root.mkdir(parents=True, exist_ok=True)
    script = "#!/bin/sh\nexec " + " ".join(SLEEP) + "\n"
    for i in range(n):
        d = root / svc_name(i)
        d.mkdir()
        run = d / "run"
        run.write_text(script)
        run.chmod(0o755)


class Peer:
    """One column of the table: how to launch it with n services and query it."""

    name = ""
    binaries: tuple[str, ...] = ()
    services = True  # supervises many services (rows 2, 4, 5 and Pss with 100)
    reaps = True  # adopts orphans as PID 1 (row 3)
    per_service = 1  # processes per service, the service included (gate for scans)
    floor = False  # an interpreter doing nothing: its Pss is the reference for both rows

    def missing(self) -> str | None:
        for b in self.binaries:
            if not shutil.which(b) and not os.access(b, os.X_OK):
                return f"{b} not installed"
        return None

    def command(self, d: Path, n: int) -> list[str]:
        raise NotImplementedError

    def status(self, d: Path, svc: str) -> list[str] | None:
        return None

    def ready(self, d: Path) -> bool:
        return True

    def running(self, d: Path) -> int | None:
        """Services the supervisor itself reports running, where that is cheap to ask."""
        return None


class Vigil(Peer):
    """vigil from the venv (python -m vigil.main through its script) or the frozen tree."""

    def __init__(self, name: str, vigil: Path, vigilctl: Path) -> None:
        self.name = name
        self.vigil, self.vigilctl = vigil, vigilctl
        self.binaries = (str(vigil),)

    def missing(self) -> str | None:
        if not (REPO / "init" / "vigil" / "main.py").exists():
            return "init/vigil/main.py not written yet"
        if reason := super().missing():
            return reason
        r = subprocess.run([str(self.vigil), "--help"], capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            err = (r.stderr or r.stdout).strip().splitlines()
            return "vigil --help failed: " + (err[-1] if err else f"exit {r.returncode}")
        return None

    def client(self, d: Path) -> str:
        """The client as a user runs it: a program named vigilctl."""
        if self.vigilctl.name == "vigilctl":
            return str(self.vigilctl)
        link = d / "vigilctl"  # the one frozen program answers to that name as the client
        if not link.exists():
            link.symlink_to(self.vigilctl)
        return str(link)

    def command(self, d: Path, n: int) -> list[str]:
        units = d / "units"
        units.mkdir()
        (d / "logs").mkdir()
        exec_ = ", ".join(json.dumps(a) for a in SLEEP)
        for i in range(n):
            (units / f"{svc_name(i)}.toml").write_text(
                f'[service]\nexec = [{exec_}]\nrestart = "always"\nlog = "null"\n'
            )
        return [
            str(self.vigil),
            "--units", str(units),
            "--log-dir", str(d / "logs"),
            "--control", str(d / "vigil.sock"),
        ]  # fmt: skip

    def status(self, d: Path, svc: str) -> list[str]:
        return [self.client(d), "--socket", str(d / "vigil.sock"), "status", svc]

    def ready(self, d: Path) -> bool:
        return (d / "vigil.sock").exists()

    def running(self, d: Path) -> int | None:
        argv = [self.client(d), "--socket", str(d / "vigil.sock"), "--json", "list"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
        return sum(1 for s in json.loads(out.stdout) if s.get("state") == "running")


def frozen_vigil(tree: Path, label: str = "vigil frozen") -> Vigil:
    """The frozen tree's init, and its client: its own program if the tree has one."""
    client = tree / "vigilctl"
    return Vigil(label, tree / "vigil", client if client.exists() else tree / "vigil")


class ChrootInit(Peer):
    """A classic init reading /etc/inittab, one respawn line per service, as PID 1 of a
    chroot inside the namespace: its own /etc, /proc, /run, /dev/console (/dev/null, so
    nothing reaches the host's console), and the host's /usr bound read-only-in-spirit."""

    init = ""

    def missing(self) -> str | None:
        if not os.access(self.init, os.X_OK):
            return f"{self.init} not there"
        return None if shutil.which("chroot") else "chroot not installed"

    def inittab(self, n: int) -> str:
        raise NotImplementedError

    def command(self, d: Path, n: int) -> list[str]:
        root = d / "root"
        for sub in ("usr", "sbin", "etc", "proc", "dev", "run", "tmp", "var/log"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        binds = ["/usr"]
        for top in ("bin", "lib", "lib32", "lib64", "libx32"):
            host = Path("/" + top)
            if host.is_symlink():
                (root / top).symlink_to(os.readlink(host))
            elif host.is_dir():
                (root / top).mkdir()
                binds.append(str(host))
        (root / "var" / "run").symlink_to("../run")
        for dev in ("null", "console"):
            (root / "dev" / dev).touch()
        shutil.copy2(self.init, root / "sbin" / "init")
        (root / "etc" / "inittab").write_text(self.inittab(n))
        steps = [f"mount --bind {b} {root}{b}" for b in binds]
        steps += [f"mount --bind /dev/null {root}/dev/{dev}" for dev in ("null", "console")]
        steps += [f"mount -t proc proc {root}/proc",
                  f"exec {shutil.which('chroot')} {root} /sbin/init"]
        # The shell is PID 1 until it execs chroot, which execs the init: one pid throughout.
        return ["/bin/sh", "-ec", "\n".join(steps)]


class BusyboxInit(ChrootInit):
    name = "busybox init"
    init = "/bin/busybox"  # busybox-static; run as /sbin/init it is busybox's init applet

    def inittab(self, n: int) -> str:
        # An empty id: the process runs on the console, as busybox init does by default.
        # busybox init keeps one of identical lines (same command, same terminal), so
        # each service sleeps a second longer than the one before.
        return "".join(f"::respawn:{SLEEP[0]} {int(SLEEP[1]) + i}\n" for i in range(n))


class SysVInit(ChrootInit):
    name = "sysvinit"

    def __init__(self, init: str) -> None:
        self.init = init

    def inittab(self, n: int) -> str:
        lines = ["dflt:2:initdefault:\n"]  # else init asks on the console for a run level
        lines += [f"{i:04x}:2345:respawn:{' '.join(SLEEP)}\n" for i in range(n)]
        return "".join(lines)


class Runit(Peer):
    name = "runit"
    binaries = ("runsvdir", "sv")
    per_service = 2  # runsv + the service

    def command(self, d: Path, n: int) -> list[str]:
        write_run_dirs(d / "service", n)
        return [shutil.which("runsvdir") or "runsvdir", str(d / "service")]

    def status(self, d: Path, svc: str) -> list[str]:
        return ["sv", "status", str(d / "service" / svc)]


class S6(Peer):
    name = "s6"
    binaries = ("s6-svscan", "s6-svstat")
    per_service = 2  # s6-supervise + the service

    def command(self, d: Path, n: int) -> list[str]:
        write_run_dirs(d / "scan", n)
        # -c: room for n services (the default cap is 1000, loggers included).
        cap = str(max(1000, 2 * n + 16))
        return [shutil.which("s6-svscan") or "s6-svscan", "-c", cap, str(d / "scan")]

    def status(self, d: Path, svc: str) -> list[str]:
        return ["s6-svstat", str(d / "scan" / svc)]


class Supervisord(Peer):
    name = "supervisord"
    binaries = ("supervisord", "supervisorctl")
    per_service = 1

    def command(self, d: Path, n: int) -> list[str]:
        sock = d / "supervisor.sock"
        lines = [
            "[supervisord]",
            "nodaemon=true",
            "user=root",
            f"logfile={d / 'supervisord.log'}",
            f"pidfile={d / 'supervisord.pid'}",
            f"childlogdir={d}",
            # warn: otherwise it logs a line per reaped orphan.
            "loglevel=warn",
            # Room for 3 pipes per process; it raises RLIMIT_NOFILE to this.
            f"minfds={max(1024, 4 * n + 64)}",
            "",
            "[unix_http_server]",
            f"file={sock}",
            "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "",
            "[supervisorctl]",
            f"serverurl=unix://{sock}",
            "",
        ]
        for i in range(n):
            lines += [
                f"[program:{svc_name(i)}]",
                "command=" + " ".join(SLEEP),
                "autorestart=true",
                "stdout_logfile=NONE",
                "stderr_logfile=NONE",
                "",
            ]
        conf = d / "supervisord.conf"
        conf.write_text("\n".join(lines))
        return [shutil.which("supervisord") or "supervisord", "-n", "-c", str(conf)]

    def status(self, d: Path, svc: str) -> list[str]:
        return ["supervisorctl", "-c", str(d / "supervisord.conf"), "status", svc]

    def ready(self, d: Path) -> bool:
        return (d / "supervisor.sock").exists()


class Tini(Peer):
    name = "tini"
    binaries = ("tini",)
    services = False  # one child only

    def command(self, d: Path, n: int) -> list[str]:
        return [shutil.which("tini") or "tini", "--", *SLEEP]


class BarePython(Peer):
    name = "python3 -I -S"
    services = False
    reaps = False  # a sleeping interpreter never calls wait()
    floor = True

    def command(self, d: Path, n: int) -> list[str]:
        return [base_python(), "-I", "-S", "-c", "import time\nwhile True: time.sleep(3600)"]


class FrozenHello(Peer):
    """build/frozen/hello: the frozen interpreter doing nothing, the frozen vigil's floor."""

    name = "frozen hello"
    services = False
    reaps = False
    floor = True

    def __init__(self, tree: Path) -> None:
        self.binaries = (str(tree / "hello"),)

    def command(self, d: Path, n: int) -> list[str]:
        return [self.binaries[0], "100000"]


def make_peers(args: argparse.Namespace) -> list[Peer]:
    peers: list[Peer] = [frozen_vigil(args.frozen)]
    peers += [frozen_vigil(t, f"vigil frozen {t.parent.name}/{t.name}") for t in args.also]
    peers += [Vigil("vigil venv", VENV_BIN / "vigil", VENV_BIN / "vigilctl"),
              BusyboxInit(), SysVInit(str(args.sysvinit)), Runit(), S6(), Supervisord(),
              Tini(), BarePython(), FrozenHello(args.hello)]
    return peers


# ---------------------------------------------------------------- measurements


def wait_ready(peer: Peer, d: Path, ns: Namespace, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not peer.ready(d):
        ns.check()
        if time.monotonic() > deadline:
            raise TimeoutError("control socket never appeared")
        time.sleep(0.02)


def reap_orphans(ns: Namespace, count: int, timeout: float) -> dict[str, Any]:
    """Hand `count` zombies to PID 1 at once; time until it has reaped them all."""
    baseline = len(children(ns.pid))
    helper = subprocess.Popen(
        ["nsenter", "--target", str(ns.pid), "--pid", "--mount", "--",
         base_python(), "-I", "-S", str(ORPHANS), str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert helper.stdin is not None and helper.stdout is not None
    try:
        # Forking 20,000 children takes a while on a small machine.
        if not select.select([helper.stdout], [], [], 300)[0]:
            raise TimeoutError("orphan helper never got ready")
        line = helper.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"orphan helper: {line or 'died'}")
        peak = 0
        helper.stdin.write("go\n")
        helper.stdin.flush()
        deadline = time.monotonic() + timeout
        left = count
        while True:
            # Checked before counting: once the helper is gone every zombie is PID 1's.
            gone = helper.poll() is not None
            left = len(children(ns.pid)) - baseline
            end = time.monotonic()
            peak = max(peak, left)
            if gone and left <= 0:
                break
            if end > deadline:
                break
            time.sleep(0.005)
        helper.wait(timeout=30)
        start = float(helper.stdout.readline())
    finally:
        if helper.poll() is None:
            helper.kill()
            helper.wait()
    elapsed = end - start
    reaped = count - max(left, 0)
    return {
        "seconds": elapsed,
        "left": max(left, 0),
        "per_second": reaped / elapsed if elapsed > 0 else float("inf"),
        "peak_zombies": peak,
    }


BARE = ["-I", "-S", "-c", "pass"]


def status_latency(argv: list[str], queries: int) -> dict[str, Any]:
    """Median wall time of one status query, client start-up included, each query paired
    with a bare `python3 -I -S -c pass` started the same way just before it, so that the
    ratio of each pair holds while the shared machine's speed drifts."""
    bare = [base_python(), *BARE]
    first = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if first.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:2])} exit {first.returncode}: {first.stdout}")
    subprocess.run(bare, capture_output=True, timeout=60, check=True)  # warm the caches
    times, bares = [], []
    for _ in range(queries):
        for cmd, out in ((bare, bares), (argv, times)):
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, timeout=60, check=True)
            out.append(time.perf_counter() - t0)
    return {
        "ms": statistics.median(times) * 1000,
        "bare_ms": statistics.median(bares) * 1000,
        "vs_bare": statistics.median(t / b for t, b in zip(times, bares, strict=True)),
        "sample": first.stdout.strip()[:120],
    }


def pss_by_mapping(pid: int) -> dict[str, int]:
    """PID 1's Pss in KiB by what is mapped: the program, libpython, other libraries,
    the heap and anonymous memory (where Python's objects live), the stack."""
    out: dict[str, int] = {}
    name = ""
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split(maxsplit=1)[0]
            if "-" in first and not first.endswith(":"):  # a mapping's header line
                parts = line.split(maxsplit=5)
                path = parts[5].strip() if len(parts) > 5 else ""
                base = os.path.basename(path)
                if not path:
                    name = "anonymous"
                elif path.startswith("["):
                    name = path
                elif base.startswith("libpython"):
                    name = "libpython"
                elif ".so" in base:
                    name = "other libraries"
                else:
                    name = "program and files"
            elif first == "Pss:":
                out[name] = out.get(name, 0) + int(line.split()[1])
    return out


class Config:
    def __init__(self, quick: bool, runs: int | None) -> None:
        self.quick = quick
        self.small = 100  # services for memory, status and idle rows
        self.big = 200 if quick else 1000
        self.orphans = 2000 if quick else 20000
        self.reap_timeout = 10.0 if quick else 30.0
        self.queries = 7 if quick else 20
        self.idle = 3.0 if quick else 10.0
        self.runs = runs or (1 if quick else 3)  # rounds of the start row, peers in turn


class Attempts:
    """A failing row becomes an error cell and a note; the other rows go on."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def run(self, peer: Peer, res: dict[str, Any], label: str, keys: list[str],
            fn: Any) -> None:
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - one peer's failure must not stop the run
            msg = f"{type(e).__name__}: {e}"
            for k in keys:
                res.setdefault(k, {"error": msg})
            self.notes.append(f"{peer.name}, {label}: {msg}")
            log(f"  {peer.name} {label} failed: {msg}")


def slug(peer: Peer) -> str:
    return "".join(c if c.isalnum() else "-" for c in peer.name)


def run_small(peer: Peer, cfg: Config, work: Path, res: dict[str, Any],
              attempts: Attempts) -> None:
    """The rows with 0 and 100 services for one peer."""

    def idle_ns() -> None:
        d = work / f"{slug(peer)}-0"
        d.mkdir()
        with Namespace(peer.command(d, 0), d / "pid1.log") as ns:
            wait_ready(peer, d, ns)
            ns.settle()
            res["pss0"] = memory(ns.pid)
            if peer.floor:
                res["pss_map"] = pss_by_mapping(ns.pid)
            log(f"  {peer.name}: Pss with 0 services {res['pss0']['pss']} KiB")
            if peer.reaps:
                res["reap"] = reap_orphans(ns, cfg.orphans, cfg.reap_timeout)
                log(f"  {peer.name}: reaping {res['reap']}")

    def small_ns() -> None:
        d = work / f"{slug(peer)}-{cfg.small}"
        d.mkdir()
        n = cfg.small
        with Namespace(peer.command(d, n), d / "pid1.log") as ns:
            ns.wait_running(n, n * peer.per_service + 1, 120)
            wait_ready(peer, d, ns)
            ns.settle()
            res["pss100"] = memory(ns.pid)
            res["pss_map"] = pss_by_mapping(ns.pid)
            log(f"  {peer.name}: Pss with {n} services {res['pss100']['pss']} KiB")
            before = ctxt_switches(ns.pid)
            time.sleep(cfg.idle)
            res["wakeups"] = ctxt_switches(ns.pid) - before
            ns.check()
            log(f"  {peer.name}: {res['wakeups']} wake-ups in {cfg.idle:.0f} s")
            argv = peer.status(d, svc_name(n // 2))
            if argv:
                res["status"] = status_latency(argv, cfg.queries)
                log(f"  {peer.name}: status {res['status']['ms']:.1f} ms, "
                    f"{res['status']['vs_bare']:.2f}x bare python")

    attempts.run(peer, res, "0 services", ["pss0", "reap"] if peer.reaps else ["pss0"],
                 idle_ns)
    if peer.services:
        attempts.run(peer, res, f"{cfg.small} services", ["pss100", "wakeups", "status"],
                     small_ns)


def run_big(peer: Peer, cfg: Config, work: Path, round_: int, res: dict[str, Any],
            attempts: Attempts) -> None:
    """One round of the start row: n services from launch until all n run."""

    def big_ns() -> None:
        d = work / f"{slug(peer)}-{cfg.big}-{round_}"
        d.mkdir()
        n = cfg.big
        with Namespace(peer.command(d, n), d / "pid1.log") as ns:
            took = ns.wait_running(n, n * peer.per_service + 1, 120)
            res.setdefault("start_runs", []).append(took)
            res["start"] = statistics.median(res["start_runs"])
            log(f"  {peer.name}: {n} services running after {took:.2f} s")
            # The supervisor's own view should agree with the process count.
            seen = peer.running(d)
            if seen is not None and seen < n:
                attempts.notes.append(
                    f"{peer.name}: only {seen}/{n} reported running by its own client")
        shutil.rmtree(d, ignore_errors=True)

    attempts.run(peer, res, f"{cfg.big} services", ["start"], big_ns)


# ---------------------------------------------------------------- report


def cell(v: Any, fmt: str) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    return format(v, fmt)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller counts, shorter idle")
    ap.add_argument("--only", help="comma-separated columns, e.g. vigil,runit")
    ap.add_argument("--runs", type=int, help="rounds of the start row (default 3, quick 1)")
    ap.add_argument("--frozen", type=Path, default=FROZEN / "vigil",
                    help="the frozen vigil tree (default build/frozen/vigil)")
    ap.add_argument("--also", type=Path, action="append", default=[],
                    help="another frozen vigil tree, as one more column (before/after)")
    ap.add_argument("--hello", type=Path, default=FROZEN / "hello",
                    help="the frozen hello tree (default build/frozen/hello)")
    ap.add_argument("--sysvinit", type=Path, default=SYSVINIT,
                    help="sysvinit's init, unpacked from sysvinit-core (see bench.mk)")
    ap.add_argument("--json", type=Path, help="also write the raw figures here")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("supervisors.py: needs root (unshare --pid, nsenter)", file=sys.stderr)
        return 2
    cfg = Config(args.quick, args.runs)
    peers = make_peers(args)
    # The venv's bytecode ready, as after any first run (PYTHONDONTWRITEBYTECODE may be set
    # here): a venv vigilctl that compiles its modules at each run is not what users run.
    subprocess.run([str(VENV_BIN / "python"), "-m", "compileall", "-q",
                    str(REPO / "init" / "vigil")], check=False)
    if args.only:
        wanted = {w.strip() for w in args.only.split(",")}
        peers = [p for p in peers if p.name in wanted or p.name.split()[0] in wanted]

    # SIGTERM/SIGHUP unwind through the finally blocks so every namespace goes.
    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)

    results: dict[str, dict[str, Any]] = {}
    unavailable: dict[str, str] = {}
    attempts = Attempts()
    durations: dict[str, float] = {}
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-"))
    t_all = time.monotonic()
    try:
        for peer in peers:
            reason = peer.missing()
            if reason:
                unavailable[peer.name] = reason
                log(f"{peer.name}: not available ({reason})")
                continue
            log(f"{peer.name}: start")
            t0 = time.monotonic()
            results[peer.name] = {}
            run_small(peer, cfg, work, results[peer.name], attempts)
            durations[peer.name] = time.monotonic() - t0
        # The start row in rounds, every peer once per round, so that a slow spell of
        # the shared machine hits them all alike; the median is reported.
        for r in range(cfg.runs):
            log(f"start row, round {r + 1} of {cfg.runs}")
            for peer in peers:
                if peer.name in results and peer.services:
                    t0 = time.monotonic()
                    run_big(peer, cfg, work, r, results[peer.name], attempts)
                    durations[peer.name] += time.monotonic() - t0
    except KeyboardInterrupt as e:
        # Namespaces are already gone (each Namespace closes on unwind).
        log(f"interrupted ({e}); partial results follow")
        attempts.notes.append(f"interrupted: {e}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(cfg, peers, results, unavailable, attempts.notes, durations,
           time.monotonic() - t_all)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "quick": cfg.quick,
                    "results": results,
                    "unavailable": unavailable,
                    "durations": durations,
                },
                indent=2,
            )
        )
    return 0


def row_value(res: dict[str, Any], key: str) -> Any:
    """A row's figure for one peer: a number, an error string, or None (n/a)."""
    top, _, sub = key.partition(".")
    v = res.get(top)
    if v is None:
        return None
    if isinstance(v, dict) and "error" in v:
        return "error"
    if sub:
        if top == "reap" and sub == "seconds" and v.get("left"):
            return f">{v['seconds']:.1f} ({v['left']} left)"
        return v.get(sub)
    return v


def rows(cfg: Config) -> list[tuple[str, str, str]]:
    return [
        ("PID 1 Pss, 0 services (KiB)", "pss0.pss", ".0f"),
        ("PID 1 Uss, 0 services (KiB)", "pss0.uss", ".0f"),
        (f"PID 1 Pss, {cfg.small} services (KiB)", "pss100.pss", ".0f"),
        (f"PID 1 Uss, {cfg.small} services (KiB)", "pss100.uss", ".0f"),
        (f"{cfg.big} sleep services running (s)", "start", ".3f"),
        (f"reap {cfg.orphans} orphans (s)", "reap.seconds", ".3f"),
        ("reap throughput (orphans/s)", "reap.per_second", ".0f"),
        ("peak zombies seen", "reap.peak_zombies", "d"),
        (f"status query, median of {cfg.queries} (ms)", "status.ms", ".1f"),
        ("  python3 -I -S -c pass, paired (ms)", "status.bare_ms", ".1f"),
        ("  status / that, median of pairs", "status.vs_bare", ".2f"),
        (f"PID 1 wake-ups, {cfg.idle:.0f} s idle, {cfg.small} svc", "wakeups", "d"),
    ]


def report(
    cfg: Config,
    peers: list[Peer],
    results: dict[str, dict[str, Any]],
    unavailable: dict[str, str],
    notes: list[str],
    durations: dict[str, float],
    total: float,
) -> None:
    names = [p.name for p in peers]
    floors = {p.name for p in peers if p.floor}
    vigils = [p.name for p in peers if isinstance(p, Vigil) and p.name in results]

    def value(name: str, key: str) -> Any:
        if name in unavailable:
            return None
        v = row_value(results.get(name, {}), key)
        # An interpreter that runs no services: its one figure is the reference for
        # both memory rows.
        if v is None and name in floors and key.startswith("pss100"):
            v = row_value(results.get(name, {}), "pss0" + key[len("pss100") :])
        return v

    table = [["", *names]]
    for label, key, fmt in rows(cfg):
        line = [label]
        for name in names:
            if name in unavailable:
                line.append("not available")
            else:
                line.append(cell(value(name, key), fmt))
        table.append(line)
    runs = {n: r.get("start_runs") for n, r in results.items() if r.get("start_runs")}
    print()
    print(f"Supervisors as PID 1 of a PID namespace{' (--quick)' if cfg.quick else ''}; "
          f"start row: median of {cfg.runs} round(s), peers in turn")
    print_table(table)
    if runs:
        print("start row, each round (s): " + "; ".join(
            f"{n} {' '.join(f'{x:.2f}' for x in xs)}" for n, xs in runs.items()))

    for mine in vigils:
        print()
        print(f"{mine} ÷ peer (below 1 is better for vigil, except throughput: above 1)")
        others = [n for n in names if n != mine]
        ratios = [["", *others]]
        for label, key, _ in rows(cfg):
            if key in ("reap.peak_zombies", "status.bare_ms", "status.vs_bare"):
                continue
            line = [label]
            for name in others:
                theirs = value(name, key)
                reap = results.get(name, {}).get("reap")
                if key == "reap.seconds" and isinstance(reap, dict) and reap.get("left"):
                    # The peer timed out: its time is only a lower bound.
                    r = ratio(value(mine, key), reap["seconds"])
                    line.append("<" + r if r.endswith("x") else r)
                else:
                    line.append(ratio(value(mine, key), theirs))
            ratios.append(line)
        print_table(ratios)
    maps = {n: results[n]["pss_map"] for n in names if "pss_map" in results.get(n, {})
            and (n in vigils or n in floors)}
    if maps:
        print()
        print(f"PID 1 Pss by mapping (KiB; vigil with {cfg.small} services)")
        kinds = sorted({k for m in maps.values() for k in m},
                       key=lambda k: -max(m.get(k, 0) for m in maps.values()))
        mtable = [["", *maps]]
        for k in kinds:
            mtable.append([k, *(str(m.get(k, 0)) for m in maps.values())])
        mtable.append(["total", *(str(sum(m.values())) for m in maps.values())])
        print_table(mtable)
    print()
    print("Aims (reported, not enforced):")
    for line in aims(cfg, peers, results):
        print("  " + line)
    samples = {
        n: r["status"]["sample"] for n, r in results.items() if "sample" in r.get("status", {})
    }
    if samples:
        print()
        print("Status query output:")
        for name, text in samples.items():
            print(f"  {name}: {' | '.join(text.splitlines()) or '(empty)'}")
    for name, reason in unavailable.items():
        print(f"{name}: not available ({reason})")
    if notes:
        print()
        print("Errors:")
        for n in notes:
            print("  " + n)
    print()
    print(
        "Run time: "
        + ", ".join(f"{n} {s:.0f} s" for n, s in durations.items())
        + f"; total {total:.0f} s"
    )


def ratio(a: Any, b: Any) -> str:
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return "n/a"
    if b == 0:
        return "both 0" if a == 0 else "inf"
    return f"{a / b:.3g}x"


def aims(cfg: Config, peers: list[Peer], results: dict[str, dict[str, Any]]) -> list[str]:
    def num(name: str, key: str) -> float | None:
        x = row_value(results.get(name) or {}, key)
        return x if isinstance(x, (int, float)) else None

    def line(what: str, mine: float | None, target: float | None, ok: bool) -> str:
        if mine is None or target is None:
            return f"{what}: not measured"
        return f"{what}: {'met' if ok else 'missed'} ({mine:.4g} vs {target:.4g})"

    out = []
    floor_of = {"vigil venv": "python3 -I -S"}
    for peer in peers:
        if not isinstance(peer, Vigil) or peer.name not in results:
            continue
        v = peer.name
        w = num(v, "wakeups")
        out.append(line(f"{v}: 0 idle wake-ups", w, 0, w == 0))
        mine = num(v, "start")
        for other in ("busybox init", "s6", "runit"):
            theirs = num(other, "start")
            out.append(line(f"{v}: {cfg.big} services no later than {other} (s)", mine,
                            theirs, mine is not None and theirs is not None
                            and mine <= theirs))
        mine, tini = num(v, "reap.per_second"), num("tini", "reap.per_second")
        half = None if tini is None else tini / 2
        out.append(line(f"{v}: reaping >= half of tini's throughput (orphans/s)", mine, half,
                        mine is not None and half is not None and mine >= half))
        mine = num(v, "status.vs_bare")
        out.append(line(f"{v}: status <= 3x bare python3 -I -S -c pass (ratio)", mine, 3.0,
                        mine is not None and mine <= 3))
        mine, sup = num(v, "status.ms"), num("supervisord", "status.ms")
        fiftieth = None if sup is None else sup / 50
        out.append(line(f"{v}: status >= 50x faster than supervisorctl (ms)", mine,
                        fiftieth, mine is not None and fiftieth is not None
                        and mine <= fiftieth))
        floor = floor_of.get(v, "frozen hello")
        mine, bare = num(v, "pss100.pss"), num(floor, "pss0.pss")
        cap = None if bare is None else bare * 1.5
        out.append(line(f"{v}: Pss with {cfg.small} services <= 1.5x {floor} (KiB)", mine,
                        cap, mine is not None and cap is not None and mine <= cap))
    return out or ["vigil not measured"]


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for j, r in enumerate(rows):
        print(
            "  ".join(
                c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)
            ).rstrip()
        )
        if j == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    sys.exit(main())
