"""utmp and wtmp records (glibc's struct utmp on x86-64), and wall.

vigil writes the boot, run-level and shutdown records that `who -b`, `runlevel` and
`last -x` read, and finds logged-in users' terminals in utmp to warn them, as wall does.
"""

import os
import struct
import time

UTMP = "/run/utmp"
WTMP = "/var/log/wtmp"
# type, pid, line, id, user, host, exit (2 shorts), session, tv_sec, tv_usec, addr[4], unused
RECORD = struct.Struct("hi32s4s32s256shhiii4i20s")
RUN_LVL, BOOT_TIME, USER_PROCESS, DEAD_PROCESS = 1, 2, 7, 8


def record(kind: int, user: str, pid: int = 0, line: str = "~", ident: str = "~~",
           now: float | None = None) -> bytes:
    now = time.time() if now is None else now
    host = os.uname().release
    return RECORD.pack(kind, pid, line.encode(), ident.encode(), user.encode(), host.encode(),
                       0, 0, 0, int(now), int((now % 1) * 1e6), 0, 0, 0, 0, b"")


def runlevel_record(new: str, old: str) -> bytes:
    """A run-level change: the pid field carries the new and previous levels."""
    return record(RUN_LVL, "runlevel", pid=ord(new) + 256 * ord(old))


def parse(data: bytes) -> list[dict]:
    out = []
    for off in range(0, len(data) - RECORD.size + 1, RECORD.size):
        f = RECORD.unpack_from(data, off)
        out.append({"type": f[0], "pid": f[1], "line": f[2].rstrip(b"\0").decode(errors="replace"),
                    "user": f[4].rstrip(b"\0").decode(errors="replace"), "time": f[9]})
    return out


def read(path: str = UTMP) -> list[dict]:
    try:
        with open(path, "rb") as f:
            return parse(f.read())
    except OSError:
        return []


def current_runlevel(entries: list[dict]) -> tuple[str, str] | None:
    """(previous, current) from the last run-level record; 'N' when there was none before."""
    levels = [e for e in entries if e["type"] == RUN_LVL]
    if not levels:
        return None
    pid = levels[-1]["pid"]
    new, old = chr(pid % 256 or ord("N")), chr(pid // 256 or ord("N"))
    return ("N" if old in ("\0", "N") else old), new


def _append(path: str, data: bytes, truncate: bool = False) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_TRUNC if truncate else os.O_APPEND)
    fd = os.open(path, flags, 0o664)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def write_boot(runlevel: str = "2") -> None:
    """At boot: a fresh utmp with the boot and run-level records, and the same in wtmp."""
    boot, level = record(BOOT_TIME, "reboot"), runlevel_record(runlevel, "N")
    _append(UTMP, boot + level, truncate=True)
    _append(WTMP, boot + level)


def write_shutdown(runlevel: str, previous: str = "2") -> None:
    level = runlevel_record(runlevel, previous)
    _append(UTMP, level)
    _append(WTMP, level + record(RUN_LVL, "shutdown"))


def wall(message: str) -> int:
    """Write a message to every logged-in user's terminal; returns how many were reached."""
    text = ("\r\nBroadcast message from vigil@" + os.uname().nodename + " ("
            + time.strftime("%a %Y-%m-%d %H:%M:%S") + "):\r\n\r\n"
            + message.replace("\n", "\r\n") + "\r\n\r\n").encode(errors="replace")
    reached = 0
    for line in sorted({e["line"] for e in read() if e["type"] == USER_PROCESS and e["line"]}):
        if "/" in line.replace("pts/", "", 1) or line.startswith("."):
            continue  # only names under /dev, never a path elsewhere
        try:
            fd = os.open("/dev/" + line, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            os.write(fd, text)
            reached += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return reached
