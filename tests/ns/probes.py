"""What the fault tests and the soak read of a running vigil from the host's /proc, and a
raw control client that times vigil's answer (not vigilctl's start-up)."""

import os
import socket
import time

from vigil import client


def memory_kib(pid: int) -> dict[str, int]:
    """smaps_rollup's figures in KiB: Pss (shared pages divided among their sharers, so
    it moves when children come and go), Anonymous (the heap: what a leak grows)..."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                out[name] = int(rest.split()[0])
    return out


def pss_kib(pid: int) -> int:
    return memory_kib(pid)["Pss"]


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (children not included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def thread_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def state_of(pid: int) -> str:
    """The one-letter state of a process (Z for a zombie), "" once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def zombies(pids: list[int]) -> list[int]:
    return [p for p in pids if state_of(p) == "Z"]


def cmdlines(pids: list[int]) -> dict[int, str]:
    out = {}
    for p in pids:
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                out[p] = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            pass
    return out


def timed_request(path: str, verb: str, args: list[str] = (), timeout: float = 30.0):
    """(seconds, reply) of one request over the socket, as vigilctl would send it."""
    t0 = time.monotonic()
    reply = client.request(path, verb, list(args), timeout=timeout)
    return time.monotonic() - t0, reply


def idle_client(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def slope(series: list[tuple[float, float]]) -> float:
    """Least-squares slope of (t, value) points: units of value per second."""
    n = len(series)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in series) / n
    mv = sum(v for _, v in series) / n
    var = sum((t - mt) ** 2 for t, _ in series)
    return sum((t - mt) * (v - mv) for t, v in series) / var if var else 0.0
